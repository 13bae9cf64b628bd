"""API keys on DynamoDB: the key item under its user (``get_key`` is one consistent GetItem on
(user_id, key_id)), KeyHashIndex for the authorizer's look-up, KeyIdIndex for revocation by id. A
key hash is unique through a guard item in the counters table (``keyhash#<hash>``) written in the
same transaction; ``count_keys`` reads the ``keys`` counter that transaction adds to (no Scan)."""

from __future__ import annotations

import asyncio

from triggers_api.errors import StorageError
from triggers_api.storage.base import ApiKeyRecord, AuditRecord
from triggers_api.storage.dynamodb.core import (
    ConditionFailed,
    DynamoCore,
    Item,
    TransactionCancelled,
    get_n,
    get_s,
    n,
    opt_n,
    put_opt_n,
    s,
)

KEY_COUNTER = "keys"


def _key_item(key: ApiKeyRecord) -> Item:
    item: Item = {
        "user_id": s(key.user_id),
        "key_id": s(key.key_id),
        "key_hash": s(key.key_hash),
        "key_prefix": s(key.key_prefix),
        "name": s(key.name),
        "created_us": n(key.created_us),
        "rate_limit": n(key.rate_limit),
        "scopes": {"L": [s(x) for x in key.scopes]},
        "is_active": {"BOOL": key.is_active},
    }
    put_opt_n(item, "expires_us", key.expires_us)
    put_opt_n(item, "last_used_us", key.last_used_us)
    put_opt_n(item, "revoked_us", key.revoked_us)
    return item


def _key(item: Item) -> ApiKeyRecord:
    return ApiKeyRecord(
        key_id=get_s(item, "key_id"),
        user_id=get_s(item, "user_id"),
        key_hash=get_s(item, "key_hash"),
        key_prefix=get_s(item, "key_prefix"),
        name=get_s(item, "name"),
        created_us=get_n(item, "created_us"),
        rate_limit=get_n(item, "rate_limit"),
        scopes=tuple(str(x["S"]) for x in item["scopes"]["L"]),
        is_active=bool(item["is_active"]["BOOL"]),
        expires_us=opt_n(item, "expires_us"),
        last_used_us=opt_n(item, "last_used_us"),
        revoked_us=opt_n(item, "revoked_us"),
    )


def _too_long(value: str, limit: int) -> bool:
    return len(value.encode("utf-8", "surrogatepass")) > limit


class KeysPart(DynamoCore):
    async def insert_key(self, key: ApiKeyRecord, audit: AuditRecord | None) -> None:
        from triggers_api.storage.dynamodb.core import audit_item

        items: list[Item] = [
            {
                "Put": {
                    "TableName": self.names.api_keys,
                    "Item": _key_item(key),
                    "ConditionExpression": "attribute_not_exists(key_id)",
                }
            },
            {
                "Put": {
                    "TableName": self.names.counters,
                    "Item": {"counter": s(f"keyhash#{key.key_hash}"), "key_id": s(key.key_id)},
                    "ConditionExpression": "attribute_not_exists(#c)",
                    "ExpressionAttributeNames": {"#c": "counter"},
                }
            },
            {
                "Update": {
                    "TableName": self.names.counters,
                    "Key": {"counter": s(KEY_COUNTER)},
                    "UpdateExpression": "ADD #v :one",
                    "ExpressionAttributeNames": {"#v": "value"},
                    "ExpressionAttributeValues": {":one": n(1)},
                }
            },
        ]
        if audit is not None:
            shards = (await self._shard_count(audit.user_id)).for_writing(audit.ts_us)
            from triggers_api.storage.dynamodb import schema

            items.append(
                {
                    "Put": {
                        "TableName": self.names.audit,
                        "Item": audit_item(audit, schema.event_shard(audit.log_id, shards)),
                    }
                }
            )
        try:
            await self._transact(items)
        except TransactionCancelled as exc:
            raise StorageError("a key with this id or hash already exists") from exc

    async def _key_item(self, user_id: str, key_id: str) -> Item | None:
        answer = await self._call(
            "get_item",
            TableName=self.names.api_keys,
            Key={"user_id": s(user_id), "key_id": s(key_id)},
            ConsistentRead=True,
        )
        item: Item | None = answer.get("Item")
        return item

    async def find_key_by_hash(self, key_hash: str) -> ApiKeyRecord | None:
        found = await self._query(
            limit=1,
            TableName=self.names.api_keys,
            IndexName="KeyHashIndex",
            KeyConditionExpression="key_hash = :h",
            ExpressionAttributeValues={":h": s(key_hash)},
        )
        if not found:
            return None
        # the index is eventually consistent: read the key itself, so a revocation counts at once
        item = await self._key_item(get_s(found[0], "user_id"), get_s(found[0], "key_id"))
        return None if item is None else _key(item)

    async def get_key(self, user_id: str, key_id: str) -> ApiKeyRecord | None:
        # DynamoDB refuses an empty key attribute or one over its size limit: no such key either
        if not user_id or not key_id or _too_long(user_id, 2048) or _too_long(key_id, 1024):
            return None
        item = await self._key_item(user_id, key_id)  # a consistent GetItem on the table's own key
        return None if item is None else _key(item)

    async def list_keys(self, user_id: str) -> list[ApiKeyRecord]:
        items = await self._query(
            TableName=self.names.api_keys,
            KeyConditionExpression="user_id = :u",
            ExpressionAttributeValues={":u": s(user_id)},
            ConsistentRead=True,
        )
        keys = [_key(i) for i in items]
        keys.sort(key=lambda k: (k.created_us, k.key_id), reverse=True)
        return keys

    async def _owner(self, key_id: str) -> str | None:
        found = await self._query(
            limit=1,
            TableName=self.names.api_keys,
            IndexName="KeyIdIndex",
            KeyConditionExpression="key_id = :k",
            ExpressionAttributeValues={":k": s(key_id)},
        )
        return get_s(found[0], "user_id") if found else None

    async def revoke_key(
        self, key_id: str, user_id: str | None, at_us: int, audit: AuditRecord | None
    ) -> ApiKeyRecord | None:
        from triggers_api.storage.dynamodb import schema
        from triggers_api.storage.dynamodb.core import audit_item

        owner = user_id if user_id is not None else await self._owner(key_id)
        if owner is None:
            return None
        item = await self._key_item(owner, key_id)
        if item is None:
            return None
        key = _key(item)
        if not key.is_active:
            return key
        update: Item = {
            "TableName": self.names.api_keys,
            "Key": {"user_id": s(owner), "key_id": s(key_id)},
            "UpdateExpression": "SET is_active = :f, revoked_us = :at",
            "ConditionExpression": "is_active = :t",
            "ExpressionAttributeValues": {":f": {"BOOL": False}, ":t": {"BOOL": True}, ":at": n(at_us)},
        }
        try:
            if audit is None:
                await self._call("update_item", write=True, **update)
            else:
                audit.user_id = key.user_id
                shards = (await self._shard_count(audit.user_id)).for_writing(at_us)
                await self._transact(
                    [
                        {"Update": update},
                        {
                            "Put": {
                                "TableName": self.names.audit,
                                "Item": audit_item(audit, schema.event_shard(audit.log_id, shards)),
                            }
                        },
                    ]
                )
        except (ConditionFailed, TransactionCancelled) as exc:
            if isinstance(exc, TransactionCancelled) and "ConditionalCheckFailed" not in exc.reasons:
                raise
            again = await self._key_item(owner, key_id)  # revoked concurrently: its revocation stands
            return None if again is None else _key(again)
        key.is_active, key.revoked_us = False, at_us
        return key

    async def record_key_use(self, last_used: dict[str, int]) -> None:
        async def one(key_id: str, ts: int) -> None:
            owner = await self._owner(key_id)
            if owner is None:
                return
            try:
                await self._call(
                    "update_item",
                    write=True,
                    TableName=self.names.api_keys,
                    Key={"user_id": s(owner), "key_id": s(key_id)},
                    UpdateExpression="SET last_used_us = :t",
                    ConditionExpression=(
                        "attribute_exists(key_id) AND (attribute_not_exists(last_used_us) OR last_used_us < :t)"
                    ),
                    ExpressionAttributeValues={":t": n(ts)},
                )
            except ConditionFailed:
                pass  # a later use was recorded already

        await asyncio.gather(*(one(k, t) for k, t in last_used.items()))

    async def count_keys(self) -> int:
        answer = await self._call(
            "get_item", TableName=self.names.counters, Key={"counter": s(KEY_COUNTER)}, ConsistentRead=True
        )
        item = answer.get("Item")
        return 0 if item is None else get_n(item, "value")
