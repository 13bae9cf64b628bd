"""The fan-out worker: schedules (event, destination) deliveries across destinations.

Each delivery has its own schedule, attempts, lease and dead letter (storage's deliveries rows);
each destination its own breaker, concurrency limit, pool, signer and Retry-After hold
(``destinations.py``). A failing destination never delays another:

- a claim names the destinations to leave out: those whose circuit is open, that hold a
  ``Retry-After``, or that already hold ``CLAIM_AHEAD`` x their concurrency limit, so
  one slow target cannot fill the worker with its own work;
- pushes start per destination up to its own limit, so a slow target uses only its own slots.

A target answering **410 Gone** is disabled at once (REST Hooks); one failing every attempt for
``TRIGGERS_SUBSCRIPTION_DISABLE_AFTER`` is disabled too. Leases, releasing on shutdown and the
outcome rules are those of the single-destination worker (``worker.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import structlog

from triggers_api.config import Settings
from triggers_api.delivery.breaker import STATE_CODES, CircuitState
from triggers_api.delivery.destinations import (
    Destination,
    MetricLabels,
    subscription_destination,
    workflow_destination,
)
from triggers_api.delivery.push import PushResult, Verdict
from triggers_api.delivery.schedule import RetrySchedule
from triggers_api.events.service import new_log_id
from triggers_api.metrics import Metrics
from triggers_api.storage.base import (
    WORKFLOW_DESTINATION,
    AttemptOutcome,
    AttemptRecord,
    AuditRecord,
    DeliveryAttempt,
    EventRecord,
    FanoutClaim,
    Storage,
    SubscriptionRecord,
    SubscriptionStatus,
    now_us,
)
from triggers_api.subscriptions.guard import DestinationGuard
from triggers_api.tracing import Tracing, traceparent_of_metadata

log = structlog.get_logger(__name__)

CLAIM_BATCH = 64  # deliveries per claim at most
REFRESH_SECONDS = 2.0  # how often known subscriptions are re-read (target, secret, status)
DISABLE_CHECK_SECONDS = 30.0
#: Wake-ups for stored events (and other processes' notifications) at most this often: the first
#: after a quiet spell wakes the worker at once, the rest within the window coalesce into one at
#: its end. Without it every ingest request cost the idle worker a claim (a write queued behind
#: the ingest group commits) and a due-time read even when nobody has a subscription: 8-12 % of
#: single-event ingest throughput (docs/benchmarks.md, "The verdict").
STORED_WAKE_INTERVAL = 0.02


@dataclass(frozen=True, slots=True)
class Decided:
    """What one recorded push decided (``FanoutWorker.deliver_once``)."""

    outcome: AttemptOutcome
    next_attempt_us: int | None  # RETRY: when
    applied: bool


class FanoutWorker:
    def __init__(
        self,
        storage: Storage,
        settings: Settings,
        *,
        metrics: Metrics | None = None,
        guard: DestinationGuard | None = None,
        worker_id: str | None = None,
        on_dead_letter: Callable[[str], None] | None = None,
        tracing: Tracing | None = None,
        workflow_metrics: bool = False,
    ) -> None:
        """``workflow_metrics``: this worker is the only one pushing to the workflow URL (the SQS
        consumer on DynamoDB), so it also reports the single-destination worker's series for it
        (``triggers_deliveries``, delivery latency, ``triggers_circuit_*``): dashboards and alerts
        read the same series on every backend."""
        self.storage = storage
        self.workflow_metrics = workflow_metrics and metrics is not None
        self.tracing = tracing
        self.settings = settings
        self.metrics = metrics
        self.guard = guard or DestinationGuard.from_settings(settings)
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.schedule = RetrySchedule(settings.retry_delays, settings.retry_jitter)
        self.lease_us = int(settings.lease_seconds * 1_000_000)
        self.stale_us = min(int(settings.delivery_timeout * 1_000_000), self.lease_us // 2)
        self.labels = MetricLabels(settings.metrics_destinations_max)
        self.destinations: dict[str, Destination] = {}
        self._workflow = workflow_destination(
            settings, metrics, self._workflow_circuit_changed if self.workflow_metrics else None
        )
        if self._workflow is not None:
            self.destinations[WORKFLOW_DESTINATION] = self._workflow
        self._on_dead_letter = on_dead_letter
        self._tasks: dict[asyncio.Task[Any], FanoutClaim] = {}
        self._wake = asyncio.Event()
        self._claiming = False
        self._task: asyncio.Task[None] | None = None
        self._tokens = itertools.count(1)
        self._refreshed = 0.0
        self._disable_checked = 0.0
        self._next_stored_wake = 0.0  # time.monotonic() before which stored events only schedule a wake
        self._stored_wake_pending = False

    def _workflow_circuit_changed(self, state: CircuitState) -> None:
        if self.metrics is not None:
            self.metrics.circuit_state.set(STATE_CODES[state])
            if state is CircuitState.OPEN:
                self.metrics.circuit_opened.inc()

    # -- lifecycle ----------------------------------------------------------------------------------
    async def start(self) -> None:
        self._claiming = True
        self.storage.listen_for_events(lambda _users: self._wake_for_stored())
        self._task = asyncio.create_task(self._run(), name=f"fanout-worker-{self.worker_id}")
        log.info("fanout_worker_started", worker_id=self.worker_id)

    def stop_claiming(self) -> None:
        self._claiming = False
        self._wake.set()

    async def stop(self, grace: float | None = None) -> None:
        grace = self.settings.delivery_grace if grace is None else grace
        self.stop_claiming()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        waiting = [c for d in self.destinations.values() for c in d.waiting]
        for d in self.destinations.values():
            d.waiting.clear()
        await self._release(waiting, now_us())
        unfinished: list[FanoutClaim] = []
        if self._tasks:
            tasks = dict(self._tasks)
            _, pending = await asyncio.wait(tasks, timeout=grace) if grace > 0 else (set(), set(tasks))
            unfinished = [tasks[t] for t in pending]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self._release(unfinished, now_us())
        for d in self.destinations.values():
            await d.aclose()
        self.destinations.clear()
        log.info("fanout_worker_stopped", worker_id=self.worker_id, released=len(unfinished) + len(waiting))

    def wake(self) -> None:
        self._wake.set()

    def on_stored(self, records: Sequence[EventRecord]) -> None:
        self._wake_for_stored()

    def _wake_for_stored(self) -> None:
        """Wake for new events, at most once per STORED_WAKE_INTERVAL (see there)."""
        clock = time.monotonic()
        if clock >= self._next_stored_wake:
            self._next_stored_wake = clock + STORED_WAKE_INTERVAL
            self._wake.set()
        elif not self._stored_wake_pending:
            self._stored_wake_pending = True
            asyncio.get_running_loop().call_later(self._next_stored_wake - clock, self._stored_wake_due)

    def _stored_wake_due(self) -> None:
        self._stored_wake_pending = False
        self._next_stored_wake = time.monotonic() + STORED_WAKE_INTERVAL
        self._wake.set()

    def circuit_of(self, destination: str) -> dict[str, object] | None:
        d = self.destinations.get(destination)
        return d.breaker.snapshot() if d is not None else None

    @property
    def in_flight(self) -> int:
        return sum(d.held for d in self.destinations.values())

    # -- the loop -----------------------------------------------------------------------------------
    async def _run(self) -> None:
        while self._claiming:
            self._wake.clear()
            try:
                await self._housekeeping()
                claimed, asked = await self._claim()
            except Exception as exc:  # the database may be away for a moment
                log.warning("fanout_claim_failed", worker_id=self.worker_id, error=repr(exc))
                await self._sleep(self.settings.delivery_poll_interval)
                continue
            if claimed and claimed == asked:
                continue
            await self._idle()

    def _excluded(self) -> list[str]:
        out = [name for name, d in self.destinations.items() if not d.accepting()]
        if self._workflow is None:
            out.append(WORKFLOW_DESTINATION)  # deliveries stored while a workflow URL was set
        return out

    async def _claim(self) -> tuple[int, int]:
        wanted = CLAIM_BATCH - sum(len(d.waiting) for d in self.destinations.values())
        if wanted <= 0:
            return 0, 0
        now = now_us()
        token = f"{self.worker_id}/f{next(self._tokens)}"
        claims = await self.storage.claim_due_deliveries(
            token, now, now + self.lease_us, wanted, self._excluded()
        )
        unknown = {c.destination for c in claims if c.destination not in self.destinations}
        if unknown:
            await self._load(unknown)
        orphans: list[FanoutClaim] = []
        for claim in claims:
            dest = self.destinations.get(claim.destination)
            if dest is None:
                orphans.append(claim)
            else:
                dest.waiting.append(claim)
        if orphans:  # deleted in between: the storage cancelled or will not offer them again
            await self._release(orphans, now + self.lease_us)
        self._start_pushes()
        return len(claims), wanted

    async def _load(self, ids: set[str]) -> None:
        for record in await self.storage.load_subscriptions(sorted(ids)):
            self._adopt(record)

    def _adopt(self, record: SubscriptionRecord) -> None:
        known = self.destinations.get(record.subscription_id)
        if known is not None and known.stamp == (record.updated_us, record.target_url):
            known.subscription = record
            return
        dest = subscription_destination(
            record, self.settings, self.guard, self.metrics, self.labels.of(record.subscription_id)
        )
        if known is not None:  # changed target or secret: new pool and signer, same queue
            dest.waiting, dest.pushing, dest.breaker = known.waiting, known.pushing, known.breaker
            task = asyncio.create_task(known.aclose())
            task.add_done_callback(lambda _t: None)
        self.destinations[record.subscription_id] = dest

    async def _housekeeping(self) -> None:
        clock = time.monotonic()
        if clock - self._refreshed >= REFRESH_SECONDS:
            self._refreshed = clock
            ids = [n for n in self.destinations if n != WORKFLOW_DESTINATION]
            if ids:
                found = {r.subscription_id: r for r in await self.storage.load_subscriptions(ids)}
                for name in ids:
                    record = found.get(name)
                    dest = self.destinations[name]
                    if record is None or record.status != SubscriptionStatus.ACTIVE:
                        if dest.held == 0:  # gone or not active: forget it once idle
                            del self.destinations[name]
                            await dest.aclose()
                    else:
                        self._adopt(record)
        if clock - self._disable_checked >= min(
            DISABLE_CHECK_SECONDS, self.settings.subscription_disable_after / 2
        ):
            self._disable_checked = clock
            bound = now_us() - int(self.settings.subscription_disable_after * 1_000_000)
            for subscription_id in await self.storage.failing_subscriptions(bound):
                days = self.settings.subscription_disable_after / 86_400
                await self._disable(subscription_id, f"every attempt failed for more than {days:g} days")

    def _start_pushes(self) -> None:
        now = now_us()
        stale: list[FanoutClaim] = []
        for dest in self.destinations.values():
            while dest.can_start():
                claim = dest.waiting.popleft()
                if claim.lease_until_us - now < self.stale_us:
                    stale.append(claim)
                    continue
                dest.pushing += 1
                task = asyncio.create_task(self._deliver(dest, claim))
                self._tasks[task] = claim
                task.add_done_callback(self._finished)
        if stale:
            task = asyncio.create_task(self._release(stale, now))
            self._tasks[task] = stale[0]
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.pop(task, None)
        if not task.cancelled() and task.exception() is not None:
            log.error("fanout_task_crashed", worker_id=self.worker_id, error=repr(task.exception()))
        if self._claiming:
            self._start_pushes()
        self._wake.set()

    async def _idle(self) -> None:
        timeout = self.settings.delivery_poll_interval
        holds = [d.paused_until - time.monotonic() for d in self.destinations.values() if d.waiting]
        holds += [d.breaker.reopens_in() for d in self.destinations.values() if d.breaker.reopens_in() > 0]
        if holds:
            timeout = min(timeout, max(0.001, min(holds)))
        try:
            due = await self.storage.next_fanout_due(now_us(), self._excluded())
        except Exception as exc:
            log.warning("fanout_due_check_failed", worker_id=self.worker_id, error=repr(exc))
            due = None
        if due is not None:
            timeout = min(timeout, max(0.001, (due - now_us()) / 1_000_000))
        await self._sleep(timeout)
        self._start_pushes()

    async def _sleep(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)

    # -- one push -----------------------------------------------------------------------------------
    async def deliver_once(self, claim: FanoutClaim) -> Decided | None:
        """Push one claim taken outside the loop (an SQS message's delivery: ``aws/lambda_worker``
        and the queue consumer of ``triggers-api worker`` on DynamoDB) and record its outcome,
        exactly as the loop does. None when it was not pushed: its destination is unknown or not
        active (released, due in a lease's time) or its circuit is open (released, due when the
        circuit may close again: ``Decided``-less, see ``retry_in``)."""
        dest = self.destinations.get(claim.destination)
        if dest is None and claim.destination != WORKFLOW_DESTINATION:
            await self._load({claim.destination})
            dest = self.destinations.get(claim.destination)
        if dest is None:
            await self._release([claim], now_us() + self.lease_us)
            return None
        dest.pushing += 1
        return await self._deliver(dest, claim)

    async def housekeeping(self) -> None:
        """What the loop does between claims, for a caller that runs no loop: re-read known
        subscriptions (target, secret, status) and disable those failing too long. Time-gated:
        cheap to call before every batch."""
        try:
            await self._housekeeping()
        except Exception as exc:  # the next call tries again
            log.warning("fanout_housekeeping_failed", worker_id=self.worker_id, error=repr(exc))

    def retry_in(self, destination: str) -> float:
        """Seconds until the destination's circuit may let a request through (0 when closed)."""
        dest = self.destinations.get(destination)
        return dest.breaker.reopens_in() if dest is not None else 0.0

    async def _deliver(self, dest: Destination, claim: FanoutClaim) -> Decided | None:
        """One push and its recorded outcome. The slot stays taken until the outcome commits, so
        what a killed worker pushed but never recorded (and what is pushed again once its lease
        expires) is at most its concurrency per destination: at-least-once, bounded."""
        try:
            if not dest.breaker.before_request():
                await self._release([claim], now_us() + int(dest.breaker.reopens_in() * 1_000_000))
                return None
            started = now_us()
            try:
                result = await self._push(dest, claim)
            except asyncio.CancelledError:
                dest.breaker.release_probe()
                raise
            if result.engine_failure:
                dest.breaker.record_failure()
            else:
                dest.breaker.record_success()
            if result.retry_after is not None:
                dest.hold_for(result.retry_after)  # Retry-After holds this destination back, no other
            return await self._record(dest, claim, result, started)
        finally:
            dest.pushing -= 1
            if self._claiming:
                self._start_pushes()

    async def _push(self, dest: Destination, claim: FanoutClaim) -> PushResult:
        """One push; the producer's stored ``traceparent`` travels on (continued by a
        ``delivery.push`` span when tracing is on), to every destination as to the workflow."""
        stored = traceparent_of_metadata(claim.event.metadata)
        if self.tracing is None:
            return await dest.pusher.push(claim.event, stored)
        with self.tracing.span_from(
            "delivery.push",
            stored,
            **{
                "triggers.event_id": claim.event.event_id,
                "triggers.attempt": claim.attempts + 1,
                "triggers.destination": self.labels.of(claim.destination),
            },
        ) as span:
            result = await dest.pusher.push(claim.event, self.tracing.current_traceparent())
            if result.status is not None:
                span.set_attribute("http.response.status_code", result.status)
            return result

    async def _record(
        self, dest: Destination, claim: FanoutClaim, result: PushResult, started: int
    ) -> Decided | None:
        event = claim.event
        gone = result.status == 410 and dest.name != WORKFLOW_DESTINATION
        next_at: int | None = None
        reason: str | None = None
        if result.verdict is Verdict.DELIVERED:
            outcome = AttemptOutcome.DELIVERED
        elif result.verdict is Verdict.REFUSED:
            outcome, reason = AttemptOutcome.FAILED, "gone" if gone else "refused"
        else:
            delay = self.schedule.next_delay(claim.round_attempts + 1, result.retry_after)
            if delay is None:
                outcome, reason = AttemptOutcome.FAILED, "retries_exhausted"
            else:
                outcome, next_at = AttemptOutcome.RETRY, now_us() + int(delay * 1_000_000)
        attempt = DeliveryAttempt(
            attempt_id=new_log_id(),
            event_id=event.event_id,
            user_id=event.user_id,
            started_us=started,
            duration_us=int(result.duration_s * 1_000_000),
            outcome=outcome.value,
            response_status=result.status,
            error=result.error,
            response_body=result.body,
            destination=dest.name,
        )
        audit = None
        if outcome is not AttemptOutcome.RETRY:
            details = {"destination": dest.name, "attempt": claim.attempts + 1, "status": result.status}
            if reason is not None:
                details |= {"reason": reason, "error": result.error}
            audit = AuditRecord(
                log_id=new_log_id(),
                user_id=event.user_id,
                action="event.delivered" if outcome is AttemptOutcome.DELIVERED else "event.delivery_failed",
                ts_us=now_us(),
                event_id=event.event_id,
                details=orjson.dumps(details),
                request_id=f"worker:{self.worker_id}",
            )
        try:
            (applied,) = await self.storage.record_deliveries(
                [AttemptRecord(attempt, claim.lease_token, next_at, audit)]
            )
        except Exception as exc:  # the lease will expire and the delivery be tried again
            log.error("fanout_record_failed", event_id=event.event_id, destination=dest.name, error=repr(exc))
            return None
        if self.metrics is not None:
            self.metrics.destination_deliveries.labels(dest.label, outcome.value).inc()
            self.metrics.attempt_duration.observe(result.duration_s)
            if self.workflow_metrics and dest.name == WORKFLOW_DESTINATION:
                self.metrics.deliveries.labels(outcome.value).inc()
                if outcome is AttemptOutcome.DELIVERED and applied:
                    self.metrics.delivery_latency.observe(max(0, now_us() - event.ts_us) / 1_000_000)
        level = log.debug if outcome is AttemptOutcome.DELIVERED else log.info
        level(
            "fanout_attempt",
            event_id=event.event_id,
            destination=dest.name,
            outcome=outcome.value,
            status=result.status,
            error=result.error,
            applied=applied,
        )
        if gone:
            await self._disable(dest.name, "target answered 410 Gone")
        if outcome is AttemptOutcome.FAILED and applied and self._on_dead_letter is not None:
            self._on_dead_letter(event.user_id)
        return Decided(outcome, next_at, applied)

    async def _disable(self, subscription_id: str, reason: str) -> None:
        def audit(record: SubscriptionRecord) -> AuditRecord:
            return AuditRecord(
                log_id=new_log_id(),
                user_id=record.user_id,
                action="subscription.disabled",
                ts_us=now_us(),
                details=orjson.dumps({"subscription_id": subscription_id, "reason": reason}),
                request_id=f"worker:{self.worker_id}",
            )

        try:
            if await self.storage.disable_subscription(subscription_id, reason, now_us(), audit):
                log.warning("subscription_disabled", subscription_id=subscription_id, reason=reason)
        except Exception as exc:
            log.error("subscription_disable_failed", subscription_id=subscription_id, error=repr(exc))
            return
        dest = self.destinations.get(subscription_id)
        if dest is not None:  # its claimed-but-unstarted deliveries were cancelled with it
            dest.waiting.clear()

    async def _release(self, claims: Sequence[FanoutClaim], due_us: int) -> None:
        if not claims:
            return
        try:
            await self.storage.release_deliveries(
                [(c.event.event_id, c.destination, c.lease_token) for c in claims], due_us
            )
        except Exception as exc:
            log.warning("fanout_release_failed", worker_id=self.worker_id, error=repr(exc))
