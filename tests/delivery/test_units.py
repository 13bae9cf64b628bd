"""The pure parts of delivery: schedule, Retry-After, circuit breaker, verdicts, signatures, config."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError
from standardwebhooks import Webhook

from tests.delivery.conftest import SECRET
from triggers_api.config import Settings, parse_delays
from triggers_api.delivery.breaker import CircuitBreaker, CircuitState
from triggers_api.delivery.push import Verdict, classify_status
from triggers_api.delivery.schedule import MAX_RETRY_AFTER, RetrySchedule, parse_retry_after
from triggers_api.delivery.signing import Signer
from triggers_api.metrics import IngestLatencies


def test_the_schedule_gives_one_delay_per_retry_then_gives_up() -> None:
    schedule = RetrySchedule((300.0, 1800.0, 7200.0), jitter=0)
    assert [schedule.next_delay(n) for n in (1, 2, 3, 4)] == [300.0, 1800.0, 7200.0, None]
    assert RetrySchedule((), jitter=0).next_delay(1) is None  # no retries at all


def test_jitter_stays_within_its_band() -> None:
    schedule = RetrySchedule((100.0,), jitter=0.1, rng=random.Random(7))
    delays = [schedule.next_delay(1) for _ in range(500)]
    assert all(d is not None and 90.0 <= d <= 110.0 for d in delays)
    assert len(set(delays)) > 100  # actually spread


def test_a_larger_retry_after_wins_and_is_capped() -> None:
    schedule = RetrySchedule((0.05,), jitter=0)
    assert schedule.next_delay(1, retry_after=2.0) == 2.0
    assert schedule.next_delay(1, retry_after=0.01) == 0.05  # a smaller one does not shorten it
    assert schedule.next_delay(1, retry_after=10**9) == MAX_RETRY_AFTER


def test_retry_after_parses_seconds_and_http_dates() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_retry_after("120") == 120.0
    later = (now + timedelta(seconds=90)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert parse_retry_after(later, now=now) == 90.0
    assert parse_retry_after("Thu, 01 Jan 1970 00:00:00 GMT", now=now) == 0.0
    for junk in (None, "", "soon", "-5", "1.5e3"):
        assert parse_retry_after(junk, now=now) is None


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (200, Verdict.DELIVERED),
        (202, Verdict.DELIVERED),
        (204, Verdict.DELIVERED),
        (301, Verdict.RETRY),
        (400, Verdict.REFUSED),
        (401, Verdict.REFUSED),
        (404, Verdict.REFUSED),
        (408, Verdict.RETRY),
        (410, Verdict.REFUSED),
        (422, Verdict.REFUSED),
        (429, Verdict.RETRY),
        (500, Verdict.RETRY),
        (503, Verdict.RETRY),
    ],
)
def test_statuses_map_to_verdicts(status: int, verdict: Verdict) -> None:
    assert classify_status(status) is verdict


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_breaker_opens_after_consecutive_failures_and_probes_once() -> None:
    clock = Clock()
    changes: list[CircuitState] = []
    breaker = CircuitBreaker(3, cooldown=30, clock=clock, on_change=changes.append)
    for _ in range(2):
        assert breaker.before_request()
        breaker.record_failure()
    breaker.record_success()  # a success in between resets the count
    for _ in range(3):
        assert breaker.before_request()
        breaker.record_failure()
    assert breaker.state is CircuitState.OPEN and breaker.allowance() == 0
    assert not breaker.before_request()
    clock.now += 29.9
    assert breaker.state is CircuitState.OPEN and breaker.reopens_in() == pytest.approx(0.1)
    clock.now += 0.1
    assert breaker.state is CircuitState.HALF_OPEN and breaker.allowance() == 1
    assert breaker.before_request()  # the probe
    assert not breaker.before_request() and breaker.allowance() == 0  # only one
    breaker.record_success()
    assert breaker.state is CircuitState.CLOSED and breaker.allowance() is None
    assert changes == [CircuitState.OPEN, CircuitState.HALF_OPEN, CircuitState.CLOSED]


def test_a_failed_probe_reopens_for_a_full_cooldown() -> None:
    clock = Clock()
    breaker = CircuitBreaker(1, cooldown=10, clock=clock)
    breaker.before_request()
    breaker.record_failure()
    clock.now += 10
    assert breaker.before_request()
    breaker.record_failure()
    assert breaker.state is CircuitState.OPEN and breaker.reopens_in() == 10
    assert breaker.opened_count == 2
    snap = breaker.snapshot()
    assert snap["state"] == "open" and snap["reopens_in_seconds"] == 10


def test_a_cancelled_probe_frees_its_slot() -> None:
    clock = Clock()
    breaker = CircuitBreaker(1, cooldown=1, clock=clock)
    breaker.record_failure()
    clock.now += 1
    assert breaker.before_request()
    breaker.release_probe()
    assert breaker.allowance() == 1


def test_signatures_verify_with_the_reference_library() -> None:
    body = b'{"event_id":"e1","payload":{"caf\xc3\xa9":1}}'
    timestamp = int(datetime.now(UTC).timestamp())
    signature = Signer(SECRET).signature("msg_1", timestamp, body)
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(timestamp), "webhook-signature": signature}
    assert Webhook(SECRET).verify(body, headers) == {"event_id": "e1", "payload": {"café": 1}}
    unprefixed = SECRET.removeprefix("whsec_")  # the prefix is optional
    assert Signer(unprefixed).signature("msg_1", timestamp, body) == signature


def test_delivery_settings_are_validated() -> None:
    assert parse_delays(" 0.5, 1,2.25 ") == (0.5, 1.0, 2.25)
    assert parse_delays("") == ()
    assert Settings(retry_schedule="0.01,0.02").retry_delays == (0.01, 0.02)
    assert Settings().retry_delays == (300.0, 1800.0, 7200.0)
    assert Settings(workflow_url="  ").workflow_url is None
    bad: list[dict[str, object]] = [
        {"retry_schedule": "5,soon"},
        {"retry_schedule": "-1"},
        {"workflow_url": "ftp://engine"},
        {"signing_secret": "whsec_%%%"},
        {"signing_secret": "whsec_c2hvcnQ="},  # too short to be a key
        {"delivery_timeout": 30, "lease_seconds": 30},
        {"delivery_concurrency": 0},
        {"circuit_failure_threshold": 0},
    ]
    for values in bad:
        with pytest.raises(ValidationError):
            Settings(**values)  # type: ignore[arg-type]


def test_per_user_ingest_latencies_are_bounded_and_windowed() -> None:
    latencies = IngestLatencies(per_user=10, max_users=2)
    for i in range(20):
        latencies.add("a", i / 1000, at=100 + i)
    assert latencies.p95("a", since=0) == 0.019  # only the 10 most recent are kept
    assert latencies.p95("a", since=117) == 0.019
    assert latencies.p95("a", since=200) is None  # nothing in the window
    latencies.add("b", 0.5, at=1)
    latencies.add("c", 0.25, at=1)  # a third user: the longest-known one is forgotten
    assert latencies.p95("a", since=0) is None
    assert latencies.p95("b", since=0) == 0.5 and latencies.p95("c", since=0) == 0.25
