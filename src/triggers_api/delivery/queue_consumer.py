"""Deliveries driven by SQS messages (the DynamoDB backend, section 7.1): one message is one
(event, destination) delivery.

For each message: claim that one delivery (``QueuePart.claim_delivery``: a conditional update,
so a duplicate message or a delivery another worker holds is never pushed twice under live
leases), push it and record the outcome with the fan-out worker's own code
(``FanoutWorker.deliver_once``: push, signing, attempt history, outcomes, audit, circuit
breaker, 410 disables), then decide the message's fate:

- delivered, dead-lettered, nothing left to do (done, cancelled, gone): **success** (deleted);
- retry scheduled: the message's visibility is set to the schedule's delay (5 min, 30 min, 2 h
  with jitter, ``Retry-After`` honoured) and it is reported as a **failure**, so SQS hands it back
  when the retry is due;
- not due yet (or leased by another worker): visibility = the time left, **failure**;
- anything unexpected: **failure** with the queue's own visibility timeout; after
  ``maxReceiveCount`` receives the redrive policy moves it to the DLQ.

Used by ``aws/lambda_worker.py`` (SQS batches through Powertools' BatchProcessor) and by
``triggers-api worker`` on DynamoDB (long polling, :func:`consume`), so both run the same code.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog

from triggers_api.config import Settings
from triggers_api.delivery.breaker import STATE_CODES
from triggers_api.delivery.fanout import FanoutWorker
from triggers_api.storage.base import WORKFLOW_DESTINATION, AttemptOutcome, now_us

if TYPE_CHECKING:
    from triggers_api.storage.dynamodb import DynamoDBStorage

log = structlog.get_logger(__name__)

MAX_VISIBILITY_S = 43_200  # SQS's limit for ChangeMessageVisibility (12 h)
NO_WORKFLOW_HANDBACK_S = 30  # a workflow message received where no workflow URL is configured
FIRST_PUSH_S = 1.0  # the Pacer's guess at a push's time before it has measured one
PACE_WEIGHT = 0.3  # weight of the newest push time in the Pacer's moving average
PUSHED = frozenset({"retry", *(o.value for o in AttemptOutcome)})  # fates where a push happened


@dataclass(frozen=True, slots=True)
class Message:
    message_id: str
    body: str
    receipt_handle: str


@dataclass(frozen=True, slots=True)
class Fate:
    """What to do with one message: delete it (``ok``), or leave it for ``visibility_s``."""

    ok: bool
    reason: str
    visibility_s: int | None = None  # None: the queue's own visibility timeout


def seconds_until(at_us: int, now: int) -> int:
    return max(1, min(MAX_VISIBILITY_S, math.ceil((at_us - now) / 1_000_000)))


class QueueConsumer:
    """Handles delivery messages with a fan-out worker that is not running its own loop."""

    def __init__(self, storage: DynamoDBStorage, settings: Settings, worker: FanoutWorker) -> None:
        self.storage = storage
        self.settings = settings
        self.worker = worker
        self.lease_us = int(settings.lease_seconds * 1_000_000)
        self.released = 0  # deliveries handed back because a stop cut their push short

    async def handle(self, message: Message) -> Fate:
        from triggers_api.storage.dynamodb.queue import ClaimState, QueuedDelivery

        try:
            delivery = QueuedDelivery.parse(message.body)
        except ValueError:
            log.warning("delivery_message_invalid", message_id=message.message_id)
            return Fate(False, "invalid")  # poison: the redrive policy moves it to the DLQ
        now = now_us()
        if (
            delivery.destination == WORKFLOW_DESTINATION
            and WORKFLOW_DESTINATION not in self.worker.destinations
        ):
            # no workflow URL here (a process meant for subscriptions only): not claimed, back to
            # the queue for a worker that has one (after maxReceiveCount such hand-backs the
            # message goes to the DLQ, and the sweep of a worker with the URL sends it again)
            return Fate(False, "no_workflow_url", NO_WORKFLOW_HANDBACK_S)
        known = self.worker.destinations.get(delivery.destination)
        if known is not None and known.breaker.allowance() == 0:
            # its circuit is open: not even claimed (the event keeps its status), back when a
            # probe may go
            return Fate(
                False, "circuit_open", seconds_until(now + int(known.breaker.reopens_in() * 1e6), now)
            )
        token = f"{self.worker.worker_id}/sqs-{uuid.uuid4().hex[:12]}"
        try:
            taken = await self.storage.claim_delivery(delivery, token, now, now + self.lease_us)
        except Exception as exc:
            log.warning("delivery_claim_failed", event_id=delivery.event_id, error=repr(exc))
            return Fate(False, "claim_failed")
        if taken.state is ClaimState.DONE or taken.claim is None:
            if taken.state is ClaimState.NOT_DUE and taken.due_us is not None:
                return Fate(False, "not_due", seconds_until(taken.due_us, now))
            return Fate(True, "done")
        claim = taken.claim
        try:
            decided = await self.worker.deliver_once(claim)
        except asyncio.CancelledError:
            # stopping past the grace period: the delivery is due again now, not when the lease ends
            with contextlib.suppress(Exception):
                await self.storage.release_deliveries(
                    [(claim.event.event_id, claim.destination, token)], now_us()
                )
                self.released += 1
            raise
        except Exception as exc:
            log.error("delivery_failed_unexpectedly", event_id=claim.event.event_id, error=repr(exc))
            return Fate(False, "error")
        if decided is None:
            if claim.destination in self.worker.destinations:  # its circuit is open
                return Fate(
                    False,
                    "circuit_open",
                    seconds_until(now_us() + int(self.worker.retry_in(claim.destination) * 1e6), now_us()),
                )
            return Fate(True, "destination_gone")
        if decided.outcome is AttemptOutcome.RETRY and decided.next_attempt_us is not None:
            return Fate(False, "retry", seconds_until(decided.next_attempt_us, now_us()))
        return Fate(True, decided.outcome.value)

    async def handle_all(self, messages: Sequence[Message]) -> dict[str, Fate]:
        """Every message concurrently; visibilities of the ones that stay are set before return."""
        await self.worker.housekeeping()  # subscription changes, disable-after (time-gated)
        fates = await asyncio.gather(*(self.handle(m) for m in messages))
        await asyncio.gather(
            *(
                self.change_visibility(m.receipt_handle, f.visibility_s)
                for m, f in zip(messages, fates, strict=True)
                if not f.ok and f.visibility_s is not None
            )
        )
        return {m.message_id: f for m, f in zip(messages, fates, strict=True)}

    async def _sqs(self, operation: str, **params: Any) -> dict[str, Any]:
        return await self.storage._sqs_call(operation, **params)

    async def change_visibility(self, receipt_handle: str, seconds: int) -> None:
        try:
            await self._sqs(
                "change_message_visibility",
                QueueUrl=await self.storage.queue_url(),
                ReceiptHandle=receipt_handle,
                VisibilityTimeout=seconds,
            )
        except Exception as exc:  # the queue's own timeout applies instead
            log.warning("delivery_visibility_failed", error=repr(exc))

    async def receive(
        self, wait_s: int, max_messages: int = 10, visibility_s: int | None = None
    ) -> list[Message]:
        """``visibility_s`` overrides the queue's visibility timeout for these messages."""
        params: dict[str, Any] = {}
        if visibility_s is not None:
            params["VisibilityTimeout"] = max(0, min(MAX_VISIBILITY_S, visibility_s))
        got = await self._sqs(
            "receive_message",
            QueueUrl=await self.storage.queue_url(),
            MaxNumberOfMessages=max_messages,
            WaitTimeSeconds=wait_s,
            **params,
        )
        return [Message(m["MessageId"], m["Body"], m["ReceiptHandle"]) for m in got.get("Messages", [])]

    async def delete(self, messages: Sequence[Message]) -> None:
        if not messages:
            return
        await self._sqs(
            "delete_message_batch",
            QueueUrl=await self.storage.queue_url(),
            Entries=[{"Id": str(i), "ReceiptHandle": m.receipt_handle} for i, m in enumerate(messages)],
        )


class Pacer:
    """The in-process consumer's limits, like the claim loop's: at most ``delivery_concurrency``
    pushes at once, each destination at most its own limit, and a destination's messages held
    here (waiting for its slots) at most ``CLAIM_AHEAD`` x its limit; beyond that a message goes
    back to the queue for about as long as the ones ahead of it take. A slow destination thus
    fills only its own slots, never the process's (no head-of-line blocking across a batch).

    "As long as the ones ahead take" is that destination's own measured push time (a moving
    average), not the push timeout: a timeout-bound estimate parked a healthy destination's
    surplus for the slow one's timeout x 4 (the fan-out fairness test caught it on the
    emulator)."""

    def __init__(self, consumer: QueueConsumer) -> None:
        self.consumer = consumer
        settings = consumer.settings
        self.capacity = settings.delivery_concurrency
        self.pushes = asyncio.Semaphore(self.capacity)
        self._slots: dict[str, asyncio.Semaphore] = {}
        self.held: dict[str, int] = {}
        self.push_s: dict[str, float] = {}  # per destination: moving average of a push's time

    def hand_back_s(self, destination: str, held: int, limit: int) -> int:
        """How long a surplus message stays in the queue: the pushes ahead of it, at this
        destination's measured pace (a first guess of ``FIRST_PUSH_S`` before any is measured)."""
        each = min(self.push_s.get(destination, FIRST_PUSH_S), self.consumer.settings.delivery_timeout)
        return max(1, min(MAX_VISIBILITY_S, math.ceil(held / limit * each)))

    def measured(self, destination: str, fate: Fate, took_s: float) -> None:
        if fate.reason not in PUSHED:  # no push happened (done, not due, circuit open, ...)
            return
        before = self.push_s.get(destination)
        self.push_s[destination] = took_s if before is None else before + PACE_WEIGHT * (took_s - before)

    def limit(self, destination: str) -> int:
        dest = self.consumer.worker.destinations.get(destination)
        if dest is not None:
            return dest.limit
        settings = self.consumer.settings
        return (
            settings.delivery_concurrency
            if destination == WORKFLOW_DESTINATION
            else settings.destination_concurrency
        )

    async def handle(self, message: Message) -> Fate:
        from triggers_api.delivery.destinations import CLAIM_AHEAD
        from triggers_api.storage.dynamodb.queue import QueuedDelivery

        try:
            destination = QueuedDelivery.parse(message.body).destination
        except ValueError:
            return await self.consumer.handle(message)  # the consumer's own verdict on poison
        limit = self.limit(destination)
        held = self.held.get(destination, 0)
        if held >= limit * CLAIM_AHEAD:
            return Fate(False, "busy", self.hand_back_s(destination, held, limit))
        slots = self._slots.setdefault(destination, asyncio.Semaphore(limit))
        self.held[destination] = held + 1
        try:
            async with slots, self.pushes:
                started = time.monotonic()
                fate = await self.consumer.handle(message)
                self.measured(destination, fate, time.monotonic() - started)
                return fate
        finally:
            self.held[destination] -= 1


async def consume(
    consumer: QueueConsumer, stop: asyncio.Event, wait_s: int = 20, sweep_every_s: float = 60.0
) -> None:
    """``triggers-api worker`` on DynamoDB: long-poll the delivery queue until ``stop`` is set,
    through the same :class:`QueueConsumer` the Lambda handler uses, each message on its own
    (see :class:`Pacer`); sweep unsent deliveries now and then.

    The first sweep re-sends every due, unleased delivery whatever its age: a process that
    stored events without a workflow URL sent no message for their workflow deliveries, and a
    worker that has one starts pushing them at once, as on SQLite and PostgreSQL. Duplicate
    messages cost a receive each: the conditional claim pushes a delivery once per lease."""
    from triggers_api.delivery.destinations import CLAIM_AHEAD
    from triggers_api.storage.dynamodb.queue import SWEEP_AFTER_S

    pacer = Pacer(consumer)
    held_max = pacer.capacity * CLAIM_AHEAD
    visibility = math.ceil(consumer.settings.lease_seconds) + 1  # a dead worker's messages return then
    tasks: set[asyncio.Task[None]] = set()

    async def one(message: Message) -> None:
        try:
            fate = await pacer.handle(message)
            if fate.ok:
                await consumer.delete([message])
            elif fate.visibility_s is not None:
                await consumer.change_visibility(message.receipt_handle, fate.visibility_s)
        except asyncio.CancelledError:  # stopping: visible again at once, for another worker
            await consumer.change_visibility(message.receipt_handle, 0)
            raise
        except Exception as exc:  # handed back after the visibility timeout: claims stop repeats
            log.warning("delivery_message_failed", message_id=message.message_id, error=repr(exc))

    loop = asyncio.get_running_loop()
    next_sweep = loop.time()
    older_than_s = 0.0
    try:
        while not stop.is_set():
            if loop.time() >= next_sweep:
                next_sweep = loop.time() + sweep_every_s
                with contextlib.suppress(Exception):
                    await consumer.storage.sweep_unsent(older_than_s=older_than_s)
                    older_than_s = SWEEP_AFTER_S
            room = min(10, held_max - len(tasks))
            if room <= 0:
                await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                continue
            try:
                receiving = asyncio.ensure_future(consumer.receive(wait_s, room, visibility))
                stopping = asyncio.ensure_future(stop.wait())
                await asyncio.wait({receiving, stopping}, return_when=asyncio.FIRST_COMPLETED)
                stopping.cancel()
                if not receiving.done():  # stopping: a received batch would be handed back anyway
                    receiving.cancel()
                    break
                messages = receiving.result()
            except Exception as exc:
                log.warning("delivery_receive_failed", error=repr(exc))
                await asyncio.sleep(1)
                continue
            await consumer.worker.housekeeping()  # subscription changes, disable-after (time-gated)
            for message in messages:
                task = asyncio.create_task(one(message))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
    finally:
        if tasks:  # in-flight pushes finish and record (the worker's stop bounds the wait)
            await asyncio.gather(*tasks, return_exceptions=True)


class QueueWorker:
    """The in-process delivery worker of ``serve`` and ``worker`` on DynamoDB: long-polls the
    delivery queue through :class:`QueueConsumer` (the Lambda handler's code) instead of claiming
    from the DueIndex, and sweeps unsent deliveries once a minute. Same lifecycle as the other
    workers (``start``, ``stop_claiming``, ``stop``)."""

    def __init__(self, storage: DynamoDBStorage, settings: Settings, **worker_options: Any) -> None:
        self.settings = settings
        self.fanout = FanoutWorker(storage, settings, workflow_metrics=True, **worker_options)
        self.consumer = QueueConsumer(storage, settings, self.fanout)
        self.worker_id = self.fanout.worker_id
        # short waits in process, so a stop is prompt (the receive runs on the storage's pool)
        self.wait_s = max(1, min(20, round(settings.delivery_poll_interval)))
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._stop.clear()
        self._task = asyncio.create_task(consume(self.consumer, self._stop, self.wait_s), name="sqs-consumer")
        # the same lifecycle lines as the claim-loop worker, so log queries work on every backend
        log.info("delivery_worker_started", worker_id=self.worker_id, source="sqs", wait_s=self.wait_s)

    def stop_claiming(self) -> None:
        self._stop.set()

    async def stop(self, grace: float | None = None) -> None:
        self._stop.set()
        if self._task is not None:
            grace = self.settings.delivery_grace if grace is None else grace
            done, _ = await asyncio.wait({self._task}, timeout=grace + self.wait_s + 1)
            if not done:
                self._task.cancel()
                await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        for dest in list(self.fanout.destinations.values()):
            await dest.aclose()
        self.fanout.destinations.clear()
        log.info(
            "delivery_worker_stopped", worker_id=self.worker_id, source="sqs", released=self.consumer.released
        )

    def wake(self) -> None:
        """New messages wake the long poll by themselves."""

    def on_stored(self, records: Sequence[object]) -> None:
        """The insert sent the messages (``QueuePart._after_insert``)."""

    @property
    def in_flight(self) -> int:
        return self.fanout.in_flight

    def refresh_metrics(self) -> None:
        """The push circuit's gauge, as the single-destination worker keeps it."""
        dest = self.fanout.destinations.get(WORKFLOW_DESTINATION)
        if dest is not None and self.fanout.metrics is not None:
            self.fanout.metrics.circuit_state.set(STATE_CODES[dest.breaker.state])

    def circuit(self) -> dict[str, object]:
        """The workflow destination's circuit (what /v1/health reports for the push worker)."""
        dest = self.fanout.destinations.get(WORKFLOW_DESTINATION)
        return dest.breaker.snapshot() if dest is not None else {"state": "closed"}

    def snapshot(self) -> dict[str, object]:
        return {
            "worker": "running" if not self._stop.is_set() else "stopping",
            "in_flight": self.in_flight,
            "circuit": self.circuit(),
            "source": "sqs",
        }


__all__ = ["Fate", "Message", "Pacer", "QueueConsumer", "QueueWorker", "consume"]
