"""The push worker: claim due events with a lease, push them, record what happened.

At-least-once, nothing lost, nothing stuck:

- **Claiming** takes events ahead in batches, one storage round trip each: the batch starts at
  ``PREFETCH`` x ``delivery_concurrency``, doubles (up to ``MAX_PREFETCH`` x) while pushes wait for
  claims, and halves when claimed events wait so long their leases run short; each under a lease (``lease_seconds``, the visibility timeout); at most
  ``delivery_concurrency`` pushes are in flight, and a claimed event whose lease would not outlive
  its push (``delivery_timeout``) is handed back unpushed. A worker that dies mid-push simply
  stops renewing nothing: its leases expire and any worker claims those events again.
- **Waking**: the ingestion hook and replays wake the worker at once; otherwise it sleeps until
  the next due retry, at most ``delivery_poll_interval`` (events stored by another process).
- **Outcomes** (history row, counters, new status, audit record) are recorded in batches: the
  outcomes decided in one event-loop turn go to ``Storage.record_attempts`` together, and the push
  slot is free while its record commits (a commit costs far more than a loopback push). A success applies whatever the lease; a retry or a dead letter only
  while this worker still holds the lease; nothing applies to an acknowledged event, so an
  acknowledgement cancels pending retries and a push finishing after it resurrects nothing.
- **Circuit breaker**: while open, nothing is claimed, so waiting events spend no retries.
- **Shutdown** (``stop``): stop claiming, let in-flight pushes finish within ``delivery_grace``,
  cancel the rest and release their leases so another worker takes them at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import socket
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import orjson
import structlog

from triggers_api.config import Settings
from triggers_api.delivery.breaker import STATE_CODES, CircuitBreaker, CircuitState
from triggers_api.delivery.http11 import Http11Pool
from triggers_api.delivery.push import Pusher, PushResult, Verdict
from triggers_api.delivery.schedule import RetrySchedule
from triggers_api.delivery.signing import Signer
from triggers_api.events.service import new_log_id
from triggers_api.metrics import Metrics
from triggers_api.storage.base import (
    AttemptOutcome,
    AttemptRecord,
    AuditRecord,
    DeliveryAttempt,
    DeliveryClaim,
    EventRecord,
    Storage,
    now_us,
)
from triggers_api.tracing import Tracing, traceparent_of_metadata

if TYPE_CHECKING:
    from opentelemetry.trace import Span

log = structlog.get_logger(__name__)

#: Claimed events per push slot in the first batch: one claim (a storage write) feeds several
#: rounds of pushes; the batch adapts between 1 and ``MAX_PREFETCH`` per slot.
PREFETCH = 8
MAX_PREFETCH = 128
#: Pushes whose outcome is still being recorded, per push slot, before claiming pauses.
RECORDING_PER_SLOT = 64


class _Recorder:
    """Batches attempt records: everything recorded in one event-loop turn is one storage call.

    The write runs in its own task, so a push cancelled at shutdown never loses a decided outcome.
    """

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._pending: list[tuple[AttemptRecord, asyncio.Future[bool]]] = []
        self._writes: set[asyncio.Task[None]] = set()

    def record(self, record: AttemptRecord) -> asyncio.Future[bool]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        if not self._pending:
            loop.call_soon(self._flush)
        self._pending.append((record, future))
        return future

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        if batch:
            task = asyncio.create_task(self._write(batch))
            self._writes.add(task)
            task.add_done_callback(self._writes.discard)

    async def _write(self, batch: list[tuple[AttemptRecord, asyncio.Future[bool]]]) -> None:
        try:
            applied = await self.storage.record_attempts([record for record, _ in batch])
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
                    future.exception()  # marked retrieved: a cancelled waiter must not warn
            return
        for (_, future), done in zip(batch, applied, strict=True):
            if not future.done():
                future.set_result(done)

    async def drain(self) -> None:
        """Wait for every record handed over so far to be written (or to fail)."""
        self._flush()
        while self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)


def build_pool(settings: Settings) -> Http11Pool:
    """One keep-alive pool per worker; redirects are not followed (a 3xx is retried as a failure)."""
    assert settings.workflow_url is not None
    return Http11Pool(settings.workflow_url, max_idle=settings.delivery_concurrency)


class DeliveryWorker:
    def __init__(
        self,
        storage: Storage,
        settings: Settings,
        *,
        metrics: Metrics | None = None,
        pool: Http11Pool | None = None,
        worker_id: str | None = None,
        on_dead_letter: Callable[[str], None] | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        if not settings.workflow_url:
            raise ValueError("the delivery worker needs TRIGGERS_WORKFLOW_URL")
        self.storage = storage
        self.settings = settings
        self.metrics = metrics
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.schedule = RetrySchedule(settings.retry_delays, settings.retry_jitter)
        self.breaker = CircuitBreaker(
            settings.circuit_failure_threshold, settings.circuit_cooldown, on_change=self._circuit_changed
        )
        self.concurrency = settings.delivery_concurrency
        self.lease_us = int(settings.lease_seconds * 1_000_000)
        self._pool = pool
        self._own_pool = pool is None
        self._pusher: Pusher | None = None
        self._on_dead_letter = on_dead_letter
        self.tracing = tracing
        self._inflight: dict[asyncio.Task[None], DeliveryClaim] = {}
        self._claimed: deque[DeliveryClaim] = deque()  # leased, push not started yet
        self._pushing = 0  # pushes whose HTTP request is under way
        self._batch = self.concurrency * PREFETCH  # events per claim (adapts, see _claim)
        self._recorder = _Recorder(storage)
        # a claim with less lease left than this is not pushed (capped so a fresh one always is)
        self.stale_us = min(int(settings.delivery_timeout * 1_000_000), self.lease_us // 2)
        self._wake = asyncio.Event()
        self._claiming = False
        self._task: asyncio.Task[None] | None = None
        self._tokens = itertools.count(1)

    # -- lifecycle ----------------------------------------------------------------------------------
    async def start(self) -> None:
        settings = self.settings
        assert settings.workflow_url is not None
        if self._pool is None:
            self._pool = build_pool(settings)
        token = settings.workflow_token.get_secret_value() if settings.workflow_token else None
        signer = Signer(settings.signing_secret.get_secret_value()) if settings.signing_secret else None
        self._pusher = Pusher(self._pool, timeout=settings.delivery_timeout, token=token, signer=signer)
        self._claiming = True
        self.storage.listen_for_events(self.on_storage_event)
        self._task = asyncio.create_task(self._run(), name=f"delivery-worker-{self.worker_id}")
        if self.metrics is not None:
            self.metrics.circuit_state.set(STATE_CODES[self.breaker.state])
        log.info("delivery_worker_started", worker_id=self.worker_id, url=settings.workflow_url)

    def stop_claiming(self) -> None:
        """Claim nothing more (SIGTERM's first effect); in-flight pushes go on."""
        self._claiming = False
        self._wake.set()

    async def stop(self, grace: float | None = None) -> None:
        grace = self.settings.delivery_grace if grace is None else grace
        self.stop_claiming()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._claimed:  # never started: hand them back first, so another worker takes them now
            waiting = list(self._claimed)
            self._claimed.clear()
            await self._release(waiting, now_us())
        unfinished: list[DeliveryClaim] = []
        if self._inflight:
            tasks = dict(self._inflight)
            _, pending = await asyncio.wait(tasks, timeout=grace) if grace > 0 else (set(), set(tasks))
            unfinished = [tasks[t] for t in pending]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self._recorder.drain()
        if unfinished:
            await self._release(unfinished, now_us())
        if self._pool is not None and self._own_pool:
            await self._pool.aclose()
            self._pool = None
        log.info("delivery_worker_stopped", worker_id=self.worker_id, released=len(unfinished))

    def wake(self) -> None:
        self._wake.set()

    def on_stored(self, records: Sequence[EventRecord]) -> None:
        """The ingestion hook: new events are due at once."""
        self._wake.set()

    def on_storage_event(self, user_ids: frozenset[str] | None) -> None:
        """Another process stored events or made some due again (backends that can tell)."""
        self._wake.set()

    @property
    def in_flight(self) -> int:
        return len(self._inflight) + len(self._claimed)

    def snapshot(self) -> dict[str, object]:
        return {
            "worker": "running" if self._claiming else "stopping",
            "in_flight": self.in_flight,
            "circuit": self.breaker.snapshot(),
        }

    def refresh_metrics(self) -> None:
        if self.metrics is not None:
            self.metrics.circuit_state.set(STATE_CODES[self.breaker.state])

    # -- the loop -----------------------------------------------------------------------------------
    async def _run(self) -> None:
        while self._claiming:
            self._wake.clear()
            try:
                claimed, asked = await self._claim()
            except Exception as exc:  # the database may be away for a moment: wait, then go on
                log.warning("delivery_claim_failed", worker_id=self.worker_id, error=repr(exc))
                await self._sleep(self.settings.delivery_poll_interval)
                continue
            if claimed and claimed == asked:
                continue  # maybe more is due: claim again while slots are free
            await self._idle()

    def _wanted(self) -> int:
        """How many events to claim now: enough to keep every push slot busy for ``PREFETCH``
        rounds, none while the circuit holds requests back or too many records are pending."""
        self._start_pushes()
        if len(self._inflight) >= self.concurrency * RECORDING_PER_SLOT:
            return 0
        allowance = self.breaker.allowance()
        if allowance is not None:  # open or half-open: only what may be sent at once
            return min(allowance, self.concurrency - self._pushing) - len(self._claimed)
        held = self._pushing + len(self._claimed)
        if held > self._batch // 2:
            return 0  # enough in hand: claim again in larger batches
        return self._batch - held

    async def _claim(self) -> tuple[int, int]:
        wanted = self._wanted()
        if wanted <= 0:
            return 0, 0
        now = now_us()
        token = f"{self.worker_id}/{next(self._tokens)}"
        claims = await self.storage.claim_due_events(token, now, now + self.lease_us, wanted)
        if len(claims) == wanted and not self._claimed and self._pushing < self.concurrency:
            # pushes ran dry while this claim was under way: claim further ahead next time
            self._batch = min(self._batch * 2, self.concurrency * MAX_PREFETCH)
        self._claimed.extend(claims)
        self._start_pushes()
        return len(claims), wanted

    def _start_pushes(self) -> None:
        """Start pushes for claimed events while slots are free. An event whose lease would run
        out before its push could is handed back instead (another claim will take it)."""
        stale: list[DeliveryClaim] = []
        now = now_us()
        while self._claimed and self._pushing < self.concurrency:
            claim = self._claimed.popleft()
            if claim.lease_until_us - now < self.stale_us:
                stale.append(claim)
                continue
            self._pushing += 1
            task = asyncio.create_task(self._deliver(claim))
            self._inflight[task] = claim
            task.add_done_callback(self._finished)
        if stale:  # claimed too far ahead for this receiver's pace
            self._batch = max(self._batch // 2, self.concurrency)
            task = asyncio.create_task(self._release(stale, now))
            self._inflight[task] = stale[0]
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._inflight.pop(task, None)
        if not task.cancelled() and task.exception() is not None:
            log.error("delivery_task_crashed", worker_id=self.worker_id, error=repr(task.exception()))
        self._wake.set()

    def _push_done(self) -> None:
        self._pushing -= 1
        if self._claimed and self._claiming:
            self._start_pushes()
        self._wake.set()  # a slot is free

    async def _idle(self) -> None:
        timeout = self.settings.delivery_poll_interval
        if self._pushing >= self.concurrency or self._claimed:
            pass  # the next finished push wakes us
        elif self.breaker.allowance() == 0:
            reopens = self.breaker.reopens_in()
            if reopens > 0:  # otherwise a probe is in flight, and its end wakes us
                timeout = min(timeout, reopens)
        else:
            try:
                due = await self.storage.next_delivery_due(now_us())
            except Exception as exc:
                log.warning("delivery_due_check_failed", worker_id=self.worker_id, error=repr(exc))
                due = None
            if due is not None:
                timeout = min(timeout, max(0.001, (due - now_us()) / 1_000_000))
        await self._sleep(timeout)

    async def _sleep(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)

    # -- one push -----------------------------------------------------------------------------------
    async def _deliver(self, claim: DeliveryClaim) -> None:
        event = claim.event
        if not self.breaker.before_request():
            # the circuit opened after this event was claimed: hand it back, no retry spent
            self._push_done()
            await self._release([claim], now_us() + int(self.breaker.reopens_in() * 1_000_000))
            return
        stored = traceparent_of_metadata(event.metadata)
        if self.tracing is None:  # a producer's traceparent still travels on, unchanged
            await self._attempt(claim, stored)
            return
        with self.tracing.span_from(
            "delivery.push",
            stored,
            **{"triggers.event_id": event.event_id, "triggers.attempt": claim.attempts + 1},
        ) as span:
            await self._attempt(claim, self.tracing.current_traceparent(), span)

    async def _attempt(self, claim: DeliveryClaim, traceparent: str | None, span: Span | None = None) -> None:
        assert self._pusher is not None
        started = now_us()
        try:
            result = await self._pusher.push(claim.event, traceparent)
        except asyncio.CancelledError:
            self.breaker.release_probe()
            raise
        finally:
            self._push_done()
        if result.engine_failure:
            self.breaker.record_failure()
        else:
            self.breaker.record_success()
        if span is not None:
            span.set_attribute("http.response.status_code", result.status or 0)
            if result.error is not None:
                span.set_attribute("error.type", result.error)
        await self._record(claim, result, started)

    async def _record(self, claim: DeliveryClaim, result: PushResult, started: int) -> None:
        event = claim.event
        attempt_no = claim.attempts + 1
        next_at: int | None = None
        reason: str | None = None
        if result.verdict is Verdict.DELIVERED:
            outcome = AttemptOutcome.DELIVERED
        elif result.verdict is Verdict.REFUSED:
            outcome, reason = AttemptOutcome.FAILED, "refused"
        else:
            delay = self.schedule.next_delay(claim.round_attempts + 1, result.retry_after)
            if delay is None:
                outcome, reason = AttemptOutcome.FAILED, "retries_exhausted"
            else:
                outcome = AttemptOutcome.RETRY
                next_at = now_us() + int(delay * 1_000_000)
        duration_us = int(result.duration_s * 1_000_000)
        attempt = DeliveryAttempt(
            attempt_id=new_log_id(),
            event_id=event.event_id,
            user_id=event.user_id,
            started_us=started,
            duration_us=duration_us,
            outcome=outcome.value,
            response_status=result.status,
            error=result.error,
            response_body=result.body,
        )
        audit = self._audit(event, outcome, attempt_no, result, reason)
        try:
            # the recorder writes in its own task: a shutdown cancelling this wait loses no record
            applied = await self._recorder.record(AttemptRecord(attempt, claim.lease_token, next_at, audit))
        except Exception as exc:  # the lease will expire and the event be pushed again
            log.error("delivery_record_failed", event_id=event.event_id, error=repr(exc))
            return
        self._observe(event, outcome, result, applied)
        fields = {
            "event_id": event.event_id,
            "user_id": event.user_id,
            "attempt": attempt_no,
            "status": result.status,
            "error": result.error,
            "duration_ms": round(result.duration_s * 1000, 3),
            "applied": applied,
        }
        if outcome is AttemptOutcome.DELIVERED:
            log.debug("event_delivered", **fields)
        elif outcome is AttemptOutcome.RETRY:
            log.info(
                "delivery_retry_scheduled",
                retry_in_s=round((next_at or 0) / 1e6 - started / 1e6, 3),
                **fields,
            )
        else:
            log.warning("event_dead_lettered", reason=reason, **fields)
            if applied and self._on_dead_letter is not None:
                self._on_dead_letter(event.user_id)

    def _audit(
        self,
        event: EventRecord,
        outcome: AttemptOutcome,
        attempt_no: int,
        result: PushResult,
        reason: str | None,
    ) -> AuditRecord | None:
        if outcome is AttemptOutcome.RETRY:
            return None  # each attempt is in the history; the audit log keeps the decisions
        details: dict[str, object] = {"attempt": attempt_no, "status": result.status}
        if outcome is AttemptOutcome.DELIVERED:
            action = "event.delivered"
            details["duration_ms"] = round(result.duration_s * 1000, 3)
        else:
            action = "event.delivery_failed"
            details["reason"] = reason
            details["error"] = result.error
        return AuditRecord(
            log_id=new_log_id(),
            user_id=event.user_id,
            action=action,
            ts_us=now_us(),
            event_id=event.event_id,
            details=orjson.dumps(details),
            ip_address="",
            request_id=f"worker:{self.worker_id}",
        )

    def _observe(
        self, event: EventRecord, outcome: AttemptOutcome, result: PushResult, applied: bool
    ) -> None:
        if self.metrics is None:
            return
        self.metrics.deliveries.labels(outcome.value).inc()
        self.metrics.attempt_duration.observe(result.duration_s)
        if outcome is AttemptOutcome.DELIVERED and applied:
            self.metrics.delivery_latency.observe(max(0, now_us() - event.ts_us) / 1_000_000)

    async def _release(self, claims: Sequence[DeliveryClaim], due_us: int) -> None:
        try:
            await self.storage.release_claims([(c.event.event_id, c.lease_token) for c in claims], due_us)
        except Exception as exc:  # the leases will expire instead
            log.warning("delivery_release_failed", worker_id=self.worker_id, error=repr(exc))

    def _circuit_changed(self, state: CircuitState) -> None:
        if self.metrics is not None:
            self.metrics.circuit_state.set(STATE_CODES[state])
            if state is CircuitState.OPEN:
                self.metrics.circuit_opened.inc()
        level = log.warning if state is CircuitState.OPEN else log.info
        level(
            "circuit_" + state.value,
            worker_id=self.worker_id,
            consecutive_failures=self.breaker.consecutive_failures,
            cooldown_s=self.breaker.cooldown,
        )
