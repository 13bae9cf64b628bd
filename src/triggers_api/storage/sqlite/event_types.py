"""SQLite event types: the schema catalog (see the EventTypeRegistry Protocol). Writes go
through the one writer like every other write; activity is a loose index scan on
ix_events_user_type_ts (one seek per distinct type)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from triggers_api.storage.base import (
    AuditRecord,
    EventTypeActivity,
    EventTypeRecord,
    EventTypeVersion,
    PutOutcome,
)
from triggers_api.storage.sqlite.audit import AUDIT_COLUMNS, _audit_row
from triggers_api.storage.sqlite.core import (
    SQLiteCore,
)


class EventTypesPart(SQLiteCore):
    """The schema catalog."""

    async def put_event_type(
        self,
        record: EventTypeRecord,
        audit: Callable[[str, EventTypeRecord], AuditRecord],
    ) -> tuple[EventTypeRecord, PutOutcome]:
        def write(conn: sqlite3.Connection) -> tuple[EventTypeRecord, PutOutcome]:
            row = conn.execute(
                f"SELECT {_ET_COLUMNS} FROM event_types WHERE user_id = ? AND event_type = ?",
                (record.user_id, record.event_type),
            ).fetchone()
            current = EventTypeRecord(*row) if row else None
            stored = EventTypeRecord(**{f: getattr(record, f) for f in _ET_FIELDS})
            if current is None:
                (top,) = conn.execute(
                    "SELECT COALESCE(MAX(version), 0) FROM event_type_versions "
                    "WHERE user_id = ? AND event_type = ?",
                    (record.user_id, record.event_type),
                ).fetchone()
                stored.version, stored.created_us, outcome = top + 1, record.updated_us, PutOutcome.CREATED
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
            conn.execute(
                f"INSERT OR REPLACE INTO event_types ({_ET_COLUMNS}) VALUES (?,?,?,?,?,?,?,?)",
                tuple(getattr(stored, f) for f in _ET_FIELDS),
            )
            conn.execute(
                "INSERT OR REPLACE INTO event_type_versions VALUES (?,?,?,?,?,?)",
                (
                    stored.user_id,
                    stored.event_type,
                    stored.version,
                    stored.schema,
                    stored.mode,
                    _version_created(conn, stored),
                ),
            )
            _bump_stamp(conn, stored.user_id)
            action = "event_type.created" if outcome is PutOutcome.CREATED else "event_type.updated"
            conn.execute(
                f"INSERT INTO audit_logs ({AUDIT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?)",
                _audit_row(audit(action, stored)),
            )
            return stored, outcome

        return await self._write(write)

    async def get_event_type(self, user_id: str, event_type: str) -> EventTypeRecord | None:
        def read(conn: sqlite3.Connection) -> EventTypeRecord | None:
            row = conn.execute(
                f"SELECT {_ET_COLUMNS} FROM event_types WHERE user_id = ? AND event_type = ?",
                (user_id, event_type),
            ).fetchone()
            return EventTypeRecord(*row) if row else None

        return await self._read(read)

    async def list_event_types(self, user_id: str) -> list[EventTypeRecord]:
        def read(conn: sqlite3.Connection) -> list[EventTypeRecord]:
            rows = conn.execute(
                f"SELECT {_ET_COLUMNS} FROM event_types WHERE user_id = ? ORDER BY event_type", (user_id,)
            )
            return [EventTypeRecord(*r) for r in rows]

        return await self._read(read)

    async def event_type_versions(self, user_id: str, event_type: str) -> list[EventTypeVersion]:
        def read(conn: sqlite3.Connection) -> list[EventTypeVersion]:
            rows = conn.execute(
                "SELECT version, schema, mode, created_us FROM event_type_versions "
                "WHERE user_id = ? AND event_type = ? ORDER BY version",
                (user_id, event_type),
            )
            return [EventTypeVersion(int(v), bytes(s), m, int(c)) for v, s, m, c in rows]

        return await self._read(read)

    async def delete_event_type(self, user_id: str, event_type: str, audit: AuditRecord) -> bool:
        def write(conn: sqlite3.Connection) -> bool:
            deleted = conn.execute(
                "DELETE FROM event_types WHERE user_id = ? AND event_type = ?", (user_id, event_type)
            ).rowcount
            if not deleted:
                return False
            _bump_stamp(conn, user_id)
            conn.execute(
                f"INSERT INTO audit_logs ({AUDIT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?)", _audit_row(audit)
            )
            return True

        return await self._write(write)

    async def event_type_stamps(self) -> dict[str, int]:
        def read(conn: sqlite3.Connection) -> dict[str, int]:
            return {u: int(s) for u, s in conn.execute("SELECT user_id, stamp FROM event_type_stamps")}

        return await self._read(read)

    async def event_type_activity(
        self, user_id: str, since_us: int, recent_us: int, event_type: str | None = None
    ) -> list[EventTypeActivity]:
        if event_type is None:
            sql = _ACTIVITY_SQL
            params: tuple[Any, ...] = (user_id, since_us, recent_us)
        else:
            sql = _ONE_TYPE_ACTIVITY_SQL
            params = (user_id, since_us, recent_us, event_type)

        def read(conn: sqlite3.Connection) -> list[EventTypeActivity]:
            return [EventTypeActivity(t, int(last), int(n)) for t, last, n in conn.execute(sql, params)]

        return await self._read(read)

    async def recent_payloads(self, user_id: str, event_type: str, limit: int) -> list[bytes]:
        def read(conn: sqlite3.Connection) -> list[bytes]:
            rows = conn.execute(
                "SELECT payload FROM events WHERE user_id = ? AND event_type = ? AND payload IS NOT NULL "
                "ORDER BY ts_us DESC, event_id DESC LIMIT ?",
                (user_id, event_type, limit),
            )
            return [bytes(p) for (p,) in rows]

        return await self._read(read)


_ET_FIELDS = (
    "user_id",
    "event_type",
    "version",
    "schema",
    "mode",
    "description",
    "created_us",
    "updated_us",
)


_ET_COLUMNS = ", ".join(_ET_FIELDS)


# Distinct types by skipping through ix_events_user_type_ts (user, type, time): one seek per
# type for the next name, one for its newest event, and a range count over its last 24 hours.
_ACTIVITY_SQL = """
WITH RECURSIVE types(t) AS (
    SELECT (SELECT MIN(event_type) FROM events WHERE user_id = ?1)
    UNION ALL
    SELECT (SELECT MIN(event_type) FROM events WHERE user_id = ?1 AND event_type > types.t)
    FROM types WHERE types.t IS NOT NULL
)
SELECT t, last, (SELECT COUNT(*) FROM events WHERE user_id = ?1 AND event_type = t AND ts_us >= ?3)
FROM (SELECT t, (SELECT MAX(ts_us) FROM events WHERE user_id = ?1 AND event_type = t) AS last
      FROM types WHERE t IS NOT NULL)
WHERE last >= ?2
ORDER BY t
"""


_ONE_TYPE_ACTIVITY_SQL = """
SELECT t, last, (SELECT COUNT(*) FROM events WHERE user_id = ?1 AND event_type = t AND ts_us >= ?3)
FROM (SELECT ?4 AS t, (SELECT MAX(ts_us) FROM events WHERE user_id = ?1 AND event_type = ?4) AS last)
WHERE last >= ?2
"""


def _bump_stamp(conn: sqlite3.Connection, user_id: str) -> None:
    conn.execute(
        "INSERT INTO event_type_stamps (user_id, stamp) VALUES (?, 1) "
        "ON CONFLICT (user_id) DO UPDATE SET stamp = stamp + 1",
        (user_id,),
    )


def _version_created(conn: sqlite3.Connection, stored: EventTypeRecord) -> int:
    """A version keeps the time it was first stored (a mode change rewrites its row)."""
    row = conn.execute(
        "SELECT created_us FROM event_type_versions WHERE user_id = ? AND event_type = ? AND version = ?",
        (stored.user_id, stored.event_type, stored.version),
    ).fetchone()
    return int(row[0]) if row else stored.updated_us
