"""SQLite API keys: create, look up by hash or by (user, id), list, revoke, last use."""

from __future__ import annotations

import sqlite3
from typing import Any

import orjson

from triggers_api.storage.base import (
    ApiKeyRecord,
    AuditRecord,
)
from triggers_api.storage.sqlite.audit import AUDIT_COLUMNS, _audit_row
from triggers_api.storage.sqlite.core import (
    SQLiteCore,
)

KEY_COLUMNS = (
    "key_id, user_id, key_hash, key_prefix, name, created_us, rate_limit, scopes, is_active, "
    "expires_us, last_used_us, revoked_us"
)


def _key(row: tuple[Any, ...]) -> ApiKeyRecord:
    (key_id, user_id, key_hash, prefix, name, created, rate, scopes, active, expires, used, revoked) = row
    return ApiKeyRecord(
        key_id=key_id,
        user_id=user_id,
        key_hash=key_hash,
        key_prefix=prefix,
        name=name,
        created_us=created,
        rate_limit=rate,
        scopes=tuple(orjson.loads(scopes)),
        is_active=bool(active),
        expires_us=expires,
        last_used_us=used,
        revoked_us=revoked,
    )


class KeysPart(SQLiteCore):
    """API keys."""

    async def insert_key(self, key: ApiKeyRecord, audit: AuditRecord | None) -> None:
        row = (
            key.key_id,
            key.user_id,
            key.key_hash,
            key.key_prefix,
            key.name,
            key.created_us,
            key.rate_limit,
            orjson.dumps(list(key.scopes)).decode(),
            int(key.is_active),
            key.expires_us,
            key.last_used_us,
            key.revoked_us,
        )

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(f"INSERT INTO api_keys ({KEY_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", row)
            if audit is not None:
                conn.execute(
                    f"INSERT INTO audit_logs ({AUDIT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?)", _audit_row(audit)
                )

        await self._write(write)

    async def find_key_by_hash(self, key_hash: str) -> ApiKeyRecord | None:
        def read(conn: sqlite3.Connection) -> ApiKeyRecord | None:
            row = conn.execute(
                f"SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = ?", (key_hash,)
            ).fetchone()
            return _key(row) if row else None

        return await self._read(read)

    async def get_key(self, user_id: str, key_id: str) -> ApiKeyRecord | None:
        def read(conn: sqlite3.Connection) -> ApiKeyRecord | None:
            row = conn.execute(
                f"SELECT {KEY_COLUMNS} FROM api_keys WHERE key_id = ? AND user_id = ?", (key_id, user_id)
            ).fetchone()
            return _key(row) if row else None

        return await self._read(read)

    async def list_keys(self, user_id: str) -> list[ApiKeyRecord]:
        def read(conn: sqlite3.Connection) -> list[ApiKeyRecord]:
            rows = conn.execute(
                f"SELECT {KEY_COLUMNS} FROM api_keys WHERE user_id = ? ORDER BY created_us DESC, key_id DESC",
                (user_id,),
            )
            return [_key(r) for r in rows]

        return await self._read(read)

    async def revoke_key(
        self, key_id: str, user_id: str | None, at_us: int, audit: AuditRecord | None
    ) -> ApiKeyRecord | None:
        def write(conn: sqlite3.Connection) -> ApiKeyRecord | None:
            sql = f"SELECT {KEY_COLUMNS} FROM api_keys WHERE key_id = ?"
            params: tuple[Any, ...] = (key_id,)
            if user_id is not None:
                sql += " AND user_id = ?"
                params = (key_id, user_id)
            row = conn.execute(sql, params).fetchone()
            if row is None:
                return None
            key = _key(row)
            if key.is_active:
                conn.execute(
                    "UPDATE api_keys SET is_active = 0, revoked_us = ? WHERE key_id = ?", (at_us, key_id)
                )
                key.is_active, key.revoked_us = False, at_us
                if audit is not None:
                    audit.user_id = key.user_id
                    conn.execute(
                        f"INSERT INTO audit_logs ({AUDIT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?)",
                        _audit_row(audit),
                    )
            return key

        return await self._write(write)

    async def record_key_use(self, last_used: dict[str, int]) -> None:
        rows = [(ts, key_id, ts) for key_id, ts in last_used.items()]
        if not rows:
            return

        def write(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "UPDATE api_keys SET last_used_us = ? WHERE key_id = ? "
                "AND (last_used_us IS NULL OR last_used_us < ?)",
                rows,
            )

        await self._write(write)

    async def count_keys(self) -> int:
        def read(conn: sqlite3.Connection) -> int:
            return int(conn.execute("SELECT COUNT(*) FROM api_keys").fetchone()[0])

        return await self._read(read)
