"""Subscriptions and fan-out on DynamoDB (the ``FanoutPart``).

Subscriptions live in the subscriptions table (a user's are one Query; SubscriptionIdIndex finds
one by id for the worker; the sparse FailingIndex holds active ones that keep failing). Fanned-out
deliveries are the deliveries table's ``dest#<subscription_id>`` items with ``fanout`` true (see
``delivery.py``), claimed from the DueIndex's ``fan#n`` partitions; deleting or disabling a
subscription cancels its pending deliveries through the sparse SubscriptionPendingIndex.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from triggers_api.storage.base import (
    WORKFLOW_DESTINATION,
    AttemptOutcome,
    AttemptRecord,
    AuditRecord,
    DeliveryAttempt,
    DeliveryStatus,
    DestinationDelivery,
    EventRecord,
    FanoutClaim,
    IdempotencyRecord,
    StoreOutcome,
    SubscriptionRecord,
    SubscriptionStatus,
)
from triggers_api.storage.dynamodb import schema
from triggers_api.storage.dynamodb.delivery import DIRECTED, DeliveryPart, dec_item, enc, enc_item
from triggers_api.storage.fanout import plan_fanout

Item = dict[str, Any]
ACTIVE = SubscriptionStatus.ACTIVE.value


def subscription_item(s: SubscriptionRecord) -> Item:
    item: Item = {
        "user_id": s.user_id,
        "subscription_id": s.subscription_id,
        "target_url": s.target_url,
        "event_types": orjson.dumps(list(s.event_types)).decode(),
        "filter": s.filter,
        "description": s.description,
        "metadata": s.metadata,
        "status": s.status,
        "disabled_reason": s.disabled_reason,
        "secret": s.secret,
        "previous_secret": s.previous_secret,
        "previous_secret_until_us": s.previous_secret_until_us,
        "created_us": s.created_us,
        "updated_us": s.updated_us,
        "last_success_us": s.last_success_us,
        "failing_since_us": s.failing_since_us,
    }
    if s.status == ACTIVE and s.failing_since_us is not None:
        item["failing_bucket"] = schema.FAILING_BUCKET
    return item


def subscription_from_item(raw: dict[str, Any]) -> SubscriptionRecord:
    i = dec_item(raw)
    return SubscriptionRecord(
        subscription_id=i["subscription_id"],
        user_id=i["user_id"],
        target_url=i["target_url"],
        event_types=tuple(orjson.loads(i["event_types"])),
        filter=i.get("filter"),
        description=i.get("description", ""),
        metadata=i.get("metadata", b"{}"),
        status=i["status"],
        disabled_reason=i.get("disabled_reason"),
        secret=i["secret"],
        previous_secret=i.get("previous_secret"),
        previous_secret_until_us=i.get("previous_secret_until_us"),
        created_us=i["created_us"],
        updated_us=i["updated_us"],
        last_success_us=i.get("last_success_us"),
        failing_since_us=i.get("failing_since_us"),
    )


class FanoutPart(DeliveryPart):
    """The subscription and fan-out methods of the Storage Protocol."""

    if TYPE_CHECKING:  # EventsPart's, in the assembled backend

        async def insert_events(
            self,
            events: Sequence[EventRecord],
            audit: Sequence[AuditRecord],
            idempotency: IdempotencyRecord | None = None,
        ) -> StoreOutcome: ...

    @property
    def _subscriptions_table(self) -> str:
        return self.names.subscriptions

    def _sub_key(self, user_id: str, subscription_id: str) -> dict[str, Any]:
        return {"user_id": {"S": user_id}, "subscription_id": {"S": subscription_id}}

    # -- subscriptions ----------------------------------------------------------------------------
    async def insert_subscription(self, record: SubscriptionRecord, audit: AuditRecord | None) -> None:
        items: list[dict[str, Any]] = [
            {"Put": {"TableName": self._subscriptions_table, "Item": enc_item(subscription_item(record))}}
        ]
        if audit is not None:
            items.append(await self._delivery_audit_put(audit))
        await self._transact(items)

    async def get_subscription(self, user_id: str, subscription_id: str) -> SubscriptionRecord | None:
        got = await self._call(
            "get_item",
            TableName=self._subscriptions_table,
            Key=self._sub_key(user_id, subscription_id),
            ConsistentRead=True,
        )
        item = got.get("Item")
        return subscription_from_item(item) if item is not None else None

    async def list_subscriptions(self, user_id: str) -> list[SubscriptionRecord]:
        rows = await self._query_all(
            TableName=self._subscriptions_table,
            KeyConditionExpression="user_id = :u",
            ExpressionAttributeValues={":u": {"S": user_id}},
            ConsistentRead=True,
        )
        subs = [subscription_from_item(r) for r in rows]
        subs.sort(key=lambda s: (s.created_us, s.subscription_id))
        return subs

    async def _find_subscription(self, subscription_id: str) -> SubscriptionRecord | None:
        rows = await self._query_all(
            TableName=self._subscriptions_table,
            IndexName="SubscriptionIdIndex",
            KeyConditionExpression="subscription_id = :s",
            ExpressionAttributeValues={":s": {"S": subscription_id}},
        )
        if not rows:
            return None
        found = subscription_from_item(rows[0])
        return await self.get_subscription(found.user_id, subscription_id)  # consistent

    async def load_subscriptions(self, subscription_ids: Sequence[str]) -> list[SubscriptionRecord]:
        found = await asyncio.gather(*(self._find_subscription(s) for s in dict.fromkeys(subscription_ids)))
        return [s for s in found if s is not None]

    async def update_subscription(self, record: SubscriptionRecord, audit: AuditRecord | None) -> bool:
        current = await self.get_subscription(record.user_id, record.subscription_id)
        if current is None:
            return False
        merged = subscription_item(record)
        merged["created_us"] = current.created_us
        merged["last_success_us"] = current.last_success_us
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self._subscriptions_table,
                    "Item": enc_item(merged),
                    "ConditionExpression": "attribute_exists(subscription_id)",
                }
            }
        ]
        if audit is not None:
            items.append(await self._delivery_audit_put(audit))
        if not await self._transact_conditional(items):
            return False
        if record.status not in (SubscriptionStatus.ACTIVE, SubscriptionStatus.PAUSED):
            await self._cancel_subscription(record.subscription_id)
        elif record.status == SubscriptionStatus.ACTIVE and current.status != SubscriptionStatus.ACTIVE:
            await self._after_reactivate(
                record.subscription_id, await self._pending_of(record.subscription_id)
            )
        return True

    async def _after_reactivate(self, subscription_id: str, event_ids: Sequence[str]) -> None:
        """The queue part sends the messages of a resumed subscription's pending deliveries."""

    async def delete_subscription(
        self, user_id: str, subscription_id: str, at_us: int, audit: AuditRecord | None
    ) -> bool:
        items: list[dict[str, Any]] = [
            {
                "Delete": {
                    "TableName": self._subscriptions_table,
                    "Key": self._sub_key(user_id, subscription_id),
                    "ConditionExpression": "attribute_exists(subscription_id)",
                }
            }
        ]
        if audit is not None:
            items.append(await self._delivery_audit_put(audit))
        if not await self._transact_conditional(items):
            return False
        await self._cancel_subscription(subscription_id)
        return True

    async def disable_subscription(
        self,
        subscription_id: str,
        reason: str,
        at_us: int,
        audit: Callable[[SubscriptionRecord], AuditRecord],
    ) -> bool:
        record = await self._find_subscription(subscription_id)
        if record is None or record.status == SubscriptionStatus.DISABLED:
            return False
        record.status, record.disabled_reason, record.updated_us = "disabled", reason, at_us
        items = [
            {
                "Update": {
                    "TableName": self._subscriptions_table,
                    "Key": self._sub_key(record.user_id, subscription_id),
                    "UpdateExpression": "SET #s = :d, disabled_reason = :r, updated_us = :t REMOVE failing_bucket",
                    "ConditionExpression": "attribute_exists(subscription_id) AND #s <> :d",
                    "ExpressionAttributeNames": {"#s": "status"},
                    "ExpressionAttributeValues": {
                        ":d": {"S": SubscriptionStatus.DISABLED.value},
                        ":r": {"S": reason},
                        ":t": {"N": str(at_us)},
                    },
                }
            },
            await self._delivery_audit_put(audit(record)),
        ]
        if not await self._transact_conditional(items):
            return False
        await self._cancel_subscription(subscription_id)
        return True

    async def _pending_of(self, subscription_id: str) -> list[str]:
        """Event ids of the subscription's pending deliveries (SubscriptionPendingIndex)."""

        async def shard(n: int) -> list[str]:
            rows = await self._query_all(
                TableName=self._deliveries_table,
                IndexName="SubscriptionPendingIndex",
                KeyConditionExpression="sub_pending = :p",
                ExpressionAttributeValues={":p": {"S": f"{subscription_id}#{n}"}},
            )
            return [r["event_id"]["S"] for r in rows]

        found = await asyncio.gather(*(shard(n) for n in range(schema.SUB_PENDING_SHARDS)))
        return [e for part in found for e in part]

    async def _cancel_subscription(self, subscription_id: str) -> None:
        """Cancel the subscription's pending deliveries (and re-derive their events' status)."""

        async def cancel(event_id: str) -> None:
            d = (await self._dests(event_id)).get(subscription_id)
            if d is not None:
                await self._cancel_dest(d, derive=True)

        await asyncio.gather(*(cancel(e) for e in await self._pending_of(subscription_id)))

    async def failing_subscriptions(self, failing_since_before_us: int) -> list[str]:
        rows = await self._query_all(
            TableName=self._subscriptions_table,
            IndexName="FailingIndex",
            KeyConditionExpression="failing_bucket = :b AND failing_since_us <= :t",
            ExpressionAttributeValues={
                ":b": {"S": schema.FAILING_BUCKET},
                ":t": {"N": str(failing_since_before_us)},
            },
        )
        return [r["subscription_id"]["S"] for r in rows]

    # -- fan-out at insert ---------------------------------------------------------------------
    async def _fanout_plan(self, events: Sequence[EventRecord]) -> dict[str, list[str]]:
        users = sorted({e.user_id for e in events})
        if not users:
            return {}
        found = await asyncio.gather(*(self._active_subscriptions(u) for u in users))
        subs = [s for part in found for s in part]
        if not subs:
            return {}
        plan: dict[str, list[str]] = {}
        for event_id, destination, _user, _due in plan_fanout(events, subs, self.workflow_destination):
            plan.setdefault(event_id, []).append(destination)
        return plan

    async def _active_subscriptions(self, user_id: str) -> list[SubscriptionRecord]:
        rows = await self._query_all(
            TableName=self._subscriptions_table,
            KeyConditionExpression="user_id = :u",
            FilterExpression="#s = :a",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":u": {"S": user_id}, ":a": {"S": ACTIVE}},
            ConsistentRead=True,
        )
        return [subscription_from_item(r) for r in rows]

    async def insert_directed_event(
        self, event: EventRecord, destinations: Sequence[str], audit: AuditRecord | None
    ) -> None:
        token = DIRECTED.set({event.event_id: tuple(destinations)})
        try:
            await self.insert_events([event], [audit] if audit is not None else [])
        finally:
            DIRECTED.reset(token)

    # -- claiming and recording -------------------------------------------------------------------
    async def _allowed(self, kind: str, destinations: set[str]) -> set[str]:
        if kind != "fan":
            return destinations
        subs = [d for d in destinations if d != WORKFLOW_DESTINATION]
        active = {s.subscription_id for s in await self.load_subscriptions(subs) if s.status == ACTIVE}
        return {d for d in destinations if d == WORKFLOW_DESTINATION or d in active}

    async def claim_due_deliveries(
        self,
        lease_token: str,
        now_us: int,
        lease_until_us: int,
        limit: int,
        exclude: Sequence[str] = (),
    ) -> list[FanoutClaim]:
        excluded = frozenset(exclude)
        got = await self._claim("fan", lease_token, now_us, lease_until_us, limit, excluded.__contains__)
        return self._fanout_claims(got, lease_token, lease_until_us)

    async def next_fanout_due(self, now_us: int, exclude: Sequence[str] = ()) -> int | None:
        return await self._next_due("fan", now_us, frozenset(exclude).__contains__)

    async def record_deliveries(self, records: Sequence[AttemptRecord]) -> list[bool]:
        return await self.record_attempts(records)

    async def _after_record(self, attempt: DeliveryAttempt, applied: bool) -> None:
        """A subscription's last success, or the start of its failures (the disable-after clock)."""
        if attempt.destination == WORKFLOW_DESTINATION:
            return
        key = self._sub_key(attempt.user_id, attempt.destination)
        try:
            if attempt.outcome == AttemptOutcome.DELIVERED:
                await self._call(
                    "update_item",
                    TableName=self._subscriptions_table,
                    Key=key,
                    UpdateExpression="SET last_success_us = :t REMOVE failing_since_us, failing_bucket",
                    ConditionExpression="attribute_exists(subscription_id)",
                    ExpressionAttributeValues={":t": enc(attempt.started_us + attempt.duration_us)},
                )
            else:
                await self._call(
                    "update_item",
                    TableName=self._subscriptions_table,
                    Key=key,
                    UpdateExpression="SET failing_since_us = if_not_exists(failing_since_us, :t), failing_bucket = :b",
                    ConditionExpression="attribute_exists(subscription_id) AND #s = :a",
                    ExpressionAttributeNames={"#s": "status"},
                    ExpressionAttributeValues={
                        ":t": enc(attempt.started_us),
                        ":b": enc(schema.FAILING_BUCKET),
                        ":a": enc(ACTIVE),
                    },
                )
        except self._conditional_failed_errors():
            pass  # deleted, or not active: no clock to keep

    async def release_deliveries(self, claims: Sequence[tuple[str, str, str]], due_us: int) -> int:
        return await self._release(claims, due_us)

    async def list_deliveries(self, user_id: str, event_id: str) -> list[DestinationDelivery]:
        dests = [d for d in (await self._dests(event_id)).values() if d["user_id"] == user_id and d["fanout"]]
        dests.sort(key=lambda d: (d["destination"] != WORKFLOW_DESTINATION, d["destination"]))
        return [
            DestinationDelivery(
                event_id=d["event_id"],
                destination=d["destination"],
                user_id=d["user_id"],
                status=d["status"],
                attempts=d["attempts"],
                round_attempts=d["round_attempts"],
                next_attempt_us=d["due_us"] if d["status"] == DeliveryStatus.PENDING else d.get("due_us"),
                delivered_us=d.get("delivered_us"),
                last_attempt_us=d.get("last_attempt_us"),
            )
            for d in dests
        ]
