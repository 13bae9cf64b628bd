"""SQS on the DynamoDB backend (section 7.1): one message per (event, destination) delivery.

- After an insert is durable (``_after_insert``), each new delivery is sent to
  ``<prefix>-delivery`` as ``{"event_id", "user_id", "destination"}`` (SendMessageBatch, 10 per
  call). A failed send is logged and never fails the request: the delivery is pending in
  DynamoDB, and :meth:`QueuePart.sweep_unsent` finds deliveries due long ago on the DueIndex and
  sends their messages again. Replay sends the replayed deliveries' messages.
- A consumer (``aws/lambda_worker.py``, or ``triggers-api worker`` on this backend) claims the one
  delivery a message names with :meth:`QueuePart.claim_delivery`: a conditional UpdateItem (still
  pending, due, unleased), so a message received twice, or a delivery the DueIndex claim loop
  took, is pushed once per lease.

Messages are hints, DynamoDB is the truth: a duplicate message finds its delivery done or leased.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import partial
from typing import Any

import orjson
import structlog

from triggers_api.storage.base import WORKFLOW_DESTINATION, DeliveryStatus, EventRecord, FanoutClaim, now_us
from triggers_api.storage.dynamodb import schema
from triggers_api.storage.dynamodb.delivery import is_leased
from triggers_api.storage.dynamodb.fanout import FanoutPart

log = structlog.get_logger(__name__)

SQS_BATCH = 10
PLANNED_MAX = 100_000  # deliveries planned by inserts whose commit has not been seen yet
#: The sweep re-sends deliveries due at least this long ago (a message in flight is not "lost").
SWEEP_AFTER_S = 5 * 60


@dataclass(frozen=True, slots=True)
class QueuedDelivery:
    """What one delivery message says."""

    event_id: str
    user_id: str
    destination: str

    def body(self) -> str:
        return orjson.dumps(
            {"event_id": self.event_id, "user_id": self.user_id, "destination": self.destination}
        ).decode()

    @classmethod
    def parse(cls, body: str) -> QueuedDelivery:
        """Raises ValueError for a body that is not a delivery message."""
        data = orjson.loads(body)
        if not isinstance(data, dict) or not all(
            isinstance(data.get(k), str) and data.get(k) for k in ("event_id", "user_id", "destination")
        ):
            raise ValueError("not a delivery message")
        return cls(data["event_id"], data["user_id"], data["destination"])


class ClaimState(StrEnum):
    CLAIMED = "claimed"
    NOT_DUE = "not_due"  # pending, due later (or leased by another worker until then)
    DONE = "done"  # delivered, dead-lettered, cancelled, or gone: nothing to push


@dataclass(frozen=True, slots=True)
class TargetedClaim:
    state: ClaimState
    claim: FanoutClaim | None = None
    due_us: int | None = None


class QueuePart(FanoutPart):
    """The SQS sends, the sweep, and the targeted claim a queue consumer uses."""

    _planned_by_event: OrderedDict[str, list[QueuedDelivery]] | None = None
    _queue_url_value: str | None = None

    # -- SQS calls --------------------------------------------------------------------------------
    async def _sqs_call(self, operation: str, **params: Any) -> dict[str, Any]:
        _, sqs = self._require()
        result: dict[str, Any] = await self._call_sync(partial(getattr(sqs, operation), **params))
        return result

    async def queue_url(self) -> str:
        if self._queue_url_value is None:
            got = await self._sqs_call("get_queue_url", QueueName=self.names.delivery_queue)
            self._queue_url_value = str(got["QueueUrl"])
        return self._queue_url_value

    async def send_deliveries(self, deliveries: Sequence[QueuedDelivery], delay_s: int = 0) -> int:
        """Send one message per delivery; returns how many SQS accepted (failures are logged:
        the sweep re-sends them)."""
        if not deliveries:
            return 0
        try:
            url = await self.queue_url()
        except Exception as exc:
            log.warning("delivery_enqueue_failed", count=len(deliveries), error=repr(exc))
            return 0

        async def batch(chunk: Sequence[QueuedDelivery]) -> int:
            entries = [
                {"Id": str(i), "MessageBody": d.body(), "DelaySeconds": max(0, min(900, delay_s))}
                for i, d in enumerate(chunk)
            ]
            try:
                got = await self._sqs_call("send_message_batch", QueueUrl=url, Entries=entries)
            except Exception as exc:
                log.warning("delivery_enqueue_failed", count=len(chunk), error=repr(exc))
                return 0
            failed = got.get("Failed") or []
            if failed:
                log.warning("delivery_enqueue_failed", count=len(failed), error=str(failed[0].get("Code")))
            return len(got.get("Successful") or [])

        sent = await asyncio.gather(
            *(batch(deliveries[i : i + SQS_BATCH]) for i in range(0, len(deliveries), SQS_BATCH))
        )
        return sum(sent)

    # -- seams ------------------------------------------------------------------------------------
    async def _delivery_items_for_insert(
        self, events: Sequence[EventRecord], now_us: int
    ) -> list[dict[str, Any]]:
        puts = await super()._delivery_items_for_insert(events, now_us)
        if self._planned_by_event is None:
            self._planned_by_event = OrderedDict()
        planned = self._planned_by_event
        for put in puts:
            item = put["Put"]["Item"]
            delivery = QueuedDelivery(item["event_id"]["S"], item["user_id"]["S"], item["destination"]["S"])
            planned.setdefault(delivery.event_id, []).append(delivery)
        while len(planned) > PLANNED_MAX:  # inserts that never committed (or were idempotent repeats)
            planned.popitem(last=False)
        return puts

    def _sendable(self, destination: str) -> bool:
        """Workflow deliveries get messages only where a workflow URL is configured (else they
        wait in the inbox for pull consumers, and no worker would push them)."""
        return destination != WORKFLOW_DESTINATION or self.workflow_destination

    async def _after_insert(self, events: Sequence[EventRecord]) -> None:
        planned: dict[str, list[QueuedDelivery]] = self._planned_by_event or {}
        deliveries = [d for e in events for d in planned.pop(e.event_id, []) if self._sendable(d.destination)]
        try:
            await self.send_deliveries(deliveries)
        except Exception as exc:  # never fail a stored request: the sweep recovers
            log.warning("delivery_enqueue_failed", count=len(deliveries), error=repr(exc))

    async def _after_replay(self, event_ids: Sequence[str]) -> None:
        await self._resend(event_ids, None)

    async def _after_reactivate(self, subscription_id: str, event_ids: Sequence[str]) -> None:
        await self._resend(event_ids, subscription_id)

    async def _resend(self, event_ids: Sequence[str], destination: str | None) -> None:
        deliveries: list[QueuedDelivery] = []
        for event_id in event_ids:
            for d in (await self._dests(event_id)).values():
                if d["status"] != DeliveryStatus.PENDING or not self._sendable(d["destination"]):
                    continue
                if destination is None or d["destination"] == destination:
                    deliveries.append(QueuedDelivery(d["event_id"], d["user_id"], d["destination"]))
        await self.send_deliveries(deliveries)

    def _unsendable(self, destination: str) -> bool:
        return not self._sendable(destination)

    # -- the sweep --------------------------------------------------------------------------------
    async def sweep_unsent(self, older_than_s: float = SWEEP_AFTER_S, limit: int = 1_000) -> int:
        """Re-send the messages of deliveries due (and unleased) for ``older_than_s`` or more:
        their message was never sent, or was lost. Returns how many were sent."""
        bound = now_us() - int(older_than_s * 1_000_000)
        found: list[tuple[int, str, str]] = []
        for kind in ("due", "fan"):
            due = await self._due_candidates(kind, bound, limit, self._unsendable, unleased_at=now_us())
            found += await self._filtered(kind, due)  # paused subscriptions wait for their resume
        found.sort()
        deliveries: list[QueuedDelivery] = []
        for _key, event_id, destination in found[:limit]:
            d = (await self._dests(event_id)).get(destination)
            if d is not None and d["status"] == DeliveryStatus.PENDING:
                deliveries.append(QueuedDelivery(event_id, d["user_id"], destination))
        sent = await self.send_deliveries(deliveries)
        if deliveries:
            log.info("delivery_sweep", found=len(deliveries), sent=sent)
        return sent

    # -- the consumer's claim -------------------------------------------------------------------
    async def claim_delivery(
        self, delivery: QueuedDelivery, lease_token: str, now: int, lease_until_us: int
    ) -> TargetedClaim:
        """Lease the one delivery a message names, if it is pending, due and unleased."""
        for _ in range(3):
            d = (await self._dests(delivery.event_id)).get(delivery.destination)
            if d is None or d["user_id"] != delivery.user_id or d["status"] != DeliveryStatus.PENDING:
                return TargetedClaim(ClaimState.DONE)
            if d["fanout"] and not await self._allowed("fan", {delivery.destination}):
                return TargetedClaim(ClaimState.DONE)  # paused: resuming sends its messages again
            if is_leased(d, now):
                return TargetedClaim(ClaimState.NOT_DUE, due_us=int(d["lease_until_us"]))
            if d["due_us"] > now:
                return TargetedClaim(ClaimState.NOT_DUE, due_us=int(d["due_us"]))
            leased = await self._lease(
                delivery.event_id, delivery.destination, lease_token, now, lease_until_us
            )
            if leased is None:
                continue  # changed meanwhile: look again
            event = await self._mark_queued(leased)
            if event is None:
                return TargetedClaim(ClaimState.DONE)
            claim = FanoutClaim(
                event,
                delivery.destination,
                lease_token,
                lease_until_us,
                leased["attempts"],
                leased["round_attempts"],
            )
            return TargetedClaim(ClaimState.CLAIMED, claim=claim)
        return TargetedClaim(ClaimState.NOT_DUE, due_us=now + 1_000_000)


__all__ = ["ClaimState", "QueuePart", "QueuedDelivery", "TargetedClaim", "schema"]
