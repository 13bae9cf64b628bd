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
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog

from triggers_api.config import Settings
from triggers_api.delivery.fanout import FanoutWorker
from triggers_api.storage.base import WORKFLOW_DESTINATION, AttemptOutcome, now_us

if TYPE_CHECKING:
    from triggers_api.storage.dynamodb import DynamoDBStorage

log = structlog.get_logger(__name__)

MAX_VISIBILITY_S = 43_200  # SQS's limit for ChangeMessageVisibility (12 h)


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

    async def handle(self, message: Message) -> Fate:
        from triggers_api.storage.dynamodb.queue import ClaimState, QueuedDelivery

        try:
            delivery = QueuedDelivery.parse(message.body)
        except ValueError:
            log.warning("delivery_message_invalid", message_id=message.message_id)
            return Fate(False, "invalid")  # poison: the redrive policy moves it to the DLQ
        now = now_us()
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
        if claim.destination == WORKFLOW_DESTINATION and WORKFLOW_DESTINATION not in self.worker.destinations:
            # no workflow URL here: leave the delivery for pull consumers, drop the message
            await self.storage.release_deliveries([(claim.event.event_id, claim.destination, token)], now)
            return Fate(True, "no_workflow_url")
        try:
            decided = await self.worker.deliver_once(claim)
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

    async def receive(self, wait_s: int, max_messages: int = 10) -> list[Message]:
        got = await self._sqs(
            "receive_message",
            QueueUrl=await self.storage.queue_url(),
            MaxNumberOfMessages=max_messages,
            WaitTimeSeconds=wait_s,
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


async def consume(
    consumer: QueueConsumer, stop: asyncio.Event, wait_s: int = 20, sweep_every_s: float = 60.0
) -> None:
    """``triggers-api worker`` on DynamoDB: long-poll the delivery queue until ``stop`` is set,
    through the same :class:`QueueConsumer` the Lambda handler uses; sweep unsent deliveries
    now and then."""
    loop = asyncio.get_running_loop()
    next_sweep = loop.time()
    while not stop.is_set():
        if loop.time() >= next_sweep:
            next_sweep = loop.time() + sweep_every_s
            with contextlib.suppress(Exception):
                await consumer.storage.sweep_unsent()
        try:
            receiving = asyncio.ensure_future(consumer.receive(wait_s))
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
        if not messages:
            await consumer.worker.housekeeping()
            continue
        fates = await consumer.handle_all(messages)
        try:
            await consumer.delete([m for m in messages if fates[m.message_id].ok])
        except Exception as exc:  # handed back after the visibility timeout: claims stop repeats
            log.warning("delivery_delete_failed", error=repr(exc))


class QueueWorker:
    """The in-process delivery worker of ``serve`` and ``worker`` on DynamoDB: long-polls the
    delivery queue through :class:`QueueConsumer` (the Lambda handler's code) instead of claiming
    from the DueIndex, and sweeps unsent deliveries once a minute. Same lifecycle as the other
    workers (``start``, ``stop_claiming``, ``stop``)."""

    def __init__(self, storage: DynamoDBStorage, settings: Settings, **worker_options: Any) -> None:
        self.settings = settings
        self.fanout = FanoutWorker(storage, settings, **worker_options)
        self.consumer = QueueConsumer(storage, settings, self.fanout)
        self.worker_id = self.fanout.worker_id
        # short waits in process, so a stop is prompt (the receive runs on the storage's pool)
        self.wait_s = max(1, min(20, round(settings.delivery_poll_interval)))
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._stop.clear()
        self._task = asyncio.create_task(consume(self.consumer, self._stop, self.wait_s), name="sqs-consumer")
        log.info("queue_worker_started", worker_id=self.worker_id, wait_s=self.wait_s)

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
        log.info("queue_worker_stopped", worker_id=self.worker_id)

    def wake(self) -> None:
        """New messages wake the long poll by themselves."""

    def on_stored(self, records: Sequence[object]) -> None:
        """The insert sent the messages (``QueuePart._after_insert``)."""

    @property
    def in_flight(self) -> int:
        return self.fanout.in_flight

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


__all__ = ["Fate", "Message", "QueueConsumer", "QueueWorker", "consume"]
