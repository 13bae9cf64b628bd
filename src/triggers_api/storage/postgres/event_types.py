"""PostgreSQL event types: the schema catalog (see the EventTypeRegistry Protocol). A put takes a
transaction-scoped advisory lock on (user, type), so two processes registering one new type at
once store two versions in order rather than colliding; activity is a loose index scan on
ix_events_user_type_ts."""

from __future__ import annotations

from collections.abc import Callable

import asyncpg

from triggers_api.storage.base import (
    AuditRecord,
    EventTypeActivity,
    EventTypeRecord,
    EventTypeVersion,
    PutOutcome,
)
from triggers_api.storage.postgres.audit import (
    _insert_audit,
)
from triggers_api.storage.postgres.core import (
    PostgresCore,
    _has_nul,
    _i64,
    _rowcount,
)


class EventTypesPart(PostgresCore):
    """The schema catalog."""

    async def put_event_type(
        self,
        record: EventTypeRecord,
        audit: Callable[[str, EventTypeRecord], AuditRecord],
    ) -> tuple[EventTypeRecord, PutOutcome]:
        async with self._conn("event type write failed") as conn, conn.transaction():
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext($1))",
                f"event_type:{record.user_id}:{record.event_type}",
            )
            row = await conn.fetchrow(
                f"SELECT {_ET_COLUMNS} FROM event_types WHERE user_id = $1 AND event_type = $2",
                record.user_id,
                record.event_type,
            )
            current = _event_type(row) if row else None
            stored = EventTypeRecord(**{f: getattr(record, f) for f in _ET_FIELDS})
            if current is None:
                top = await conn.fetchval(
                    "SELECT COALESCE(MAX(version), 0) FROM event_type_versions "
                    "WHERE user_id = $1 AND event_type = $2",
                    record.user_id,
                    record.event_type,
                )
                stored.version, stored.created_us, outcome = (
                    int(top) + 1,
                    record.updated_us,
                    PutOutcome.CREATED,
                )
            else:
                if (current.schema, current.mode, current.description) == (
                    record.schema,
                    record.mode,
                    record.description,
                ):
                    return current, PutOutcome.UNCHANGED
                stored.version = current.version + (current.schema != record.schema)
                stored.created_us, outcome = current.created_us, PutOutcome.UPDATED
            await conn.execute(
                f"INSERT INTO event_types ({_ET_COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8) "
                "ON CONFLICT (user_id, event_type) DO UPDATE SET version = EXCLUDED.version, "
                "schema = EXCLUDED.schema, mode = EXCLUDED.mode, description = EXCLUDED.description, "
                "created_us = EXCLUDED.created_us, updated_us = EXCLUDED.updated_us",
                stored.user_id,
                stored.event_type,
                stored.version,
                stored.schema,
                stored.mode,
                _utf8(stored.description),
                stored.created_us,
                stored.updated_us,
            )
            await conn.execute(
                "INSERT INTO event_type_versions VALUES ($1,$2,$3,$4,$5,$6) "
                "ON CONFLICT (user_id, event_type, version) DO UPDATE SET mode = EXCLUDED.mode",
                stored.user_id,
                stored.event_type,
                stored.version,
                stored.schema,
                stored.mode,
                stored.updated_us,
            )
            await conn.execute(_BUMP_STAMP, stored.user_id)
            action = "event_type.created" if outcome is PutOutcome.CREATED else "event_type.updated"
            await _insert_audit(conn, [audit(action, stored)])
        return stored, outcome

    async def get_event_type(self, user_id: str, event_type: str) -> EventTypeRecord | None:
        if _has_nul(user_id, event_type):
            return None
        async with self._conn("read failed") as conn:
            row = await conn.fetchrow(
                f"SELECT {_ET_COLUMNS} FROM event_types WHERE user_id = $1 AND event_type = $2",
                user_id,
                event_type,
            )
        return _event_type(row) if row else None

    async def list_event_types(self, user_id: str) -> list[EventTypeRecord]:
        if _has_nul(user_id):
            return []
        async with self._conn("read failed") as conn:
            rows = await conn.fetch(
                f"SELECT {_ET_COLUMNS} FROM event_types WHERE user_id = $1 ORDER BY event_type", user_id
            )
        return [_event_type(r) for r in rows]

    async def event_type_versions(self, user_id: str, event_type: str) -> list[EventTypeVersion]:
        if _has_nul(user_id, event_type):
            return []
        async with self._conn("read failed") as conn:
            rows = await conn.fetch(
                "SELECT version, schema, mode, created_us FROM event_type_versions "
                "WHERE user_id = $1 AND event_type = $2 ORDER BY version",
                user_id,
                event_type,
            )
        return [EventTypeVersion(int(r[0]), bytes(r[1]), r[2], int(r[3])) for r in rows]

    async def delete_event_type(self, user_id: str, event_type: str, audit: AuditRecord) -> bool:
        if _has_nul(user_id, event_type):
            return False
        async with self._conn("event type delete failed") as conn, conn.transaction():
            status = await conn.execute(
                "DELETE FROM event_types WHERE user_id = $1 AND event_type = $2", user_id, event_type
            )
            if not _rowcount(status):
                return False
            await conn.execute(_BUMP_STAMP, user_id)
            await _insert_audit(conn, [audit])
        return True

    async def event_type_stamps(self) -> dict[str, int]:
        async with self._conn("read failed") as conn:
            rows = await conn.fetch("SELECT user_id, stamp FROM event_type_stamps")
        return {r[0]: int(r[1]) for r in rows}

    async def event_type_activity(
        self, user_id: str, since_us: int, recent_us: int, event_type: str | None = None
    ) -> list[EventTypeActivity]:
        if _has_nul(user_id, event_type):
            return []
        async with self._conn("read failed") as conn:
            if event_type is None:
                rows = await conn.fetch(_ACTIVITY_SQL, user_id, _i64(since_us), _i64(recent_us))
            else:
                rows = await conn.fetch(
                    _ONE_TYPE_ACTIVITY_SQL, user_id, _i64(since_us), _i64(recent_us), event_type
                )
        return [EventTypeActivity(r[0], int(r[1]), int(r[2])) for r in rows]

    async def recent_payloads(self, user_id: str, event_type: str, limit: int) -> list[bytes]:
        if _has_nul(user_id, event_type):
            return []
        async with self._conn("read failed") as conn:
            rows = await conn.fetch(
                "SELECT payload FROM events WHERE user_id = $1 AND event_type = $2 AND payload IS NOT NULL "
                "ORDER BY ts_us DESC, event_id DESC LIMIT $3",
                user_id,
                event_type,
                limit,
            )
        return [bytes(r[0]) for r in rows]


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


_BUMP_STAMP = (
    "INSERT INTO event_type_stamps AS s (user_id, stamp) VALUES ($1, 1) "
    "ON CONFLICT (user_id) DO UPDATE SET stamp = s.stamp + 1"
)


# Distinct types by skipping through ix_events_user_type_ts (user, type, time): one seek per
# type for the next name, one for its newest event, and a range count over its last 24 hours.
_ACTIVITY_SQL = """
WITH RECURSIVE types(t) AS (
    SELECT (SELECT min(event_type) FROM events WHERE user_id = $1)
    UNION ALL
    SELECT (SELECT min(event_type) FROM events WHERE user_id = $1 AND event_type > types.t)
    FROM types WHERE types.t IS NOT NULL
)
SELECT t, last, (SELECT count(*) FROM events WHERE user_id = $1 AND event_type = t AND ts_us >= $3)
FROM (SELECT t, (SELECT max(ts_us) FROM events WHERE user_id = $1 AND event_type = t) AS last
      FROM types WHERE t IS NOT NULL) AS seen
WHERE last >= $2
ORDER BY t
"""


_ONE_TYPE_ACTIVITY_SQL = """
SELECT t, last, (SELECT count(*) FROM events WHERE user_id = $1 AND event_type = t AND ts_us >= $3)
FROM (SELECT $4::text AS t,
             (SELECT max(ts_us) FROM events WHERE user_id = $1 AND event_type = $4::text) AS last) AS one
WHERE last >= $2
"""


def _utf8(text: str | None) -> bytes | None:
    return None if text is None else text.encode("utf-8", "surrogatepass")


def _event_type(row: asyncpg.Record) -> EventTypeRecord:
    user_id, event_type, version, schema, mode, description, created, updated = row
    return EventTypeRecord(
        user_id=user_id,
        event_type=event_type,
        version=int(version),
        schema=bytes(schema),
        mode=mode,
        description=None if description is None else bytes(description).decode("utf-8", "surrogatepass"),
        created_us=int(created),
        updated_us=int(updated),
    )
