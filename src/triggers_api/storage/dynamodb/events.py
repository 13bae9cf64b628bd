"""Events and idempotency on DynamoDB: insert, get, listings, acknowledgement, retention.

An insert of up to 100 items (events, their pointers, audit records, delivery items) is one
TransactWriteItems: all or nothing, and an event id already stored is refused by the pointer's
condition. A larger batch cannot be one transaction (100 items, 4 MB): its pointers are written
first by conditional transactions of 100, then everything else by BatchWriteItem (idempotent
puts). With an Idempotency-Key, the record is claimed first (a conditional put: absent or
expired), holding the planned items while ``pending``; a request that finds a pending record
waits for it, and if its writer died re-runs the stored plan (same ids, same bodies), so one
request's events are stored once however many race. docs/deploy-aws.md says what this costs.
"""

from __future__ import annotations

import asyncio
import heapq
import time
import zlib
from collections.abc import Sequence
from typing import Any

import orjson

from triggers_api.errors import StorageError
from triggers_api.storage.base import (
    AckResult,
    AuditRecord,
    EventPage,
    EventQuery,
    EventRecord,
    EventStatus,
    IdempotencyRecord,
    StoreOutcome,
    now_us,
)
from triggers_api.storage.dynamodb import schema
from triggers_api.storage.dynamodb.core import (
    INBOX,
    ConditionFailed,
    DynamoCore,
    Item,
    TransactionCancelled,
    audit_item,
    blob,
    event_from_item,
    event_item,
    event_key,
    get_blob,
    get_n,
    get_s,
    n,
    pointer_item,
    pointer_key,
    s,
)
from triggers_api.storage.dynamodb.schema import TRANSACT_MAX_ITEMS

#: A pending idempotency record older than this is taken over (its writer is presumed dead).
IDEMPOTENCY_PENDING_S = 10.0
#: The stored plan of a pending record must leave room in its 400 KB item.
PLAN_MAX_BYTES = 300 * 1024
_TS_MIN = 0
_TS_MAX = 253_402_300_799_999_999  # 9999-12-31T23:59:59.999999Z


def _bounds(from_us: int | None, to_us: int | None) -> tuple[str, str] | None:
    """The ts_id range of [from_us, to_us] (inclusive), or None when it is empty."""
    lo = _TS_MIN if from_us is None else max(from_us, _TS_MIN)
    hi = _TS_MAX if to_us is None else min(to_us, _TS_MAX)
    if lo > hi:
        return None
    # '#' follows the timestamp in every ts_id; '$' is the next character: all ids at ``hi``.
    return schema.iso_us(lo), schema.iso_us(hi) + "$"


class EventsPart(DynamoCore):
    # -- insert -------------------------------------------------------------------------------------
    async def insert_events(
        self,
        events: Sequence[EventRecord],
        audit: Sequence[AuditRecord],
        idempotency: IdempotencyRecord | None = None,
    ) -> StoreOutcome:
        self._require()
        records = list(events)
        plan = await self._plan(records, audit)
        if idempotency is not None:
            existing = await self._claim_idempotency(idempotency, plan)
            if existing is not None:
                return StoreOutcome(stored=False, existing=existing)
        await self._store_plan(plan)
        if idempotency is not None:
            await self._complete_idempotency(idempotency)
        await self._after_insert(records)
        return StoreOutcome(stored=True, events=records)

    async def _plan(self, records: list[EventRecord], audit: Sequence[AuditRecord]) -> dict[str, Any]:
        """Every item the insert writes, as TransactWriteItems entries: ``pointers`` (conditional)
        and ``items`` (events, audit records, delivery items)."""
        first = self._positions(len(records))
        pointers: list[Item] = []
        items: list[Item] = []
        for i, e in enumerate(records):
            shard = await self._write_shard(e.user_id, e.event_id)
            pointer = pointer_item(e, shard)
            pointers.append(
                {
                    "Put": {
                        "TableName": self.names.deliveries,
                        "Item": pointer,
                        # absent, or this very event (a retried plan): a reused id is refused
                        "ConditionExpression": "attribute_not_exists(event_id) OR ts_id = :t",
                        "ExpressionAttributeValues": {":t": pointer["ts_id"]},
                    }
                }
            )
            items.append({"Put": {"TableName": self.names.events, "Item": event_item(e, shard, first + i)}})
        for a in audit:
            items.append({"Put": {"TableName": self.names.audit, "Item": await self._audit_item(a)}})
        items += await self._delivery_items_for_insert(records, now_us())
        return {"pointers": pointers, "items": items}

    async def _audit_item(self, a: AuditRecord) -> Item:
        shards = (await self._shard_count(a.user_id)).for_writing(now_us())
        return audit_item(a, schema.event_shard(a.log_id, shards))

    async def _store_plan(self, plan: dict[str, Any]) -> None:
        pointers: list[Item] = plan["pointers"]
        items: list[Item] = plan["items"]
        try:
            if len(pointers) + len(items) <= TRANSACT_MAX_ITEMS:
                await self._transact(pointers + items)
                return
            await self._transact(pointers)  # chunks of 100, each all or nothing
        except TransactionCancelled as exc:
            if "ConditionalCheckFailed" in exc.reasons:
                raise StorageError("an event with this id is already stored") from exc
            raise
        requests: list[tuple[str, Item]] = []
        for entry in items:
            put = entry["Put"]
            requests.append((put["TableName"], {"PutRequest": {"Item": put["Item"]}}))
        await self._batch_write_requests(requests)

    # -- idempotency --------------------------------------------------------------------------------
    def _idem_key(self, record: IdempotencyRecord) -> Item:
        return {"user_key": s(f"{record.user_id}#{record.key}")}

    async def _claim_idempotency(
        self, record: IdempotencyRecord, plan: dict[str, Any]
    ) -> IdempotencyRecord | None:
        """Claim (user, key): None when this request won (the record is stored pending), else the
        live record of the request that holds it (once that one has completed)."""
        item: Item = {
            **self._idem_key(record),
            "user_id": s(record.user_id),
            "idem_key": s(record.key),
            "request_hash": s(record.request_hash),
            "response_status": n(record.response_status),
            "response_body": {"B": record.response_body},
            "created_us": n(record.created_us),
            "expires_us": n(record.expires_us),
            "expiry_shard": s(schema.global_shard("expiry", f"{record.user_id}#{record.key}")),
            schema.TTL_ATTRIBUTE: n(record.expires_us // 1_000_000 + 1),
            "state": s("pending"),
            "pending_since_us": n(now_us()),
        }
        try:
            packed = zlib.compress(orjson.dumps(plan))
        except TypeError:  # a binary (non-UTF-8) payload: no plan, a stale claim is answered as is
            packed = b""
        if 0 < len(packed) <= PLAN_MAX_BYTES:
            item["plan"] = {"B": packed}
        deadline = time.monotonic() + IDEMPOTENCY_PENDING_S + 5
        while True:
            try:
                await self._call(
                    "put_item",
                    write=True,
                    TableName=self.names.idempotency,
                    Item=item,
                    ConditionExpression="attribute_not_exists(user_key) OR expires_us <= :now",
                    ExpressionAttributeValues={":now": n(record.created_us)},
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
                return None
            except ConditionFailed as exc:
                old = exc.item
            if old is None:  # deleted between the check and the answer: claim again
                continue
            if get_s(old, "state") == "complete":
                return _idem_record(old)
            stale = now_us() - get_n(old, "pending_since_us") > IDEMPOTENCY_PENDING_S * 1_000_000
            if stale or time.monotonic() > deadline:
                # Its writer is gone (or very slow): finish its plan for it, then answer its record.
                stored_plan = get_blob(old, "plan")
                if stored_plan is not None:
                    await self._store_plan(orjson.loads(zlib.decompress(stored_plan)))
                await self._complete_idempotency(_idem_record(old))
                return _idem_record(old)
            await asyncio.sleep(0.05)
            answer = await self._call(
                "get_item", TableName=self.names.idempotency, Key=self._idem_key(record), ConsistentRead=True
            )
            current = answer.get("Item")
            if current is not None and get_s(current, "state") == "complete":
                return _idem_record(current)

    async def _complete_idempotency(self, record: IdempotencyRecord) -> None:
        await self._call(
            "update_item",
            write=True,
            TableName=self.names.idempotency,
            Key=self._idem_key(record),
            UpdateExpression="SET #st = :c REMOVE #plan",
            ExpressionAttributeNames={"#st": "state", "#plan": "plan"},
            ExpressionAttributeValues={":c": s("complete")},
        )

    async def purge_idempotency(self, now_us: int) -> int:
        async def shard(name: str) -> int:
            keys = await self._query(
                TableName=self.names.idempotency,
                IndexName="IdempotencyExpiryIndex",
                KeyConditionExpression="expiry_shard = :p AND expires_us <= :now",
                ExpressionAttributeValues={":p": s(name), ":now": n(now_us)},
            )
            deleted = 0
            for key in keys:
                try:
                    await self._call(
                        "delete_item",
                        write=True,
                        TableName=self.names.idempotency,
                        Key={"user_key": key["user_key"]},
                        ConditionExpression="expires_us <= :now",
                        ExpressionAttributeValues={":now": n(now_us)},
                    )
                    deleted += 1
                except ConditionFailed:
                    pass  # replaced by a new request since
            return deleted

        return sum(await asyncio.gather(*(shard(p) for p in schema.global_shards("expiry"))))

    # -- reads --------------------------------------------------------------------------------------
    async def _pointer(self, event_id: str) -> Item | None:
        answer = await self._call(
            "get_item", TableName=self.names.deliveries, Key=pointer_key(event_id), ConsistentRead=True
        )
        item: Item | None = answer.get("Item")
        return item

    async def _event_item(self, user_id: str, event_id: str) -> Item | None:
        pointer = await self._pointer(event_id)
        if pointer is None or get_s(pointer, "user_id") != user_id:
            return None
        answer = await self._call(
            "get_item",
            TableName=self.names.events,
            Key=event_key(get_s(pointer, "user_shard"), get_s(pointer, "ts_id")),
            ConsistentRead=True,
        )
        item: Item | None = answer.get("Item")
        return item

    async def get_event(self, user_id: str, event_id: str) -> EventRecord | None:
        item = await self._event_item(user_id, event_id)
        return None if item is None else event_from_item(item)

    async def _events_by_keys(self, keys: Sequence[Item]) -> list[Item]:
        return await self._batch_get(self.names.events, keys)

    # -- listings -----------------------------------------------------------------------------------
    async def list_events(self, query: EventQuery) -> list[EventRecord]:
        return [event_from_item(i) for i in await self._listing(query)]

    async def list_events_json(self, query: EventQuery, *, with_ack: bool = False) -> EventPage | None:
        """DynamoDB renders no JSON: the page is rendered here, exactly as the API renders a
        record (payload and metadata spliced in as stored)."""
        from triggers_api.events.service import render_event  # the API's one rendering

        probe = EventQuery(
            **{f: getattr(query, f) for f in query.__slots__ if f != "limit"}, limit=query.limit + 1
        )
        records = [event_from_item(i) for i in await self._listing(probe)]
        shown = records[: query.limit]
        has_more = len(records) > query.limit
        try:
            body = orjson.dumps([render_event(r, with_ack=with_ack) for r in shown])
        except orjson.JSONEncodeError:  # a stored payload that is not valid JSON text: caller renders
            return None
        last = (shown[-1].ts_us, shown[-1].event_id) if has_more else None
        return EventPage(body, len(shown), has_more, last)

    async def _listing(self, query: EventQuery) -> list[Item]:
        bounds = _bounds(query.from_us, query.to_us)
        if bounds is None or query.limit <= 0:
            return []
        statuses = frozenset(query.statuses)
        forward = not query.newest_first
        after = None if query.after is None else schema.ts_id(*query.after)
        shards = await self._read_shards(query.user_id)
        need = query.limit
        if statuses and statuses <= INBOX:
            index, sort, prefix = "InboxIndex", "inbox_ts_id", ""
        elif query.event_type is not None:
            index, sort, prefix = "EventTypeIndex", "type_ts_id", f"{query.event_type}#"
        else:
            index, sort, prefix = None, "ts_id", ""
        lo, hi = prefix + bounds[0], prefix + bounds[1]
        if after is not None:
            if forward:
                lo = max(lo, prefix + after)
            else:
                hi = min(hi, prefix + after)
            if lo > hi:
                return []

        def wanted(item: Item) -> bool:
            if statuses and get_s(item, "status") not in statuses:
                return False
            if query.event_type is not None and get_s(item, "event_type") != query.event_type:
                return False
            return after is None or get_s(item, "ts_id") != after

        async def one_shard(user_shard: str) -> list[Item]:
            found: list[Item] = []
            start: Item | None = None
            while len(found) < need:
                params: dict[str, Any] = {
                    "TableName": self.names.events,
                    "KeyConditionExpression": f"user_shard = :u AND {sort} BETWEEN :lo AND :hi",
                    "ExpressionAttributeValues": {":u": s(user_shard), ":lo": s(lo), ":hi": s(hi)},
                    "ScanIndexForward": forward,
                    "Limit": min(1000, need + 1),
                }
                if index is not None:
                    params["IndexName"] = index
                else:
                    params["ConsistentRead"] = True
                if start is not None:
                    params["ExclusiveStartKey"] = start
                answer = await self._call("query", **params)
                page = answer.get("Items", [])
                if index is not None and page:
                    # index entries are keys (and eventually consistent): read the items themselves
                    full = await self._events_by_keys(
                        [{"user_shard": i["user_shard"], "ts_id": i["ts_id"]} for i in page]
                    )
                    by_key = {get_s(f, "ts_id"): f for f in full}
                    page = [by_key[get_s(i, "ts_id")] for i in page if get_s(i, "ts_id") in by_key]
                found += [i for i in page if wanted(i)]
                start = answer.get("LastEvaluatedKey")
                if start is None:
                    break
            return found[:need]

        per_shard = await asyncio.gather(*(one_shard(u) for u in shards))

        def order(item: Item) -> str:
            return get_s(item, "ts_id")

        merged = heapq.merge(*per_shard, key=order, reverse=not forward)
        return [item for _, item in zip(range(need), merged, strict=False)]

    # -- acknowledgement ----------------------------------------------------------------------------
    async def acknowledge(
        self, user_id: str, event_ids: Sequence[str], at_us: int, audit: dict[str, AuditRecord]
    ) -> list[AckResult]:
        ids = list(event_ids)
        if not ids:
            return []
        unique = list(dict.fromkeys(ids))
        pointers = await self._batch_get(self.names.deliveries, [pointer_key(i) for i in unique])
        where = {get_s(p, "event_id"): p for p in pointers if get_s(p, "user_id") == user_id}

        async def one(event_id: str) -> AckResult:
            pointer = where.get(event_id)
            if pointer is None:
                return AckResult.NOT_FOUND
            update: Item = {
                "TableName": self.names.events,
                "Key": event_key(get_s(pointer, "user_shard"), get_s(pointer, "ts_id")),
                "UpdateExpression": (
                    "SET #st = :d, acknowledged_us = :at, delivered_us = if_not_exists(delivered_us, :at) "
                    "REMOVE payload, inbox_ts_id"
                ),
                "ConditionExpression": "attribute_exists(ts_id) AND attribute_not_exists(acknowledged_us)",
                "ExpressionAttributeNames": {"#st": "status"},
                "ExpressionAttributeValues": {":d": s(EventStatus.DELIVERED.value), ":at": n(at_us)},
            }
            record = audit.get(event_id)
            try:
                if record is None:
                    await self._call("update_item", write=True, **update)
                else:
                    await self._transact(
                        [
                            {"Update": update},
                            {"Put": {"TableName": self.names.audit, "Item": await self._audit_item(record)}},
                        ]
                    )
            except (ConditionFailed, TransactionCancelled) as exc:
                if isinstance(exc, TransactionCancelled) and "ConditionalCheckFailed" not in exc.reasons:
                    raise
                # already acknowledged, or deleted by retention since the pointer was read
                current = await self._event_item(user_id, event_id)
                return AckResult.NOT_FOUND if current is None else AckResult.ALREADY_ACKNOWLEDGED
            return AckResult.ACKNOWLEDGED

        results = dict(zip(unique, await asyncio.gather(*(one(i) for i in unique)), strict=True))
        changed = [i for i, r in results.items() if r is AckResult.ACKNOWLEDGED]
        if changed:
            pending = self._ack_delivery_updates(user_id, changed, at_us)
            if pending is not None:
                await pending
        answer: list[AckResult] = []
        seen: set[str] = set()
        for event_id in ids:
            result = results[event_id]
            if event_id in seen and result is not AckResult.NOT_FOUND:
                result = AckResult.ALREADY_ACKNOWLEDGED
            seen.add(event_id)
            answer.append(result)
        return answer

    # -- retention ----------------------------------------------------------------------------------
    async def expired_events(self, now_s: int, limit: int) -> list[EventRecord]:
        if limit <= 0:
            return []

        async def shard(name: str) -> list[Item]:
            return await self._query(
                limit=limit,
                TableName=self.names.events,
                IndexName="ExpiryIndex",
                KeyConditionExpression="expiry_shard = :p AND #ttl <= :now",
                ExpressionAttributeNames={"#ttl": schema.TTL_ATTRIBUTE},
                ExpressionAttributeValues={":p": s(name), ":now": n(now_s)},
            )

        parts = await asyncio.gather(*(shard(p) for p in schema.global_shards("expiry")))
        keys = heapq.nsmallest(
            limit, (k for part in parts for k in part), key=lambda k: get_n(k, schema.TTL_ATTRIBUTE)
        )
        items = await self._events_by_keys(
            [{"user_shard": k["user_shard"], "ts_id": k["ts_id"]} for k in keys]
        )
        records = [event_from_item(i) for i in items if get_n(i, schema.TTL_ATTRIBUTE) <= now_s]
        records.sort(key=lambda r: (r.expires_at, r.ts_us, r.event_id))
        return records

    async def delete_events(self, event_ids: Sequence[str], now_s: int) -> int:
        ids = list(dict.fromkeys(event_ids))
        if not ids:
            return 0
        pointers = await self._batch_get(self.names.deliveries, [pointer_key(i) for i in ids])

        async def one(pointer: Item) -> str | None:
            try:
                await self._call(
                    "delete_item",
                    write=True,
                    TableName=self.names.events,
                    Key=event_key(get_s(pointer, "user_shard"), get_s(pointer, "ts_id")),
                    ConditionExpression="#ttl <= :now",
                    ExpressionAttributeNames={"#ttl": schema.TTL_ATTRIBUTE},
                    ExpressionAttributeValues={":now": n(now_s)},
                )
            except ConditionFailed:
                return None  # not expired (any more), or gone
            return get_s(pointer, "event_id")

        deleted = [i for i in await asyncio.gather(*(one(p) for p in pointers)) if i is not None]
        if deleted:
            await self._delete_delivery_items(deleted)
            await self._batch_write(self.names.deliveries, deletes=[pointer_key(i) for i in deleted])
        return len(deleted)

    async def count_events_by_bucket(
        self, user_id: str, since_us: int, until_us: int, bucket_us: int
    ) -> list[int]:
        buckets = max(0, -(-(until_us - since_us) // bucket_us))
        counts = [0] * buckets
        bounds = _bounds(since_us, until_us - 1)
        if bounds is None or buckets == 0:
            return counts

        async def shard(user_shard: str) -> list[Item]:
            return await self._query(
                TableName=self.names.events,
                KeyConditionExpression="user_shard = :u AND ts_id BETWEEN :lo AND :hi",
                ExpressionAttributeValues={":u": s(user_shard), ":lo": s(bounds[0]), ":hi": s(bounds[1])},
                ProjectionExpression="ts_us",
            )

        for part in await asyncio.gather(*(shard(u) for u in await self._read_shards(user_id))):
            for item in part:
                index = (get_n(item, "ts_us") - since_us) // bucket_us
                if 0 <= index < buckets:
                    counts[index] += 1
        return counts


def _idem_record(item: Item) -> IdempotencyRecord:
    return IdempotencyRecord(
        user_id=get_s(item, "user_id"),
        key=get_s(item, "idem_key"),
        request_hash=get_s(item, "request_hash"),
        response_status=get_n(item, "response_status"),
        response_body=bytes(item["response_body"]["B"]),
        created_us=get_n(item, "created_us"),
        expires_us=get_n(item, "expires_us"),
    )


__all__ = ["EventsPart", "blob"]
