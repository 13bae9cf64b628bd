"""The event-type catalog on DynamoDB (its own table, ``<prefix>-event-types``): the current
definition, every version, and a per-user stamp that StampIndex returns for everyone in one Query.
A change is one transaction guarded by the definition it read (optimistic: retried on a race)."""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Callable
from typing import Any

from triggers_api.errors import StorageError
from triggers_api.storage.base import (
    AuditRecord,
    EventTypeActivity,
    EventTypeRecord,
    EventTypeVersion,
    PutOutcome,
)
from triggers_api.storage.dynamodb import schema
from triggers_api.storage.dynamodb.core import (
    DynamoCore,
    Item,
    TransactionCancelled,
    audit_item,
    get_blob,
    get_n,
    get_s,
    n,
    s,
)

STAMP_ITEM = "stamp"
STAMP_BUCKET = "stamps"


def _type_key(user_id: str, event_type: str) -> Item:
    return {"user_id": s(user_id), "item": s(f"type#{event_type}")}


def _version_key(user_id: str, event_type: str, version: int) -> Item:
    return {"user_id": s(user_id), "item": s(f"version#{event_type}#{version:010d}")}


def _record(item: Item) -> EventTypeRecord:
    description = item.get("description")
    return EventTypeRecord(
        user_id=get_s(item, "user_id"),
        event_type=get_s(item, "event_type"),
        version=get_n(item, "version"),
        schema=bytes(item["schema"]["B"]),
        mode=get_s(item, "mode"),
        description=None if description is None else str(description["S"]),
        created_us=get_n(item, "created_us"),
        updated_us=get_n(item, "updated_us"),
    )


class EventTypesPart(DynamoCore):
    async def _get(self, table: str, key: Item) -> Item | None:
        answer = await self._call("get_item", TableName=table, Key=key, ConsistentRead=True)
        item: Item | None = answer.get("Item")
        return item

    def _stamp_update(self, user_id: str) -> Item:
        return {
            "Update": {
                "TableName": self.names.event_types,
                "Key": {"user_id": s(user_id), "item": s(STAMP_ITEM)},
                "UpdateExpression": "ADD stamp :one SET stamp_bucket = :b",
                "ExpressionAttributeValues": {":one": n(1), ":b": s(STAMP_BUCKET)},
            }
        }

    async def _audit_put(self, record: AuditRecord) -> Item:
        shards = (await self._shard_count(record.user_id)).for_writing(record.ts_us)
        return {
            "Put": {
                "TableName": self.names.audit,
                "Item": audit_item(record, schema.event_shard(record.log_id, shards)),
            }
        }

    async def put_event_type(
        self,
        record: EventTypeRecord,
        audit: Callable[[str, EventTypeRecord], AuditRecord],
    ) -> tuple[EventTypeRecord, PutOutcome]:
        table = self.names.event_types
        for _ in range(10):
            item = await self._get(table, _type_key(record.user_id, record.event_type))
            current = None if item is None else _record(item)
            stored = EventTypeRecord(**{f: getattr(record, f) for f in record.__slots__})
            if current is None:
                top = await self._query(
                    limit=1,
                    TableName=table,
                    KeyConditionExpression="user_id = :u AND begins_with(#i, :p)",
                    ExpressionAttributeNames={"#i": "item"},
                    ExpressionAttributeValues={
                        ":u": s(record.user_id),
                        ":p": s(f"version#{record.event_type}#"),
                    },
                    ScanIndexForward=False,
                    ConsistentRead=True,
                )
                stored.version = (get_n(top[0], "version") if top else 0) + 1
                stored.created_us, outcome = record.updated_us, PutOutcome.CREATED
                guard: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(#i)"}
                guard_names = {"#i": "item"}
                guard_values: dict[str, Any] = {}
            else:
                if (current.schema, current.mode, current.description) == (
                    record.schema,
                    record.mode,
                    record.description,
                ):
                    return current, PutOutcome.UNCHANGED
                new_schema = bytes(current.schema) != bytes(record.schema)
                stored.version = current.version + 1 if new_schema else current.version
                stored.created_us, outcome = current.created_us, PutOutcome.UPDATED
                guard = {"ConditionExpression": "version = :v AND updated_us = :w"}
                guard_names = {}
                guard_values = {":v": n(current.version), ":w": n(current.updated_us)}
            version_item = await self._get(
                table, _version_key(stored.user_id, stored.event_type, stored.version)
            )
            version_created = stored.updated_us if version_item is None else get_n(version_item, "created_us")
            type_item: Item = {
                **_type_key(stored.user_id, stored.event_type),
                "event_type": s(stored.event_type),
                "version": n(stored.version),
                "schema": {"B": bytes(stored.schema)},
                "mode": s(stored.mode),
                "created_us": n(stored.created_us),
                "updated_us": n(stored.updated_us),
            }
            if stored.description is not None:
                type_item["description"] = s(stored.description)
            put: Item = {"TableName": table, "Item": type_item, **guard}
            if guard_names:
                put["ExpressionAttributeNames"] = guard_names
            if guard_values:
                put["ExpressionAttributeValues"] = guard_values
            action = "event_type.created" if outcome is PutOutcome.CREATED else "event_type.updated"
            items = [
                {"Put": put},
                {
                    "Put": {
                        "TableName": table,
                        "Item": {
                            **_version_key(stored.user_id, stored.event_type, stored.version),
                            "version": n(stored.version),
                            "schema": {"B": bytes(stored.schema)},
                            "mode": s(stored.mode),
                            "created_us": n(version_created),
                        },
                    }
                },
                self._stamp_update(stored.user_id),
                await self._audit_put(audit(action, stored)),
            ]
            try:
                await self._transact(items)
            except TransactionCancelled as exc:
                if "ConditionalCheckFailed" in exc.reasons:
                    continue  # changed under us: read again
                raise
            return stored, outcome
        raise StorageError("event type kept changing under a concurrent writer")

    async def get_event_type(self, user_id: str, event_type: str) -> EventTypeRecord | None:
        item = await self._get(self.names.event_types, _type_key(user_id, event_type))
        return None if item is None else _record(item)

    async def list_event_types(self, user_id: str) -> list[EventTypeRecord]:
        items = await self._query(
            TableName=self.names.event_types,
            KeyConditionExpression="user_id = :u AND begins_with(#i, :p)",
            ExpressionAttributeNames={"#i": "item"},
            ExpressionAttributeValues={":u": s(user_id), ":p": s("type#")},
            ConsistentRead=True,
        )
        return sorted((_record(i) for i in items), key=lambda r: r.event_type)

    async def event_type_versions(self, user_id: str, event_type: str) -> list[EventTypeVersion]:
        items = await self._query(
            TableName=self.names.event_types,
            KeyConditionExpression="user_id = :u AND begins_with(#i, :p)",
            ExpressionAttributeNames={"#i": "item"},
            ExpressionAttributeValues={":u": s(user_id), ":p": s(f"version#{event_type}#")},
            ConsistentRead=True,
        )
        return [
            EventTypeVersion(
                get_n(i, "version"), bytes(i["schema"]["B"]), get_s(i, "mode"), get_n(i, "created_us")
            )
            for i in items
        ]

    async def delete_event_type(self, user_id: str, event_type: str, audit: AuditRecord) -> bool:
        try:
            await self._transact(
                [
                    {
                        "Delete": {
                            "TableName": self.names.event_types,
                            "Key": _type_key(user_id, event_type),
                            "ConditionExpression": "attribute_exists(#i)",
                            "ExpressionAttributeNames": {"#i": "item"},
                        }
                    },
                    self._stamp_update(user_id),
                    await self._audit_put(audit),
                ]
            )
        except TransactionCancelled as exc:
            if "ConditionalCheckFailed" in exc.reasons:
                return False
            raise
        return True

    async def event_type_stamps(self) -> dict[str, int]:
        items = await self._query(
            TableName=self.names.event_types,
            IndexName="StampIndex",
            KeyConditionExpression="stamp_bucket = :b",
            ExpressionAttributeValues={":b": s(STAMP_BUCKET)},
        )
        return {get_s(i, "user_id"): get_n(i, "stamp") for i in items}

    # -- activity, from the events' EventTypeIndex (user shard, type, time) ---------------------------
    async def _type_query(self, user_shard: str, **params: Any) -> list[Item]:
        return await self._query(TableName=self.names.events, IndexName="EventTypeIndex", **params)

    async def _types_in_shard(self, user_shard: str) -> list[str]:
        """Distinct types by skipping: one Query of Limit 1 per type (never every event)."""
        types: list[str] = []
        start: str | None = None
        while True:
            values = {":u": s(user_shard)}
            condition = "user_shard = :u"
            if start is not None:
                condition += " AND type_ts_id >= :s"
                values[":s"] = s(start)
            found = await self._type_query(
                user_shard, limit=1, KeyConditionExpression=condition, ExpressionAttributeValues=values
            )
            if not found:
                return types
            name = get_s(found[0], "type_ts_id").rsplit("#", 2)[0]
            types.append(name)
            start = name + "$"  # '$' follows '#': past every key of this type

    async def _type_activity(
        self, shards: list[str], event_type: str, recent_us: int
    ) -> tuple[int, int] | None:
        async def newest(user_shard: str) -> int | None:
            found = await self._type_query(
                user_shard,
                limit=1,
                KeyConditionExpression="user_shard = :u AND begins_with(type_ts_id, :p)",
                ExpressionAttributeValues={":u": s(user_shard), ":p": s(f"{event_type}#")},
                ScanIndexForward=False,
            )
            if not found:
                return None
            key = {"user_shard": found[0]["user_shard"], "ts_id": found[0]["ts_id"]}
            items = await self._batch_get(self.names.events, [key])
            return get_n(items[0], "ts_us") if items else None

        async def count(user_shard: str) -> int:
            total, start = 0, None
            while True:
                params: dict[str, Any] = {
                    "TableName": self.names.events,
                    "IndexName": "EventTypeIndex",
                    "KeyConditionExpression": "user_shard = :u AND type_ts_id BETWEEN :lo AND :hi",
                    "ExpressionAttributeValues": {
                        ":u": s(user_shard),
                        ":lo": s(f"{event_type}#{schema.iso_us(max(0, recent_us))}"),
                        ":hi": s(f"{event_type}$"),
                    },
                    "Select": "COUNT",
                }
                if start is not None:
                    params["ExclusiveStartKey"] = start
                answer = await self._call("query", **params)
                total += int(answer.get("Count", 0))
                start = answer.get("LastEvaluatedKey")
                if start is None:
                    return total

        lasts = [t for t in await asyncio.gather(*(newest(u) for u in shards)) if t is not None]
        if not lasts:
            return None
        return max(lasts), sum(await asyncio.gather(*(count(u) for u in shards)))

    async def event_type_activity(
        self, user_id: str, since_us: int, recent_us: int, event_type: str | None = None
    ) -> list[EventTypeActivity]:
        shards = await self._read_shards(user_id)
        if event_type is None:
            names = sorted(
                {t for part in await asyncio.gather(*(self._types_in_shard(u) for u in shards)) for t in part}
            )
        else:
            names = [event_type]
        stats = await asyncio.gather(*(self._type_activity(shards, t, recent_us) for t in names))
        return [
            EventTypeActivity(t, last, count)
            for t, stat in zip(names, stats, strict=True)
            if stat is not None
            for last, count in [stat]
            if last >= since_us
        ]

    async def recent_payloads(self, user_id: str, event_type: str, limit: int) -> list[bytes]:
        if limit <= 0:
            return []

        async def shard(user_shard: str) -> list[Item]:
            found: list[Item] = []
            start: Item | None = None
            while len(found) < limit:
                params: dict[str, Any] = {
                    "TableName": self.names.events,
                    "IndexName": "EventTypeIndex",
                    "KeyConditionExpression": "user_shard = :u AND begins_with(type_ts_id, :p)",
                    "ExpressionAttributeValues": {":u": s(user_shard), ":p": s(f"{event_type}#")},
                    "ScanIndexForward": False,
                    "Limit": min(1000, limit * 2),
                }
                if start is not None:
                    params["ExclusiveStartKey"] = start
                answer = await self._call("query", **params)
                keys = [{"user_shard": i["user_shard"], "ts_id": i["ts_id"]} for i in answer.get("Items", [])]
                items = {get_s(i, "ts_id"): i for i in await self._batch_get(self.names.events, keys)}
                found += [
                    items[get_s(k, "ts_id")]
                    for k in keys
                    if get_s(k, "ts_id") in items and "payload" in items[get_s(k, "ts_id")]
                ]
                start = answer.get("LastEvaluatedKey")
                if start is None:
                    break
            return found[:limit]

        parts = await asyncio.gather(*(shard(u) for u in await self._read_shards(user_id)))
        merged = heapq.merge(*parts, key=lambda i: get_s(i, "ts_id"), reverse=True)
        return [get_blob(i, "payload") or b"" for _, i in zip(range(limit), merged, strict=False)]
