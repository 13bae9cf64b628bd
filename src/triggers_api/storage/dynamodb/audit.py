"""Audit records on DynamoDB: newest first, by user (merged across shards), by event or by action
(their GSIs), and retention by age (AuditAgeIndex) on top of the 7-year TTL."""

from __future__ import annotations

import asyncio
import heapq
from typing import Any

from triggers_api.storage.base import AuditQuery, AuditRecord
from triggers_api.storage.dynamodb import schema
from triggers_api.storage.dynamodb.core import DynamoCore, Item, audit_from_item, get_s, s


class AuditPart(DynamoCore):
    async def list_audit(self, query: AuditQuery) -> list[AuditRecord]:
        if query.limit <= 0:
            return []
        before = None if query.before is None else schema.ts_id(*query.before)

        async def one(
            partition_name: str, partition: str, index: str | None, user_filter: bool
        ) -> list[Item]:
            condition = f"{partition_name} = :p"
            values: dict[str, Any] = {":p": s(partition)}
            if before is not None:
                condition += " AND ts_log_id < :b"
                values[":b"] = s(before)
            params: dict[str, Any] = {
                "TableName": self.names.audit,
                "KeyConditionExpression": condition,
                "ExpressionAttributeValues": values,
                "ScanIndexForward": False,
            }
            if index is not None:
                params["IndexName"] = index
            else:
                params["ConsistentRead"] = True
            if user_filter:  # an event's trail: only this user's records (tenant isolation)
                params["FilterExpression"] = "user_id = :u"
                values[":u"] = s(query.user_id)
                if query.action is not None:
                    params["FilterExpression"] += " AND #a = :a"
                    params["ExpressionAttributeNames"] = {"#a": "action"}
                    values[":a"] = s(query.action)
            return await self._query(limit=query.limit, **params)

        shards = await self._read_shards(query.user_id)
        if query.event_id is not None:
            parts = [await one("event_id", query.event_id, "AuditEventIndex", True)]
        elif query.action is not None:
            counts = range(len(shards))
            parts = list(
                await asyncio.gather(
                    *(
                        one(
                            "user_action_shard",
                            f"{query.user_id}#{query.action}#{i}",
                            "AuditActionIndex",
                            False,
                        )
                        for i in counts
                    )
                )
            )
        else:
            parts = list(await asyncio.gather(*(one("user_shard", u, None, False) for u in shards)))
        merged = heapq.merge(*parts, key=lambda i: get_s(i, "ts_log_id"), reverse=True)
        return [audit_from_item(i) for _, i in zip(range(query.limit), merged, strict=False)]

    async def purge_audit(self, before_us: int) -> int:
        bound = schema.iso_us(max(0, before_us))

        async def shard(name: str) -> list[Item]:
            return await self._query(
                limit=10_000,
                TableName=self.names.audit,
                IndexName="AuditAgeIndex",
                KeyConditionExpression="age_shard = :p AND ts_log_id < :b",
                ExpressionAttributeValues={":p": s(name), ":b": s(bound)},
            )

        keys = [
            k for part in await asyncio.gather(*(shard(p) for p in schema.global_shards("age"))) for k in part
        ]
        await self._batch_write(
            self.names.audit,
            deletes=[{"user_shard": k["user_shard"], "ts_log_id": k["ts_log_id"]} for k in keys],
        )
        return len(keys)
