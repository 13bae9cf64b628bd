"""PostgreSQL audit log: its columns, the arrays every part inserts audit rows with
(:func:`_insert_audit`), and the newest-first listing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from triggers_api.storage.base import (
    AuditQuery,
    AuditRecord,
)
from triggers_api.storage.postgres.core import (
    Conn,
    PostgresCore,
    _has_nul,
    _i64,
)

AUDIT_COLUMNS = "log_id, user_id, action, ts_us, event_id, details, ip_address, request_id"


_AUDIT_UNNEST = "unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::bytea[], $7::text[], $8::text[])"


def _audit(row: asyncpg.Record) -> AuditRecord:
    return AuditRecord(*row)


def _audit_arrays(records: Sequence[AuditRecord]) -> list[list[Any]]:
    return [
        [a.log_id for a in records],
        [a.user_id for a in records],
        [a.action for a in records],
        [a.ts_us for a in records],
        [a.event_id for a in records],
        [a.details for a in records],
        [a.ip_address for a in records],
        [a.request_id for a in records],
    ]


async def _insert_audit(conn: Conn, records: Sequence[AuditRecord]) -> None:
    await conn.execute(
        f"INSERT INTO audit_logs ({AUDIT_COLUMNS}) SELECT * FROM {_AUDIT_UNNEST}", *_audit_arrays(records)
    )


class AuditPart(PostgresCore):
    """The audit log."""

    async def list_audit(self, query: AuditQuery) -> list[AuditRecord]:
        if _has_nul(query.user_id, query.event_id, query.action) or (
            query.before is not None and _has_nul(query.before[1])
        ):
            return []
        sql, params = audit_listing_sql(query)
        async with self._conn("read failed") as conn:
            return [_audit(r) for r in await conn.fetch(sql, *params)]


def audit_listing_sql(query: AuditQuery) -> tuple[str, list[Any]]:
    where = ["user_id = $1"]
    params: list[Any] = [query.user_id]

    def param(value: Any) -> str:
        params.append(value)
        return f"${len(params)}"

    if query.event_id is not None:
        where.append(f"event_id = {param(query.event_id)}")
    if query.action is not None:
        where.append(f"action = {param(query.action)}")
    if query.before is not None:
        where.append(f"(ts_us, log_id) < ({param(_i64(query.before[0]))}, {param(query.before[1])})")
    sql = (
        f"SELECT {AUDIT_COLUMNS} FROM audit_logs WHERE {' AND '.join(where)} "
        f"ORDER BY ts_us DESC, log_id DESC LIMIT {param(query.limit)}"
    )
    return sql, params
