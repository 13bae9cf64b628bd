"""The delivery part of the storage contract: claims, leases, attempts, dead letters, replay, the
reads behind the live stream and the metrics summary. Same assertions on every backend."""

from __future__ import annotations

import asyncio
import uuid

import orjson

from tests.contract.conftest import OpenTwin
from tests.contract.test_storage_contract import T0, audit_for, event
from triggers_api.storage.base import (
    AttemptCounts,
    AttemptOutcome,
    AuditQuery,
    AuditRecord,
    DeliveryAttempt,
    DeliveryDepths,
    EventRecord,
    EventStatus,
    ReplaySelector,
    Storage,
    StreamItem,
)

LEASE = 60_000_000


def attempt(
    record: EventRecord,
    outcome: AttemptOutcome,
    started: int,
    status: int | None = None,
    error: str | None = None,
    body: bytes = b"",
) -> DeliveryAttempt:
    return DeliveryAttempt(
        attempt_id=str(uuid.uuid4()),
        event_id=record.event_id,
        user_id=record.user_id,
        started_us=started,
        duration_us=1_000,
        outcome=outcome.value,
        response_status=status,
        error=error,
        response_body=body,
    )


def audit(record: EventRecord, action: str, ts: int) -> AuditRecord:
    return audit_for(record, action=action, ts=ts)


async def store(storage: Storage, *records: EventRecord) -> list[EventRecord]:
    await storage.insert_events(list(records), [])
    return list(records)


async def claim_all(storage: Storage, token: str, now: int, limit: int = 100) -> list[str]:
    return [c.event.event_id for c in await storage.claim_due_events(token, now, now + LEASE, limit)]


# -- claiming -----------------------------------------------------------------------------------
async def test_new_events_are_due_at_once_and_claimed_earliest_first(storage: Storage) -> None:
    late, early, middle = await store(storage, event(ts=T0 + 30), event(ts=T0 + 10), event(ts=T0 + 20))
    assert await storage.next_delivery_due(T0 + 100) == T0 + 10
    claims = await storage.claim_due_events("w1", T0 + 100, T0 + 100 + LEASE, 2)
    assert sorted(c.event.ts_us for c in claims) == [T0 + 10, T0 + 20]
    for claim in claims:
        assert claim.lease_token == "w1" and claim.lease_until_us == T0 + 100 + LEASE
        assert claim.attempts == 0 and claim.round_attempts == 0
        assert claim.event.status == EventStatus.QUEUED
        assert claim.event.payload == b'{"n":1}'
    fetched = await storage.get_event("alice", early.event_id)
    assert fetched is not None and fetched.status == EventStatus.QUEUED
    assert await claim_all(storage, "w2", T0 + 100) == [late.event_id]
    assert middle.event_id in {c.event.event_id for c in claims}


async def test_events_not_yet_stored_at_now_are_not_due(storage: Storage) -> None:
    await store(storage, event(ts=T0 + 500))
    assert await claim_all(storage, "w", T0 + 499) == []
    assert await storage.next_delivery_due(T0) == T0 + 500
    assert len(await claim_all(storage, "w", T0 + 500)) == 1


async def test_a_live_lease_hides_an_event_until_it_expires(storage: Storage) -> None:
    (record,) = await store(storage, event())
    (first,) = await storage.claim_due_events("w1", T0, T0 + 1_000, 10)
    assert await claim_all(storage, "w2", T0 + 999) == []
    assert await storage.next_delivery_due(T0 + 999) is None  # leased: nothing claimable
    (again,) = await storage.claim_due_events("w2", T0 + 1_000, T0 + 2_000, 10)  # the lease expired
    assert again.event.event_id == record.event_id == first.event.event_id
    assert again.lease_token == "w2"


async def test_acknowledged_delivered_and_failed_events_are_never_claimed(storage: Storage) -> None:
    acked, delivered, failed, pending = await store(storage, event(), event(), event(), event())
    await storage.acknowledge("alice", [acked.event_id], T0 + 1, {})
    claims = await storage.claim_due_events("w", T0 + 2, T0 + 2 + LEASE, 10)
    by_id = {c.event.event_id: c for c in claims}
    assert set(by_id) == {delivered.event_id, failed.event_id, pending.event_id}
    assert await storage.record_attempt(attempt(delivered, AttemptOutcome.DELIVERED, T0 + 3, 200), "w")
    assert await storage.record_attempt(attempt(failed, AttemptOutcome.FAILED, T0 + 3, 410), "w")
    assert await storage.release_claims([(pending.event_id, "w")], T0 + 4) == 1
    assert await claim_all(storage, "w2", T0 + 10**9) == [pending.event_id]


async def test_a_claimed_then_acknowledged_event_is_not_claimed_again(storage: Storage) -> None:
    (record,) = await store(storage, event())
    await claim_all(storage, "w1", T0, 1)
    await storage.acknowledge("alice", [record.event_id], T0 + 1, {})
    assert await claim_all(storage, "w2", T0 + LEASE * 2) == []
    assert await storage.next_delivery_due(T0 + LEASE * 2) is None


async def test_concurrent_claimers_never_get_the_same_event(storage: Storage, open_twin: OpenTwin) -> None:
    twin = await open_twin()  # a second instance on the same data: another worker process
    records = await store(storage, *(event(ts=T0 + i) for i in range(120)))

    async def drain(s: Storage, name: str) -> list[str]:
        got: list[str] = []
        for round_no in range(200):
            claimed = await claim_all(s, f"{name}-{round_no}", T0 + 1_000, limit=3)
            if not claimed:
                break
            got += claimed
        return got

    results = await asyncio.gather(drain(storage, "a"), drain(twin, "b"), drain(storage, "c"))
    every = [event_id for got in results for event_id in got]
    assert len(every) == len(set(every)) == len(records)


# -- attempts -----------------------------------------------------------------------------------
async def test_a_delivered_attempt_marks_delivered_keeps_the_payload_and_audits(storage: Storage) -> None:
    (record,) = await store(storage, event())
    await claim_all(storage, "w", T0 + 10)
    done = attempt(record, AttemptOutcome.DELIVERED, T0 + 20, 200, body=b"ok")
    applied = await storage.record_attempt(done, "w", audit=audit(record, "event.delivered", T0 + 21))
    assert applied
    stored = await storage.get_event("alice", record.event_id)
    assert stored is not None
    assert stored.status == EventStatus.DELIVERED and stored.delivered_us == T0 + 20 + 1_000
    assert stored.payload == record.payload and stored.acknowledged_us is None
    assert stored.retry_count == 0 and stored.last_retry_us is None
    logs = await storage.list_audit(AuditQuery(user_id="alice", event_id=record.event_id))
    assert [log.action for log in logs] == ["event.delivered"]
    assert await storage.next_delivery_due(T0 + 10**9) is None


async def test_retries_reschedule_and_count_retries_after_the_first_attempt(storage: Storage) -> None:
    (record,) = await store(storage, event())
    (claim,) = await storage.claim_due_events("w1", T0, T0 + LEASE, 1)
    first = attempt(record, AttemptOutcome.RETRY, T0 + 5, 503, "http_503", b"busy")
    assert await storage.record_attempt(first, "w1", next_attempt_us=T0 + 1_000)
    stored = await storage.get_event("alice", record.event_id)
    assert stored is not None and stored.status == EventStatus.QUEUED
    assert stored.retry_count == 0 and stored.last_retry_us is None  # no retry made yet
    assert await claim_all(storage, "w2", T0 + 999) == []  # not due yet
    assert await storage.next_delivery_due(T0 + 999) == T0 + 1_000
    (claim,) = await storage.claim_due_events("w2", T0 + 1_000, T0 + 1_000 + LEASE, 1)
    assert claim.attempts == 1 and claim.round_attempts == 1
    second = attempt(record, AttemptOutcome.RETRY, T0 + 1_001, None, "timeout")
    assert await storage.record_attempt(second, "w2", next_attempt_us=T0 + 5_000)
    stored = await storage.get_event("alice", record.event_id)
    assert stored is not None and stored.retry_count == 1 and stored.last_retry_us == T0 + 1_001
    (claim,) = await storage.claim_due_events("w3", T0 + 5_000, T0 + 5_000 + LEASE, 1)
    assert claim.attempts == 2 and claim.round_attempts == 2 and claim.event.retry_count == 1


async def test_a_failed_attempt_dead_letters_and_audits(storage: Storage) -> None:
    (record,) = await store(storage, event())
    await claim_all(storage, "w", T0)
    refused = attempt(record, AttemptOutcome.FAILED, T0 + 5, 410, "http_410", b"gone")
    assert await storage.record_attempt(refused, "w", audit=audit(record, "event.delivery_failed", T0 + 6))
    stored = await storage.get_event("alice", record.event_id)
    assert stored is not None and stored.status == EventStatus.FAILED and stored.delivered_us is None
    assert await storage.delivery_depths("alice") == DeliveryDepths(pending=0, dead_letters=1)
    assert await claim_all(storage, "w2", T0 + 10**9) == []
    logs = await storage.list_audit(AuditQuery(user_id="alice", action="event.delivery_failed"))
    assert [log.event_id for log in logs] == [record.event_id]


async def test_a_lost_lease_cannot_reschedule_or_dead_letter(storage: Storage) -> None:
    (record,) = await store(storage, event())
    await storage.claim_due_events("old", T0, T0 + 10, 1)
    await storage.claim_due_events("new", T0 + 10, T0 + 10 + LEASE, 1)  # the first lease expired
    late = attempt(record, AttemptOutcome.FAILED, T0 + 20, 500, "http_500")
    assert not await storage.record_attempt(late, "old", audit=audit(record, "event.delivery_failed", T0))
    late_retry = attempt(record, AttemptOutcome.RETRY, T0 + 21, 500, "http_500")
    assert not await storage.record_attempt(late_retry, "old", next_attempt_us=T0 + 10**9)
    stored = await storage.get_event("alice", record.event_id)
    assert stored is not None and stored.status == EventStatus.QUEUED
    assert stored.retry_count == 1  # both attempts happened and are counted
    assert len(await storage.list_attempts("alice", record.event_id)) == 2
    assert await storage.list_audit(AuditQuery(user_id="alice", action="event.delivery_failed")) == []
    # ... but the new holder's outcome applies
    assert await storage.record_attempt(
        attempt(record, AttemptOutcome.RETRY, T0 + 30, 503), "new", next_attempt_us=T0 + 99
    )
    assert await storage.next_delivery_due(T0 + 40) == T0 + 99


async def test_a_success_applies_even_without_the_lease(storage: Storage) -> None:
    (record,) = await store(storage, event())
    await storage.claim_due_events("old", T0, T0 + 10, 1)
    await storage.claim_due_events("new", T0 + 10, T0 + 10 + LEASE, 1)
    assert await storage.record_attempt(attempt(record, AttemptOutcome.DELIVERED, T0 + 20, 200), "old")
    stored = await storage.get_event("alice", record.event_id)
    assert stored is not None and stored.status == EventStatus.DELIVERED
    # the new holder's later failure does not turn the delivered event back
    assert not await storage.record_attempt(attempt(record, AttemptOutcome.FAILED, T0 + 30, 500), "new")
    stored = await storage.get_event("alice", record.event_id)
    assert stored is not None and stored.status == EventStatus.DELIVERED


async def test_an_attempt_finishing_after_acknowledgement_does_not_resurrect(storage: Storage) -> None:
    pushed, failing = await store(storage, event(), event())
    await claim_all(storage, "w", T0)
    await storage.acknowledge("alice", [pushed.event_id, failing.event_id], T0 + 5, {})
    ok = attempt(pushed, AttemptOutcome.DELIVERED, T0 + 1, 200)
    assert not await storage.record_attempt(ok, "w", audit=audit(pushed, "event.delivered", T0 + 6))
    bad = attempt(failing, AttemptOutcome.RETRY, T0 + 1, 503)
    assert not await storage.record_attempt(bad, "w", next_attempt_us=T0 + 10)
    for record in (pushed, failing):
        stored = await storage.get_event("alice", record.event_id)
        assert stored is not None
        assert stored.status == EventStatus.DELIVERED and stored.acknowledged_us == T0 + 5
        assert stored.payload is None and stored.delivered_us == T0 + 5
    assert await claim_all(storage, "w2", T0 + 10**9) == []
    assert await storage.list_audit(AuditQuery(user_id="alice", action="event.delivered")) == []


async def test_acknowledging_a_pushed_event_drops_its_payload(storage: Storage) -> None:
    (record,) = await store(storage, event())
    await claim_all(storage, "w", T0)
    await storage.record_attempt(attempt(record, AttemptOutcome.DELIVERED, T0 + 1, 200), "w")
    await storage.acknowledge("alice", [record.event_id], T0 + 50, {})
    stored = await storage.get_event("alice", record.event_id)
    assert stored is not None and stored.payload is None
    assert stored.delivered_us == T0 + 1 + 1_000 and stored.acknowledged_us == T0 + 50


async def test_an_attempt_for_a_missing_event_records_nothing(storage: Storage) -> None:
    ghost = event()
    assert not await storage.record_attempt(attempt(ghost, AttemptOutcome.DELIVERED, T0, 200), "w")
    assert await storage.list_attempts("alice", ghost.event_id) == []


async def test_attempts_are_listed_oldest_first_for_their_owner_only(storage: Storage) -> None:
    (record,) = await store(storage, event())
    await claim_all(storage, "w", T0)
    body = bytes(range(256)) * 4
    await storage.record_attempt(
        attempt(record, AttemptOutcome.RETRY, T0 + 2, 503, "http_503", body), "w", next_attempt_us=T0 + 3
    )
    await claim_all(storage, "w2", T0 + 3)
    await storage.record_attempt(attempt(record, AttemptOutcome.DELIVERED, T0 + 4, 204), "w2")
    history = await storage.list_attempts("alice", record.event_id)
    assert [(a.outcome, a.response_status, a.started_us) for a in history] == [
        ("retry", 503, T0 + 2),
        ("delivered", 204, T0 + 4),
    ]
    assert history[0].response_body == body and history[0].error == "http_503"
    assert history[0].duration_us == 1_000 and history[1].response_body == b""
    assert await storage.list_attempts("mallory", record.event_id) == []


async def test_attempts_go_with_their_event_when_it_is_deleted(storage: Storage) -> None:
    (record,) = await store(storage, event(expires_at=100))
    await claim_all(storage, "w", T0)
    await storage.record_attempt(attempt(record, AttemptOutcome.RETRY, T0 + 1, 500), "w", next_attempt_us=T0)
    assert await storage.delete_events([record.event_id], 200) == 1
    assert await storage.list_attempts("alice", record.event_id) == []
    assert await storage.count_attempts("alice", 0) == AttemptCounts(0, 0)


# -- releasing ----------------------------------------------------------------------------------
async def test_release_gives_back_only_what_the_token_still_holds(storage: Storage) -> None:
    mine, stolen, done = await store(storage, event(ts=T0), event(ts=T0 + 1), event(ts=T0 + 2))
    await storage.claim_due_events("w", T0 + 5, T0 + 10, 3)
    await storage.claim_due_events("other", T0 + 10, T0 + 10 + LEASE, 1)  # takes `mine` (earliest)
    await storage.record_attempt(attempt(done, AttemptOutcome.DELIVERED, T0 + 6, 200), "w")
    released = await storage.release_claims(
        [(mine.event_id, "w"), (stolen.event_id, "w"), (done.event_id, "w")], due_us=T0 + 500
    )
    assert released == 1  # only `stolen`: `mine` is held by "other", `done` is delivered
    assert await storage.next_delivery_due(T0 + 11) == T0 + 500
    stored = await storage.get_event("alice", stolen.event_id)
    assert stored is not None and stored.status == EventStatus.QUEUED and stored.retry_count == 0
    (claim,) = await storage.claim_due_events("w3", T0 + 500, T0 + 500 + LEASE, 5)
    assert claim.event.event_id == stolen.event_id and claim.attempts == 0  # no attempt was spent
    assert await storage.release_claims([], T0) == 0


# -- dead letters and replay --------------------------------------------------------------------
async def dead_letter(storage: Storage, record: EventRecord, at: int) -> None:
    token = f"dl-{record.event_id}"
    claims = await storage.claim_due_events(token, at, at + LEASE, 1000)
    assert record.event_id in {c.event.event_id for c in claims}
    for claim in claims:
        if claim.event.event_id == record.event_id:
            await storage.record_attempt(attempt(record, AttemptOutcome.FAILED, at, 500), token)
        else:
            await storage.release_claims([(claim.event.event_id, token)], claim.event.ts_us)


async def test_replay_puts_dead_letters_back_with_a_fresh_round(storage: Storage) -> None:
    (record,) = await store(storage, event())
    await dead_letter(storage, record, T0 + 1)

    def audit_replay(event_id: str) -> AuditRecord:
        rec = audit_for(record, action="event.replayed", ts=T0 + 10)
        rec.event_id = event_id
        rec.details = orjson.dumps({"via": "single"})
        return rec

    selector = ReplaySelector(user_id="alice", event_ids=(record.event_id,))
    assert await storage.replay_events(selector, T0 + 10, 100, audit_replay) == [record.event_id]
    stored = await storage.get_event("alice", record.event_id)
    assert stored is not None and stored.status == EventStatus.QUEUED
    assert await storage.delivery_depths("alice") == DeliveryDepths(pending=1, dead_letters=0)
    (claim,) = await storage.claim_due_events("w", T0 + 10, T0 + 10 + LEASE, 5)
    assert claim.round_attempts == 0 and claim.attempts == 1  # fresh schedule, history kept
    assert len(await storage.list_attempts("alice", record.event_id)) == 1
    logs = await storage.list_audit(AuditQuery(user_id="alice", action="event.replayed"))
    assert [log.event_id for log in logs] == [record.event_id]
    # a queued event is not a dead letter: replaying it again does nothing
    assert await storage.replay_events(selector, T0 + 11, 100, audit_replay) == []


async def test_bulk_replay_matches_filters_limit_and_owner(storage: Storage) -> None:
    records = await store(
        storage,
        event(ts=T0 + 1, event_type="a.x"),
        event(ts=T0 + 2, event_type="b.x"),
        event(ts=T0 + 3, event_type="a.x"),
        event(ts=T0 + 4, event_type="a.x"),
        event(ts=T0 + 5, event_type="a.x", user="mallory"),
        event(ts=T0 + 6, event_type="a.x"),  # stays pending, not failed
    )
    for record in records[:5]:
        await dead_letter(storage, record, T0 + 100)

    def make_audit(event_id: str) -> AuditRecord:
        rec = audit_for(records[0], action="event.replayed", ts=T0 + 200)
        rec.event_id = event_id
        return rec

    base = ReplaySelector(user_id="alice", event_type="a.x", from_us=T0 + 1, to_us=T0 + 5)
    first = await storage.replay_events(base, T0 + 200, 2, make_audit)
    assert first == [records[0].event_id, records[2].event_id]  # oldest first, limited
    rest = await storage.replay_events(base, T0 + 200, 100, make_audit)
    assert rest == [records[3].event_id]
    windowed = ReplaySelector(user_id="alice", from_us=T0 + 2, to_us=T0 + 2)
    assert await storage.replay_events(windowed, T0 + 200, 100, make_audit) == [records[1].event_id]
    assert await storage.delivery_depths("mallory") == DeliveryDepths(pending=0, dead_letters=1)
    none = ReplaySelector(user_id="alice", event_ids=())
    assert await storage.replay_events(none, T0, 10, make_audit) == []


# -- depths and counts ----------------------------------------------------------------------------
async def test_depths_count_pending_and_dead_letters_per_user_and_overall(storage: Storage) -> None:
    a1, a2, a3, a4, m1 = await store(
        storage, event(ts=T0), event(ts=T0 + 1), event(ts=T0 + 2), event(ts=T0 + 3), event(user="mallory")
    )
    await dead_letter(storage, a1, T0 + 10)
    await storage.acknowledge("alice", [a2.event_id], T0 + 11, {})
    assert await storage.delivery_depths("alice") == DeliveryDepths(pending=2, dead_letters=1)
    assert await storage.delivery_depths("mallory") == DeliveryDepths(pending=1, dead_letters=0)
    assert await storage.delivery_depths() == DeliveryDepths(pending=3, dead_letters=1)
    assert await storage.delivery_depths("nobody") == DeliveryDepths(0, 0)
    assert {a3.event_id, a4.event_id, m1.event_id}  # the pending ones


async def test_attempt_counts_and_events_per_bucket(storage: Storage) -> None:
    minute = 60_000_000
    records = await store(
        storage,
        event(ts=T0),
        event(ts=T0 + 1),
        event(ts=T0 + minute + 5),
        event(ts=T0 + 3 * minute - 1),
        event(ts=T0 + 3 * minute),  # the end is exclusive
        event(ts=T0 + 5, user="mallory"),
    )
    assert await storage.count_events_by_bucket("alice", T0, T0 + 3 * minute, minute) == [2, 1, 1]
    assert await storage.count_events_by_bucket("alice", T0, T0 + 90_000_000, minute) == [2, 1]
    assert await storage.count_events_by_bucket("nobody", T0, T0 + minute, minute) == [0]
    await claim_all(storage, "w", T0 + 10 * minute)
    await storage.record_attempt(attempt(records[0], AttemptOutcome.DELIVERED, T0 + 100, 200), "w")
    await storage.record_attempt(
        attempt(records[1], AttemptOutcome.RETRY, T0 + 200, 503), "w", next_attempt_us=T0
    )
    await storage.record_attempt(attempt(records[5], AttemptOutcome.DELIVERED, T0 + 300, 200), "w")
    assert await storage.count_attempts("alice", T0) == AttemptCounts(total=2, delivered=1)
    assert await storage.count_attempts("alice", T0 + 150) == AttemptCounts(total=1, delivered=0)
    assert await storage.count_attempts("mallory", T0) == AttemptCounts(total=1, delivered=1)


# -- the stream's reads ---------------------------------------------------------------------------
# A backend may hold a committed event back while older transactions run (see events_after), so
# visibility is awaited; order, positions and filters are then asserted exactly.
async def visible(
    storage: Storage, user: str, after: int, count: int, event_type: str | None = None
) -> list[StreamItem]:
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        items = await storage.events_after(user, after, event_type, 1000)
        if len(items) >= count or asyncio.get_running_loop().time() > deadline:
            return items
        await asyncio.sleep(0.02)


async def head_at_least(storage: Storage, position: int) -> int:
    deadline = asyncio.get_running_loop().time() + 10
    while (head := await storage.stream_head()) < position and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.02)
    return head


async def test_stream_positions_follow_commit_order_and_never_change(storage: Storage) -> None:
    assert await storage.stream_head() == 0
    # the later timestamp is committed first: commit order, not timestamp order, decides
    first, second = event(ts=T0 + 100, event_type="a.x"), event(ts=T0, event_type="b.x")
    await store(storage, first)
    p_first = await storage.stream_position("alice", first.event_id)
    assert p_first is not None
    assert await head_at_least(storage, p_first) == p_first
    await store(storage, second, event(user="mallory"))
    p_second = await storage.stream_position("alice", second.event_id)
    assert p_second is not None and p_first < p_second
    assert await head_at_least(storage, p_second) > p_second  # mallory's came after
    items = await visible(storage, "alice", 0, 2)
    assert [(i.position, i.event.event_id) for i in items] == [
        (p_first, first.event_id),
        (p_second, second.event_id),
    ]
    assert [i.event.event_id for i in await storage.events_after("alice", p_first, None, 10)] == [
        second.event_id
    ]
    assert [i.event.event_id for i in await storage.events_after("alice", 0, "b.x", 10)] == [second.event_id]
    assert len(await storage.events_after("alice", 0, None, 1)) == 1
    assert await storage.events_after("alice", p_second, None, 10) == []
    # status changes do not move an event
    await claim_all(storage, "w", T0 + 10**6)
    await storage.acknowledge("alice", [first.event_id], T0 + 10**6, {})
    assert await storage.stream_position("alice", first.event_id) == p_first
    after = await visible(storage, "alice", 0, 2)
    assert [i.position for i in after] == [p_first, p_second]
    assert after[0].event.payload is None and after[1].event.status == EventStatus.QUEUED


async def test_a_stream_started_now_skips_what_was_stored_before(storage: Storage) -> None:
    """``stream_start`` is above every event committed before it, although a backend's readers
    may see those events only later (DynamoDB's settle window): a stream opened now gets only
    what is stored after it opened, and nothing of it is lost."""
    (before,) = await store(storage, event(event_type="a.before"))
    start = await storage.stream_start()
    p_before = await storage.stream_position("alice", before.event_id)
    assert p_before is not None and start >= p_before
    assert await storage.stream_start() >= start  # never goes back
    (after,) = await store(storage, event(event_type="a.after"))
    items = await visible(storage, "alice", start, 1)
    assert [i.event.event_id for i in items] == [after.event_id]
    everything = await visible(storage, "alice", 0, 2)
    assert [i.event.event_id for i in everything] == [before.event_id, after.event_id]


async def test_stream_positions_are_private_to_their_owner(storage: Storage) -> None:
    (record,) = await store(storage, event(user="mallory"))
    assert await storage.stream_position("alice", record.event_id) is None
    assert await storage.stream_position("alice", str(uuid.uuid4())) is None
    assert len(await visible(storage, "mallory", 0, 1)) == 1
    assert await storage.events_after("alice", 0, None, 10) == []


async def test_stream_positions_stay_in_commit_order_across_instances(
    storage: Storage, open_twin: OpenTwin
) -> None:
    twin = await open_twin()
    seen: list[int] = []
    for i in range(10):
        target = storage if i % 2 == 0 else twin
        record = event(ts=T0 - i)  # timestamps run backwards: only commit order may count
        await target.insert_events([record], [])
        position = await twin.stream_position("alice", record.event_id)
        assert position is not None
        seen.append(position)
    assert seen == sorted(seen) and len(set(seen)) == 10
    items = await visible(storage, "alice", seen[4], 5)
    assert [i.position for i in items] == seen[5:]
