"""PostgreSQL API keys: create, look up by hash or by (user, id), list, revoke (row-locked), last use."""

from __future__ import annotations

from typing import Any

import asyncpg

from triggers_api.storage.base import (
    ApiKeyRecord,
    AuditRecord,
)
from triggers_api.storage.postgres.audit import (
    _insert_audit,
)
from triggers_api.storage.postgres.core import (
    PostgresCore,
    _has_nul,
)

KEY_COLUMNS = (
    "key_id, user_id, key_hash, key_prefix, name, created_us, rate_limit, scopes, is_active, "
    "expires_us, last_used_us, revoked_us"
)


def _key(row: asyncpg.Record) -> ApiKeyRecord:
    (key_id, user_id, key_hash, prefix, name, created, rate, scopes, active, expires, used, revoked) = row
    return ApiKeyRecord(
        key_id=key_id,
        user_id=user_id,
        key_hash=key_hash,
        key_prefix=prefix,
        name=bytes(name).decode("utf-8", "surrogatepass"),
        created_us=created,
        rate_limit=rate,
        scopes=tuple(scopes),
        is_active=bool(active),
        expires_us=expires,
        last_used_us=used,
        revoked_us=revoked,
    )


class KeysPart(PostgresCore):
    """API keys."""

    async def insert_key(self, key: ApiKeyRecord, audit: AuditRecord | None) -> None:
        async with self._conn("insert key failed") as conn, conn.transaction():
            await conn.execute(
                f"INSERT INTO api_keys ({KEY_COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12)",
                key.key_id,
                key.user_id,
                key.key_hash,
                key.key_prefix,
                key.name.encode("utf-8", "surrogatepass"),
                key.created_us,
                key.rate_limit,
                list(key.scopes),
                key.is_active,
                key.expires_us,
                key.last_used_us,
                key.revoked_us,
            )
            if audit is not None:
                await _insert_audit(conn, [audit])

    async def find_key_by_hash(self, key_hash: str) -> ApiKeyRecord | None:
        if _has_nul(key_hash):
            return None
        async with self._conn("read failed") as conn:
            row = await conn.fetchrow(f"SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = $1", key_hash)
        return _key(row) if row else None

    async def get_key(self, user_id: str, key_id: str) -> ApiKeyRecord | None:
        if _has_nul(user_id, key_id):
            return None
        async with self._conn("read failed") as conn:
            row = await conn.fetchrow(
                f"SELECT {KEY_COLUMNS} FROM api_keys WHERE key_id = $1 AND user_id = $2", key_id, user_id
            )
        return _key(row) if row else None

    async def list_keys(self, user_id: str) -> list[ApiKeyRecord]:
        if _has_nul(user_id):
            return []
        async with self._conn("read failed") as conn:
            rows = await conn.fetch(
                f"SELECT {KEY_COLUMNS} FROM api_keys WHERE user_id = $1 ORDER BY created_us DESC, key_id DESC",
                user_id,
            )
        return [_key(r) for r in rows]

    async def revoke_key(
        self, key_id: str, user_id: str | None, at_us: int, audit: AuditRecord | None
    ) -> ApiKeyRecord | None:
        if _has_nul(key_id, user_id):
            return None
        owner = "" if user_id is None else " AND user_id = $2"
        params: list[Any] = [key_id] if user_id is None else [key_id, user_id]
        async with self._conn("revoke failed") as conn, conn.transaction():
            # Row lock first: of two concurrent revokes exactly one sees it active and audits.
            row = await conn.fetchrow(
                f"SELECT {KEY_COLUMNS} FROM api_keys WHERE key_id = $1{owner} FOR UPDATE", *params
            )
            if row is None:
                return None
            key = _key(row)
            if key.is_active:
                await conn.execute(
                    "UPDATE api_keys SET is_active = false, revoked_us = $1 WHERE key_id = $2", at_us, key_id
                )
                key.is_active, key.revoked_us = False, at_us
                if audit is not None:
                    audit.user_id = key.user_id
                    await _insert_audit(conn, [audit])
            return key

    async def record_key_use(self, last_used: dict[str, int]) -> None:
        if not last_used:
            return
        async with self._conn("record key use failed") as conn:
            await conn.execute(
                "UPDATE api_keys SET last_used_us = u.ts FROM unnest($1::text[], $2::bigint[]) AS u(id, ts) "
                "WHERE api_keys.key_id = u.id AND (api_keys.last_used_us IS NULL OR api_keys.last_used_us < u.ts)",
                list(last_used),
                list(last_used.values()),
            )

    async def count_keys(self) -> int:
        async with self._conn("read failed") as conn:
            return int(await conn.fetchval("SELECT count(*) FROM api_keys"))
