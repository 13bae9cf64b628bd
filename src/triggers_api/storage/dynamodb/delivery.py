"""Delivery on DynamoDB: claims, leases, attempts, dead letters and replay (the ``DeliveryPart``).

Every event's delivery state lives in the deliveries table, next to its ``#event`` pointer:

- one ``dest#<destination>`` item per (event, destination) delivery: ``dest#workflow`` for an
  event on the single-destination path, one per matching subscription (plus the workflow's when
  it is a destination) for a fanned-out one (``fanout`` true). Attributes: ``destination,
  user_id, user_shard, ts_id, ts_us, fanout, status`` (pending/delivered/failed/cancelled),
  ``attempts, round_attempts, due_us`` (the real due time), ``next_attempt_us`` (the DueIndex sort
  key: the due time, or the lease's end while leased, so an expired lease makes the delivery due
  again with no write), ``lease_token, lease_until_us, delivered_us, last_attempt_us, ver`` (a
  version every write bumps, for conditional Puts), ``ttl`` (the event's), and the sparse index
  keys: ``due_shard`` ('due#n' single path / 'fan#n' fanned out while pending, 'dead#n' while
  dead-lettered), ``dead_ts_id`` while dead-lettered, ``sub_pending`` while pending to a
  subscription.
- one ``attempt#<attempt_id>`` item per attempt (the history), with ``attempt_started_us`` and
  ``user_shard`` for the AttemptIndex.

The event item's ``status`` is derived from its deliveries by ``storage/fanout.py``'s
``derive_status`` (for one ``dest#workflow`` item the rules give exactly the single-destination
statuses). Writes that change a delivery's outcome are one TransactWriteItems: the attempt, the
delivery (conditional on its ``ver``), the event (conditional on its ``dseq``, a counter every
delivery change bumps, so a status derived from deliveries another process changed meanwhile is
never written) and the audit record; a lost race is re-read and re-applied.

Claims are safe across processes by conditional UpdateItem: still pending, due, and not leased
(no lease, or one that ended at or before now).
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from triggers_api.errors import StorageError
from triggers_api.storage.base import (
    WORKFLOW_DESTINATION,
    AttemptCounts,
    AttemptOutcome,
    AttemptRecord,
    AuditRecord,
    DeliveryAttempt,
    DeliveryClaim,
    DeliveryDepths,
    DeliveryStatus,
    EventRecord,
    EventStatus,
    FanoutClaim,
    ReplaySelector,
)
from triggers_api.storage.base import now_us as clock_us
from triggers_api.storage.dynamodb import schema
from triggers_api.storage.dynamodb.core import (
    ConditionFailed,
    DynamoCore,
    TransactionCancelled,
    audit_item,
    event_from_item,
)
from triggers_api.storage.fanout import derive_status

Item = dict[str, Any]

#: Destinations of events stored by ``insert_directed_event`` in this task (event id -> names).
DIRECTED: contextvars.ContextVar[dict[str, tuple[str, ...]] | None] = contextvars.ContextVar(
    "triggers_directed", default=None
)

RACE_RETRIES = 16  # re-reads of a delivery whose item another process changed meanwhile


# -- attribute values ------------------------------------------------------------------------------
def enc(value: Any) -> dict[str, Any]:
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int):
        return {"N": str(value)}
    if isinstance(value, bytes):
        return {"B": value}
    if isinstance(value, str):
        return {"S": value}
    raise TypeError(f"cannot store {type(value).__name__}")


def dec(av: dict[str, Any]) -> Any:
    (kind, value), *_ = av.items()
    if kind == "S":
        return value
    if kind == "N":
        return int(value)
    if kind == "BOOL":
        return bool(value)
    if kind == "B":
        return bytes(value)
    if kind == "NULL":
        return None
    raise TypeError(f"unexpected attribute type {kind}")


def enc_item(values: Item) -> dict[str, Any]:
    return {k: enc(v) for k, v in values.items() if v is not None}


def dec_item(item: dict[str, Any]) -> Item:
    return {k: dec(v) for k, v in item.items()}


def dest_key(event_id: str, destination: str) -> dict[str, Any]:
    return {"event_id": {"S": event_id}, "item": {"S": schema.DESTINATION_PREFIX + destination}}


def is_leased(d: Item, now: int | None = None) -> bool:
    until = d.get("lease_until_us")
    return until is not None and (now is None or until > now)


def new_dest(
    event: EventRecord, user_shard: str, ts_id: str, destination: str, fanout: bool, shards: int
) -> Item:
    d: Item = {
        "event_id": event.event_id,
        "item": schema.DESTINATION_PREFIX + destination,
        "destination": destination,
        "user_id": event.user_id,
        "user_shard": user_shard,
        "ts_id": ts_id,
        "ts_us": event.ts_us,
        "fanout": fanout,
        "status": DeliveryStatus.PENDING.value,
        "attempts": 0,
        "round_attempts": 0,
        "due_us": event.ts_us,
        "ttl": event.expires_at,
        "ver": 0,
    }
    return index_keys(d, shards)


def index_keys(d: Item, shards: int) -> Item:
    """Set the sparse index keys that follow from the delivery's status (in place)."""
    for key in ("due_shard", "dead_ts_id", "sub_pending"):
        d.pop(key, None)
    event_id, destination = d["event_id"], d["destination"]
    if d["status"] == DeliveryStatus.PENDING:
        d["due_shard"] = schema.due_shard(event_id, destination, "fan" if d["fanout"] else "due", shards)
        d["next_attempt_us"] = d["due_us"]
        if destination != WORKFLOW_DESTINATION:
            d["sub_pending"] = schema.sub_pending(destination, event_id)
    elif d["status"] == DeliveryStatus.FAILED and not d.get("acknowledged"):
        d["due_shard"] = schema.due_shard(event_id, destination, "dead", shards)
        d["dead_ts_id"] = f"{d['ts_id']}#{destination}"
        d["next_attempt_us"] = d["due_us"]
    return d


def apply_outcome(d: Item, a: DeliveryAttempt, token: str, next_at: int | None, acked: bool) -> bool:
    """One attempt on a delivery item (in place): counted always; whether its outcome applied.

    Single destination (``Storage.record_attempt``): a success applies unless the event is
    delivered already, whatever the lease. Fanned out (``apply_delivery_attempt``): a success
    applies while pending. A retry or a dead letter needs the pending delivery's lease. Nothing
    applies to an acknowledged event."""
    d["attempts"] += 1
    d["last_attempt_us"] = a.started_us
    ended = a.started_us + a.duration_us
    if acked:
        return False
    status = d["status"]
    applied = False
    if a.outcome == AttemptOutcome.DELIVERED:
        ok = status == DeliveryStatus.PENDING or (not d["fanout"] and status == DeliveryStatus.FAILED)
        if ok:
            d["status"] = DeliveryStatus.DELIVERED.value
            d["delivered_us"] = d.get("delivered_us") or ended
            applied = True
    elif status == DeliveryStatus.PENDING and d.get("lease_token") == token:
        if a.outcome == AttemptOutcome.RETRY:
            d["due_us"] = next_at if next_at is not None else ended
            applied = True
        elif a.outcome == AttemptOutcome.FAILED:
            d["status"] = DeliveryStatus.FAILED.value
            applied = True
    if applied:
        d.pop("lease_token", None)
        d.pop("lease_until_us", None)
        d["round_attempts"] += 1
    return applied


def attempt_item(a: DeliveryAttempt, user_shard: str, ttl: int) -> Item:
    return {
        "event_id": a.event_id,
        "item": schema.ATTEMPT_PREFIX + a.attempt_id,
        "attempt_id": a.attempt_id,
        "user_id": a.user_id,
        "user_shard": user_shard,
        "attempt_started_us": a.started_us,
        "duration_us": a.duration_us,
        "outcome": a.outcome,
        "response_status": a.response_status,
        "error": a.error,
        "response_body": a.response_body,
        "destination": a.destination,
        "ttl": ttl,
    }


def attempt_from_item(i: Item) -> DeliveryAttempt:
    return DeliveryAttempt(
        attempt_id=i["attempt_id"],
        event_id=i["event_id"],
        user_id=i["user_id"],
        started_us=i["attempt_started_us"],
        duration_us=i["duration_us"],
        outcome=i["outcome"],
        response_status=i.get("response_status"),
        error=i.get("error"),
        response_body=i.get("response_body", b""),
        destination=i.get("destination", WORKFLOW_DESTINATION),
    )


class DeliveryPart(DynamoCore):
    """The delivery methods of the Storage Protocol on the deliveries table (see module doc)."""

    #: DueIndex partitions per kind. More spread writes (10,000 events/s need >= 10 at 1,000
    #: WCU/s each); fewer make a claim cheaper (one Query each). See docs/deploy-aws.md.
    due_shards: int = schema.DUE_SHARDS

    def __init__(self, *args: Any, due_shards: int = schema.DUE_SHARDS, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not 1 <= due_shards <= 1024:
            raise ValueError("due_shards must be 1..1024")
        self.due_shards = due_shards

    # -- low-level helpers ------------------------------------------------------------------------
    @property
    def _deliveries_table(self) -> str:
        return self.names.deliveries

    @property
    def _events_table(self) -> str:
        return self.names.events

    @staticmethod
    def _conditional_failed_errors() -> type[ConditionFailed]:
        return ConditionFailed

    @staticmethod
    def _race_error(message: str) -> StorageError:
        return StorageError(message)

    async def _transact_conditional(self, items: list[dict[str, Any]]) -> bool:
        """One TransactWriteItems; False when one of its conditions failed (a lost race)."""
        try:
            await self._transact(items)
        except TransactionCancelled as exc:
            if "ConditionalCheckFailed" in exc.reasons:
                return False
            raise
        return True

    async def _delivery_audit_put(self, record: AuditRecord) -> dict[str, Any]:
        count = await self._shard_count(record.user_id)
        shard = schema.event_shard(record.log_id, count.for_writing(clock_us()))
        return {"Put": {"TableName": self.names.audit, "Item": audit_item(record, shard)}}

    async def _event_key(self, event: EventRecord, at_us: int) -> tuple[str, str]:
        count = await self._shard_count(event.user_id)
        shard = schema.event_shard(event.event_id, count.for_writing(at_us))
        return schema.user_shard(event.user_id, shard), schema.ts_id(event.ts_us, event.event_id)

    def _event_from_item(self, item: dict[str, Any]) -> EventRecord:
        return event_from_item(item)

    async def _query_all(self, **request: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        while True:
            page = await self._call("query", **request)
            items += page.get("Items", [])
            last = page.get("LastEvaluatedKey")
            if last is None:
                return items
            request["ExclusiveStartKey"] = last

    async def _collection(self, event_id: str, prefix: str) -> list[Item]:
        rows = await self._query_all(
            TableName=self._deliveries_table,
            KeyConditionExpression="event_id = :e AND begins_with(#i, :p)",
            ExpressionAttributeNames={"#i": "item"},
            ExpressionAttributeValues={":e": {"S": event_id}, ":p": {"S": prefix}},
            ConsistentRead=True,
        )
        return [dec_item(r) for r in rows]

    async def _dests(self, event_id: str) -> dict[str, Item]:
        return {d["destination"]: d for d in await self._collection(event_id, schema.DESTINATION_PREFIX)}

    async def _delivery_event_item(self, user_shard: str, ts_id: str) -> dict[str, Any] | None:
        got = await self._call(
            "get_item",
            TableName=self._events_table,
            Key={"user_shard": {"S": user_shard}, "ts_id": {"S": ts_id}},
            ConsistentRead=True,
        )
        item: dict[str, Any] | None = got.get("Item")
        return item

    # -- seams (DynamoCore calls these) -------------------------------------------------------------
    async def _delivery_items_for_insert(
        self, events: Sequence[EventRecord], now_us: int
    ) -> list[dict[str, Any]]:
        """The ``dest#`` items written with the events: the fan-out plan (matching active
        subscriptions, plus the workflow when it is a destination) or one ``dest#workflow``."""
        directed = DIRECTED.get() or {}
        plan = await self._fanout_plan([e for e in events if e.event_id not in directed])
        puts: list[dict[str, Any]] = []
        for e in events:
            shard, ts = await self._event_key(e, now_us)
            if e.acknowledged_us is not None:
                continue
            targets = directed.get(e.event_id)
            if targets is not None:
                dests = [new_dest(e, shard, ts, t, True, self.due_shards) for t in targets]
            elif e.event_id in plan:
                dests = [new_dest(e, shard, ts, t, True, self.due_shards) for t in plan[e.event_id]]
            else:
                dests = [new_dest(e, shard, ts, WORKFLOW_DESTINATION, False, self.due_shards)]
            puts += [{"Put": {"TableName": self._deliveries_table, "Item": enc_item(d)}} for d in dests]
        return puts

    async def _fanout_plan(self, events: Sequence[EventRecord]) -> dict[str, list[str]]:
        """Event id -> destinations, for the events that match an active subscription."""
        return {}  # FanoutPart overrides

    async def _ack_delivery_updates(self, user_id: str, event_ids: Sequence[str], at_us: int) -> None:
        """After an acknowledgement commits: its pending deliveries are cancelled, its dead
        letters leave the dead-letter indexes (an acknowledged event is no dead letter)."""
        await asyncio.gather(*(self._cancel_event(e) for e in event_ids))

    async def _cancel_event(self, event_id: str) -> None:
        cancelled = False
        for d in (await self._dests(event_id)).values():
            if d["status"] == DeliveryStatus.PENDING:
                await self._cancel_dest(d, derive=False)
                cancelled = True
            elif d["status"] == DeliveryStatus.FAILED and "due_shard" in d:
                d["acknowledged"] = True
                await self._put_dest(d)
        if cancelled:  # the status follows the deliveries, as on SQLite and PostgreSQL: once
            await self._rederive(event_id)

    async def _cancel_dest(self, d: Item, *, derive: bool) -> None:
        for _ in range(RACE_RETRIES):
            if d["status"] != DeliveryStatus.PENDING:
                return
            d["status"] = DeliveryStatus.CANCELLED.value
            d.pop("lease_token", None)
            d.pop("lease_until_us", None)
            if await self._put_dest(d):
                if derive:
                    await self._rederive(d["event_id"])
                return
            fresh = (await self._dests(d["event_id"])).get(d["destination"])
            if fresh is None:
                return
            d = fresh

    async def _put_dest(self, d: Item) -> bool:
        """Write a delivery item over the version read; False when another write came first."""
        seen = d["ver"]
        d["ver"] = seen + 1
        index_keys(d, self.due_shards)
        try:
            await self._call(
                "put_item",
                TableName=self._deliveries_table,
                Item=enc_item(d),
                ConditionExpression="ver = :v",
                ExpressionAttributeValues={":v": {"N": str(seen)}},
            )
        except self._conditional_failed_errors():
            d["ver"] = seen
            return False
        return True

    async def _snapshot(self, event_id: str) -> tuple[dict[str, Any] | None, dict[str, Item]]:
        """The event item, then its deliveries, read in this order: a write that commits after the
        event was read bumps its ``dseq``, so an update conditional on the ``dseq`` read here
        never rests on deliveries older than that write. (Read the other way round, a write
        landing between the two reads would pass the condition with stale deliveries.)"""
        dests = await self._dests(event_id)
        if not dests:
            return None, dests
        any_d = next(iter(dests.values()))
        ev = await self._delivery_event_item(any_d["user_shard"], any_d["ts_id"])
        if ev is None:
            return None, dests
        return ev, await self._dests(event_id)

    async def _rederive(self, event_id: str) -> None:
        """Write the event status its deliveries give (after a change outside record_*)."""
        for _ in range(RACE_RETRIES):
            ev, dests = await self._snapshot(event_id)
            if ev is None or not dests:
                return
            update = self._event_status_update(ev, dests.values(), None)
            try:
                await self._call("update_item", **update)
                return
            except self._conditional_failed_errors():
                continue

    def _event_status_update(
        self, ev: dict[str, Any], dests: Iterable[Item], extra: dict[str, Any] | None
    ) -> dict[str, Any]:
        """The UpdateItem of the event that writes its derived status (conditional on dseq);
        ``extra``: retry_count/last_retry_us counting of an attempt."""
        e = dec_item(
            {k: v for k, v in ev.items() if k in ("status", "acknowledged_us", "dseq", "delivered_us")}
        )
        acked = e.get("acknowledged_us") is not None
        dest_list = list(dests)
        status = derive_status(
            e["status"], acked, [(d["status"], d["attempts"], is_leased(d)) for d in dest_list]
        )
        sets = ["#s = :s", "dseq = :n"]
        removes: list[str] = []
        values: dict[str, Any] = {":s": {"S": status}, ":n": {"N": str(e.get("dseq", 0) + 1)}}
        if status == EventStatus.DELIVERED:
            removes.append("inbox_ts_id")
            if e.get("delivered_us") is None:
                delivered = max((d["delivered_us"] for d in dest_list if d.get("delivered_us")), default=None)
                if delivered is not None:
                    sets.append("delivered_us = :d")
                    values[":d"] = {"N": str(delivered)}
        elif not acked:
            sets.append("inbox_ts_id = :tid")
            values[":tid"] = ev["ts_id"]
        if extra is not None:
            sets.append("retry_count = if_not_exists(retry_count, :zero) + :one")
            sets.append("last_retry_us = :lr")
            values |= {":zero": {"N": "0"}, ":one": {"N": "1"}, ":lr": {"N": str(extra["last_retry_us"])}}
        if "dseq" in e:
            condition = "dseq = :seen"
            values[":seen"] = {"N": str(e["dseq"])}
        else:
            condition = "attribute_exists(ts_id) AND attribute_not_exists(dseq)"
        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        return {
            "TableName": self._events_table,
            "Key": {"user_shard": ev["user_shard"], "ts_id": ev["ts_id"]},
            "UpdateExpression": expression,
            "ConditionExpression": condition,
            "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": values,
        }

    async def _delete_delivery_items(self, event_ids: Sequence[str]) -> None:
        """Retention: the dest and attempt items of deleted events go with them."""
        deletes: list[dict[str, Any]] = []
        for event_id in event_ids:
            for prefix in (schema.DESTINATION_PREFIX, schema.ATTEMPT_PREFIX):
                for i in await self._collection(event_id, prefix):
                    deletes.append({"event_id": {"S": i["event_id"]}, "item": {"S": i["item"]}})
        if deletes:
            await self._batch_write(self._deliveries_table, [], deletes)

    # -- claiming -----------------------------------------------------------------------------------
    async def _due_candidates(
        self,
        kind: str,
        due_by: int | None,
        limit: int,
        skip: Callable[[str], bool] = lambda _d: False,
        unleased_at: int | None = None,
    ) -> list[tuple[int, str, str]]:
        """(due_us, event_id, destination) of up to ``limit`` DueIndex entries per shard of
        ``kind``, merged earliest due first: due by ``due_by`` and not under a live lease at
        ``unleased_at`` (each when given)."""

        async def one(shard: int) -> list[tuple[int, str, str]]:
            values: dict[str, Any] = {":s": {"S": f"{kind}#{shard}"}}
            condition = "due_shard = :s"
            if due_by is not None:
                condition += " AND next_attempt_us <= :due"
                values[":due"] = {"N": str(due_by)}
            request: dict[str, Any] = {
                "TableName": self._deliveries_table,
                "IndexName": "DueIndex",
                "KeyConditionExpression": condition,
                "ExpressionAttributeValues": values,
                "Limit": max(limit, 1),
            }
            if unleased_at is not None:
                request["FilterExpression"] = "attribute_not_exists(lease_until_us) OR lease_until_us <= :now"
                values[":now"] = {"N": str(unleased_at)}
            out: list[tuple[int, str, str]] = []
            while len(out) < limit:
                page = await self._call("query", **request)
                for r in page.get("Items", []):
                    dest = r["item"]["S"][len(schema.DESTINATION_PREFIX) :]
                    if not skip(dest):
                        out.append((int(r["next_attempt_us"]["N"]), r["event_id"]["S"], dest))
                last = page.get("LastEvaluatedKey")
                if last is None:
                    break
                request["ExclusiveStartKey"] = last
            return out

        found = await asyncio.gather(*(one(s) for s in range(self.due_shards)))
        return sorted(c for part in found for c in part)

    async def _lease(
        self, event_id: str, destination: str, token: str, now_us: int, lease_until_us: int
    ) -> Item | None:
        """Lease one delivery if it is still pending, due and unleased; the item, or None."""
        try:
            got = await self._call(
                "update_item",
                TableName=self._deliveries_table,
                Key=dest_key(event_id, destination),
                UpdateExpression="SET lease_token = :t, lease_until_us = :u ADD ver :one",
                ConditionExpression=(
                    "#s = :pending AND due_us <= :now AND "
                    "(attribute_not_exists(lease_until_us) OR lease_until_us <= :now)"
                ),
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={
                    ":t": {"S": token},
                    ":u": {"N": str(lease_until_us)},
                    ":now": {"N": str(now_us)},
                    ":pending": {"S": DeliveryStatus.PENDING.value},
                    ":one": {"N": "1"},
                },
                ReturnValues="ALL_NEW",
            )
        except self._conditional_failed_errors():
            return None
        return dec_item(got["Attributes"])

    async def _mark_queued(self, d: Item) -> EventRecord | None:
        """The claimed delivery's event, now ``queued``; None (and the delivery cancelled) when
        the event was acknowledged or is gone."""
        key = {"user_shard": {"S": d["user_shard"]}, "ts_id": {"S": d["ts_id"]}}
        try:
            got = await self._call(
                "update_item",
                TableName=self._events_table,
                Key=key,
                UpdateExpression="SET #s = :q ADD dseq :one",
                ConditionExpression="attribute_exists(ts_id) AND #s = :r AND attribute_not_exists(acknowledged_us)",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={
                    ":q": {"S": EventStatus.QUEUED.value},
                    ":r": {"S": EventStatus.RECEIVED.value},
                    ":one": {"N": "1"},
                },
                ReturnValues="ALL_NEW",
            )
            item: dict[str, Any] | None = got["Attributes"]
        except self._conditional_failed_errors():
            item = await self._delivery_event_item(d["user_shard"], d["ts_id"])
        if item is None or "acknowledged_us" in item:
            await self._cancel_dest(d, derive=False)
            return None
        return self._event_from_item(item)

    async def _allowed(self, kind: str, destinations: set[str]) -> set[str]:
        """Which of these destinations may be claimed now (FanoutPart: active subscriptions)."""
        return destinations

    async def _filtered(
        self, kind: str, candidates: list[tuple[int, str, str]]
    ) -> list[tuple[int, str, str]]:
        allowed = await self._allowed(kind, {c[2] for c in candidates})
        return [c for c in candidates if c[2] in allowed]

    async def _claim(
        self,
        kind: str,
        token: str,
        now_us: int,
        lease_until_us: int,
        limit: int,
        skip: Callable[[str], bool] = lambda _d: False,
    ) -> list[tuple[Item, EventRecord]]:
        if limit <= 0:
            return []
        claimed: list[tuple[Item, EventRecord]] = []
        tried: set[tuple[str, str]] = set()
        for _ in range(4):  # candidates another claimer took are replaced by the next ones
            candidates = [
                c
                for c in await self._filtered(
                    kind, await self._due_candidates(kind, now_us, limit, skip, unleased_at=now_us)
                )
                if (c[1], c[2]) not in tried
            ]
            if not candidates:
                break
            for start in range(0, len(candidates), limit):
                wanted = limit - len(claimed)
                if wanted <= 0:
                    break
                chunk = candidates[start : start + wanted]
                tried.update((c[1], c[2]) for c in chunk)
                leased = await asyncio.gather(
                    *(self._lease(c[1], c[2], token, now_us, lease_until_us) for c in chunk)
                )
                items = [d for d in leased if d is not None]
                events = await asyncio.gather(*(self._mark_queued(d) for d in items))
                claimed += [(d, e) for d, e in zip(items, events, strict=True) if e is not None]
            if len(claimed) >= limit:
                break
        claimed.sort(key=lambda c: (c[0]["due_us"], c[0]["event_id"]))
        return claimed

    async def claim_due_events(
        self, lease_token: str, now_us: int, lease_until_us: int, limit: int
    ) -> list[DeliveryClaim]:
        got = await self._claim("due", lease_token, now_us, lease_until_us, limit)
        return [
            DeliveryClaim(event, lease_token, lease_until_us, d["attempts"], d["round_attempts"])
            for d, event in got
        ]

    async def _next_due(self, kind: str, now_us: int, skip: Callable[[str], bool]) -> int | None:
        """The earliest due time of a claimable delivery of ``kind`` (see ``next_delivery_due``)."""
        batch = 8
        while True:
            candidates = await self._due_candidates(kind, None, batch, skip, unleased_at=now_us)
            allowed = await self._filtered(kind, candidates)
            if allowed:
                return allowed[0][0]
            if len(candidates) < batch * self.due_shards:
                return None
            batch *= 8

    async def next_delivery_due(self, now_us: int) -> int | None:
        return await self._next_due("due", now_us, lambda _d: False)

    # -- attempts -------------------------------------------------------------------------------------
    async def record_attempt(
        self,
        attempt: DeliveryAttempt,
        lease_token: str,
        *,
        next_attempt_us: int | None = None,
        audit: AuditRecord | None = None,
    ) -> bool:
        (applied,) = await self.record_attempts([AttemptRecord(attempt, lease_token, next_attempt_us, audit)])
        return applied

    async def record_attempts(self, records: Sequence[AttemptRecord]) -> list[bool]:
        # one transaction per record, records of different events concurrently, of one in order
        by_event: dict[str, list[int]] = {}
        for i, r in enumerate(records):
            by_event.setdefault(r.attempt.event_id, []).append(i)
        results = [False] * len(records)

        async def run(indexes: list[int]) -> None:
            for i in indexes:
                results[i] = await self._record_one(records[i])

        await asyncio.gather(*(run(ix) for ix in by_event.values()))
        return results

    async def _record_one(self, r: AttemptRecord) -> bool:
        a = r.attempt
        for _ in range(RACE_RETRIES):
            ev, dests = await self._snapshot(a.event_id)
            d = dests.get(a.destination)
            if d is None or d["user_id"] != a.user_id or ev is None:
                return False
            seen = d["ver"]
            applied = apply_outcome(d, a, r.lease_token, r.next_attempt_us, "acknowledged_us" in ev)
            d["ver"] = seen + 1
            index_keys(d, self.due_shards)
            extra = {"last_retry_us": a.started_us} if d["attempts"] > 1 else None
            event_update = self._event_status_update(ev, dests.values(), extra)
            items: list[dict[str, Any]] = [
                {
                    "Put": {
                        "TableName": self._deliveries_table,
                        "Item": enc_item(attempt_item(a, d["user_shard"], d["ttl"])),
                    }
                },
                {
                    "Put": {
                        "TableName": self._deliveries_table,
                        "Item": enc_item(d),
                        "ConditionExpression": "ver = :v",
                        "ExpressionAttributeValues": {":v": {"N": str(seen)}},
                    }
                },
            ]
            items.append({"Update": event_update})
            if applied and r.audit is not None:
                items.append(await self._delivery_audit_put(r.audit))
            if await self._transact_conditional(items):
                await self._after_record(a, applied)
                return applied
        raise self._race_error(f"delivery {a.event_id}/{a.destination} kept changing")

    async def _after_record(self, attempt: DeliveryAttempt, applied: bool) -> None:
        """FanoutPart keeps the subscription's success/failure times."""

    async def release_claims(self, claims: Sequence[tuple[str, str]], due_us: int) -> int:
        return await self._release([(e, WORKFLOW_DESTINATION, t) for e, t in claims], due_us)

    async def _release(self, claims: Sequence[tuple[str, str, str]], due_us: int) -> int:
        async def one(event_id: str, destination: str, token: str) -> int:
            values = {
                ":d": {"N": str(due_us)},
                ":t": {"S": token},
                ":pending": {"S": DeliveryStatus.PENDING.value},
                ":one": {"N": "1"},
            }
            try:
                await self._call(
                    "update_item",
                    TableName=self._deliveries_table,
                    Key=dest_key(event_id, destination),
                    UpdateExpression=(
                        "SET due_us = :d, next_attempt_us = :d ADD ver :one REMOVE lease_token, lease_until_us"
                    ),
                    ConditionExpression="lease_token = :t AND #s = :pending",
                    ExpressionAttributeNames={"#s": "status"},
                    ExpressionAttributeValues=values,
                )
            except self._conditional_failed_errors():
                return 0
            return 1

        return sum(await asyncio.gather(*(one(*c) for c in claims)))

    # -- dead letters and replay -------------------------------------------------------------------
    async def replay_events(
        self, selector: ReplaySelector, at_us: int, limit: int, audit: Callable[[str], AuditRecord]
    ) -> list[str]:
        if limit <= 0 or (selector.event_ids is not None and not selector.event_ids):
            return []
        low = schema.iso_us(selector.from_us) if selector.from_us is not None else "0"
        high = schema.iso_us(selector.to_us) + "~" if selector.to_us is not None else "~"
        wanted_ids = set(selector.event_ids) if selector.event_ids is not None else None

        async def shard_letters(user_shard: str) -> list[tuple[str, str, str]]:
            rows = await self._query_all(
                TableName=self._deliveries_table,
                IndexName="DeadLetterIndex",
                KeyConditionExpression="user_shard = :u AND dead_ts_id BETWEEN :lo AND :hi",
                ExpressionAttributeValues={":u": {"S": user_shard}, ":lo": {"S": low}, ":hi": {"S": high}},
            )
            out = []
            for r in rows:
                dead_ts_id = r["dead_ts_id"]["S"]
                destination = r["item"]["S"][len(schema.DESTINATION_PREFIX) :]
                out.append((dead_ts_id[: -len(destination) - 1], r["event_id"]["S"], destination))
            return out

        shards = await self._read_shards(selector.user_id)
        letters = sorted(
            x for part in await asyncio.gather(*(shard_letters(s) for s in shards)) for x in part
        )
        order: list[str] = []
        for _ts, event_id, destination in letters:
            if wanted_ids is not None and event_id not in wanted_ids:
                continue
            if selector.destination is not None and destination != selector.destination:
                continue
            if event_id not in order:
                order.append(event_id)
        replayed: list[str] = []
        for event_id in order:
            if len(replayed) >= limit:
                break
            if await self._replay_one(event_id, selector, at_us, audit):
                replayed.append(event_id)
        if replayed:
            await self._after_replay(replayed)
        return replayed

    async def _replay_one(
        self, event_id: str, selector: ReplaySelector, at_us: int, audit: Callable[[str], AuditRecord]
    ) -> bool:
        for _ in range(RACE_RETRIES):
            ev, dests = await self._snapshot(event_id)
            failed = [
                d
                for d in dests.values()
                if d["status"] == DeliveryStatus.FAILED
                and d["user_id"] == selector.user_id
                and (selector.destination is None or d["destination"] == selector.destination)
            ]
            if not failed:
                return False
            if ev is None or "acknowledged_us" in ev:
                return False
            if selector.event_type is not None and ev["event_type"]["S"] != selector.event_type:
                return False
            items: list[dict[str, Any]] = []
            for d in failed:
                seen = d["ver"]
                d |= {
                    "status": DeliveryStatus.PENDING.value,
                    "due_us": at_us,
                    "round_attempts": 0,
                    "ver": seen + 1,
                }
                d.pop("lease_token", None)
                d.pop("lease_until_us", None)
                index_keys(d, self.due_shards)
                items.append(
                    {
                        "Put": {
                            "TableName": self._deliveries_table,
                            "Item": enc_item(d),
                            "ConditionExpression": "ver = :v",
                            "ExpressionAttributeValues": {":v": {"N": str(seen)}},
                        }
                    }
                )
            items.append({"Update": self._event_status_update(ev, dests.values(), None)})
            items.append(await self._delivery_audit_put(audit(event_id)))
            if await self._transact_conditional(items):
                return True
        raise self._race_error(f"event {event_id} kept changing during replay")

    async def _after_replay(self, event_ids: Sequence[str]) -> None:
        """The queue part re-sends the replayed deliveries."""

    async def list_attempts(self, user_id: str, event_id: str) -> list[DeliveryAttempt]:
        items = await self._collection(event_id, schema.ATTEMPT_PREFIX)
        attempts = [attempt_from_item(i) for i in items if i.get("user_id") == user_id]
        attempts.sort(key=lambda a: (a.started_us, a.attempt_id))
        return attempts

    async def delivery_depths(self, user_id: str | None = None) -> DeliveryDepths:
        if user_id is not None:
            return await self._user_depths(user_id)

        async def distinct(kind: str) -> set[str]:
            got = await self._due_candidates(kind, None, 1_000_000)
            return {event_id for _k, event_id, _d in got}

        due, fan, dead = await asyncio.gather(distinct("due"), distinct("fan"), distinct("dead"))
        pending = due | fan
        return DeliveryDepths(pending=len(pending), dead_letters=len(dead - pending))

    async def _user_depths(self, user_id: str) -> DeliveryDepths:
        """One user's events by status, from the inbox index (status is projected into it)."""

        async def count(user_shard: str, statuses: tuple[str, ...]) -> int:
            names = [f":s{i}" for i in range(len(statuses))]
            total = 0
            request: dict[str, Any] = {
                "TableName": self._events_table,
                "IndexName": "InboxIndex",
                "KeyConditionExpression": "user_shard = :u",
                "FilterExpression": f"#s IN ({', '.join(names)})",
                "ExpressionAttributeNames": {"#s": "status"},
                "ExpressionAttributeValues": {":u": {"S": user_shard}}
                | {n: {"S": s} for n, s in zip(names, statuses, strict=True)},
                "Select": "COUNT",
            }
            while True:
                page = await self._call("query", **request)
                total += int(page.get("Count", 0))
                last = page.get("LastEvaluatedKey")
                if last is None:
                    return total
                request["ExclusiveStartKey"] = last

        shards = await self._read_shards(user_id)
        pending = await asyncio.gather(
            *(count(s, (EventStatus.RECEIVED.value, EventStatus.QUEUED.value)) for s in shards)
        )
        dead = await asyncio.gather(*(count(s, (EventStatus.FAILED.value,)) for s in shards))
        return DeliveryDepths(pending=sum(pending), dead_letters=sum(dead))

    async def _attempt_rows(self, user_id: str, since_us: int) -> list[Item]:
        async def one(user_shard: str) -> list[Item]:
            rows = await self._query_all(
                TableName=self._deliveries_table,
                IndexName="AttemptIndex",
                KeyConditionExpression="user_shard = :u AND attempt_started_us >= :since",
                ExpressionAttributeValues={":u": {"S": user_shard}, ":since": {"N": str(since_us)}},
            )
            return [dec_item(r) for r in rows]

        shards = await self._read_shards(user_id)
        return [r for part in await asyncio.gather(*(one(s) for s in shards)) for r in part]

    async def count_attempts(self, user_id: str, since_us: int) -> AttemptCounts:
        rows = await self._attempt_rows(user_id, since_us)
        return AttemptCounts(len(rows), sum(1 for r in rows if r.get("outcome") == AttemptOutcome.DELIVERED))

    async def count_destination_attempts(self, user_id: str, since_us: int) -> dict[str, AttemptCounts]:
        counts: dict[str, list[int]] = {}
        for r in await self._attempt_rows(user_id, since_us):
            c = counts.setdefault(r.get("destination", WORKFLOW_DESTINATION), [0, 0])
            c[0] += 1
            c[1] += r.get("outcome") == AttemptOutcome.DELIVERED
        return {k: AttemptCounts(v[0], v[1]) for k, v in counts.items()}

    # -- used by FanoutPart ----------------------------------------------------------------------
    def _fanout_claims(
        self, got: list[tuple[Item, EventRecord]], token: str, until: int
    ) -> list[FanoutClaim]:
        return [
            FanoutClaim(event, d["destination"], token, until, d["attempts"], d["round_attempts"])
            for d, event in got
        ]
