"""SQLite audit log: its columns and row form (every part writes audit rows with
:func:`_insert_audit` or the multi-row insert) and the newest-first listing."""

from __future__ import annotations

import sqlite3
from typing import Any

from triggers_api.storage.base import (
    AuditQuery,
    AuditRecord,
)
from triggers_api.storage.sqlite.core import (
    SQLiteCore,
)

AUDIT_COLUMNS = "log_id, user_id, action, ts_us, event_id, details, ip_address, request_id"


def _audit(row: tuple[Any, ...]) -> AuditRecord:
    return AuditRecord(*row)


def _audit_row(a: AuditRecord) -> tuple[Any, ...]:
    return (a.log_id, a.user_id, a.action, a.ts_us, a.event_id, a.details, a.ip_address, a.request_id)


def _insert_audit(conn: sqlite3.Connection, audit: AuditRecord | None) -> None:
    if audit is not None:
        conn.execute(f"INSERT INTO audit_logs ({AUDIT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?)", _audit_row(audit))


class AuditPart(SQLiteCore):
    """The audit log."""

    async def list_audit(self, query: AuditQuery) -> list[AuditRecord]:
        where = ["user_id = ?"]
        params: list[Any] = [query.user_id]
        # Without a hint SQLite walks ix_audit_user_ts (it gives the order) and filters: listing
        # one event's few audit rows read the user's whole log back from the cursor. The filter's
        # own index seeks them; ties of ts_us are put in log_id order by a small sort
        # ("USE TEMP B-TREE FOR RIGHT PART OF ORDER BY"), with LIMIT applied as it goes.
        index = "ix_audit_user_ts"
        if query.event_id is not None:
            where.append("event_id = ?")
            params.append(query.event_id)
            index = "ix_audit_user_event"
        if query.action is not None:
            where.append("action = ?")
            params.append(query.action)
            if index == "ix_audit_user_ts":
                index = "ix_audit_user_action"
        if query.before is not None:
            # A row value, as the events listing uses: SQLite seeks an index to it.
            where.append("(ts_us, log_id) < (?, ?)")
            params += [query.before[0], query.before[1]]
        sql = (
            f"SELECT {AUDIT_COLUMNS} FROM audit_logs INDEXED BY {index} WHERE {' AND '.join(where)} "
            "ORDER BY ts_us DESC, log_id DESC LIMIT ?"
        )
        params.append(query.limit)

        def read(conn: sqlite3.Connection) -> list[AuditRecord]:
            return [_audit(r) for r in conn.execute(sql, params)]

        return await self._read(read)
