"""SQLite delivery (the single-destination push worker's side): leased claims, attempts and their
outcomes, releases, replay of dead letters, the attempt history, queue depths and attempt counts."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from triggers_api.storage.attempts import STATE_COLUMNS, apply_attempts
from triggers_api.storage.base import (
    FANOUT_PARKED_US,
    WORKFLOW_DESTINATION,
    AttemptCounts,
    AttemptRecord,
    AuditRecord,
    DeliveryAttempt,
    DeliveryClaim,
    DeliveryDepths,
    EventRecord,
    EventStatus,
    ReplaySelector,
)
from triggers_api.storage.sqlite.audit import AUDIT_COLUMNS, _audit_row
from triggers_api.storage.sqlite.core import (
    _ATTEMPT_COLUMNS,
    _EVENT_JSON_COLUMNS,
    EVENT_COLUMNS,
    SQLiteCore,
    _event,
    _insert_many,
)
from triggers_api.storage.sqlite.fanout import _replay_fanout


class DeliveryPart(SQLiteCore):
    """Claims, attempts, leases, replay, depths and counts."""

    # See the Protocol's docstrings for the semantics.
    async def claim_due_events(
        self, lease_token: str, now_us: int, lease_until_us: int, limit: int
    ) -> list[DeliveryClaim]:
        sql = (
            "UPDATE events SET status = 'queued', lease_token = ?, lease_until_us = ? "
            "WHERE event_id IN (SELECT event_id FROM events WHERE status IN ('received', 'queued') "
            "AND COALESCE(next_attempt_us, ts_us) <= ? AND (lease_until_us IS NULL OR lease_until_us <= ?) "
            "ORDER BY COALESCE(next_attempt_us, ts_us) LIMIT ?) "
            f"RETURNING {EVENT_COLUMNS}, attempts, round_attempts, COALESCE(next_attempt_us, ts_us)"
        )

        due = (
            "SELECT * FROM events WHERE status IN ('received', 'queued') "
            "AND COALESCE(next_attempt_us, ts_us) <= ? AND (lease_until_us IS NULL OR lease_until_us <= ?) "
            "ORDER BY COALESCE(next_attempt_us, ts_us) LIMIT ?"
        )
        select_sql = (
            f"SELECT json_group_array(json_array({_EVENT_JSON_COLUMNS}, attempts, round_attempts, "
            f"COALESCE(next_attempt_us, ts_us))) FROM ({due})"
        )
        lease_sql = (
            "UPDATE events SET status = 'queued', lease_token = ?, lease_until_us = ? "
            "WHERE event_id IN (SELECT value ->> 0 FROM json_each(?))"
        )

        def write(conn: sqlite3.Connection) -> list[DeliveryClaim]:
            # Read the due events as one JSON value, then lease them by id: two sqlite3_steps in
            # the writer's transaction, where UPDATE ... RETURNING takes the GIL back per row.
            try:
                (text,) = conn.execute(select_sql, (now_us, now_us, limit)).fetchone()
                rows = orjson.loads(text)
            except (ValueError, sqlite3.OperationalError):  # a payload that is not UTF-8: by row
                return claim_by_row(conn)
            if not rows:
                return []
            conn.execute(lease_sql, (lease_token, lease_until_us, text))
            rows.sort(key=lambda r: (r[-1], r[0]))
            queued = EventStatus.QUEUED.value
            return [
                DeliveryClaim(
                    EventRecord(
                        r[0],
                        r[1],
                        r[2],
                        None if r[3] is None else r[3].encode(),
                        queued,
                        r[5],
                        r[6],
                        r[7].encode(),
                        r[8],
                        r[9],
                        r[10],
                        r[11],
                    ),
                    lease_token,
                    lease_until_us,
                    r[12],
                    r[13],
                )
                for r in rows
            ]

        def claim_by_row(conn: sqlite3.Connection) -> list[DeliveryClaim]:
            rows = conn.execute(sql, (lease_token, lease_until_us, now_us, now_us, limit)).fetchall()
            rows.sort(key=lambda r: (r[-1], r[0]))
            return [DeliveryClaim(_event(r[:12]), lease_token, lease_until_us, r[12], r[13]) for r in rows]

        return await self._write(write)

    async def next_delivery_due(self, now_us: int) -> int | None:
        def read(conn: sqlite3.Connection) -> int | None:
            row = conn.execute(
                "SELECT COALESCE(next_attempt_us, ts_us) FROM events WHERE status IN ('received', 'queued') "
                "AND (lease_until_us IS NULL OR lease_until_us <= ?) "
                f"AND COALESCE(next_attempt_us, ts_us) < {FANOUT_PARKED_US} "
                "ORDER BY COALESCE(next_attempt_us, ts_us) LIMIT 1",
                (now_us,),
            ).fetchone()
            return int(row[0]) if row else None

        return await self._read(read)

    async def record_attempt(
        self,
        attempt: DeliveryAttempt,
        lease_token: str,
        *,
        next_attempt_us: int | None = None,
        audit: AuditRecord | None = None,
    ) -> bool:
        applied = await self.record_attempts([AttemptRecord(attempt, lease_token, next_attempt_us, audit)])
        return applied[0]

    async def record_attempts(self, records: Sequence[AttemptRecord]) -> list[bool]:
        """One read of the events (one JSON value), the outcomes decided in Python, then one
        multi-row statement per table: a batch of pushes costs a handful of ``sqlite3_step``s
        (each a GIL round trip for the writer thread), not six per push."""
        if not records:
            return []
        ids = list(dict.fromkeys(r.attempt.event_id for r in records))

        def write(conn: sqlite3.Connection) -> list[bool]:
            state: dict[str, list[Any]] = {}
            (text,) = conn.execute(
                f"SELECT json_group_array(json_array({STATE_COLUMNS})) FROM events "
                "WHERE event_id IN (SELECT value FROM json_each(?))",
                (orjson.dumps(ids).decode(),),
            ).fetchone()
            for row in orjson.loads(text):
                state[row[0]] = row
            results, attempts, audits, touched = apply_attempts(state, records)
            attempt_rows: list[Any] = []
            for a in attempts:
                attempt_rows += (
                    a.attempt_id,
                    a.event_id,
                    a.user_id,
                    a.started_us,
                    a.duration_us,
                    a.outcome,
                    a.response_status,
                    a.error,
                    a.response_body,
                )
            audit_rows: list[Any] = []
            for audit in audits:
                audit_rows += _audit_row(audit)
            _insert_many(conn, "delivery_attempts", _ATTEMPT_COLUMNS, 9, attempt_rows)
            if touched:
                conn.execute(_UPDATE_AFTER_ATTEMPTS, (orjson.dumps(touched).decode(),))
            _insert_many(conn, "audit_logs", AUDIT_COLUMNS, 8, audit_rows)
            return results

        return await self._write(write)

    async def release_claims(self, claims: Sequence[tuple[str, str]], due_us: int) -> int:
        rows = [(due_us, event_id, token) for event_id, token in claims]
        if not rows:
            return 0

        def write(conn: sqlite3.Connection) -> int:
            before = conn.total_changes
            conn.executemany(
                "UPDATE events SET lease_token = NULL, lease_until_us = NULL, next_attempt_us = ? "
                "WHERE event_id = ? AND lease_token = ? AND status = 'queued'",
                rows,
            )
            return conn.total_changes - before

        return await self._write(write)

    async def replay_events(
        self, selector: ReplaySelector, at_us: int, limit: int, audit: Callable[[str], AuditRecord]
    ) -> list[str]:
        where = ["user_id = ?", "status = 'failed'", f"COALESCE(next_attempt_us, 0) < {FANOUT_PARKED_US}"]
        if selector.destination not in (None, WORKFLOW_DESTINATION):
            where.append("0")  # a subscription's deliveries: only fanned-out events have them
        params: list[Any] = [selector.user_id]
        if selector.event_ids is not None:
            if not selector.event_ids:
                return []
            where.append(f"event_id IN ({','.join('?' * len(selector.event_ids))})")
            params += list(selector.event_ids)
        if selector.event_type is not None:
            where.append("event_type = ?")
            params.append(selector.event_type)
        if selector.from_us is not None:
            where.append("ts_us >= ?")
            params.append(selector.from_us)
        if selector.to_us is not None:
            where.append("ts_us <= ?")
            params.append(selector.to_us)
        sql = (
            "UPDATE events SET status = 'queued', next_attempt_us = ?, round_attempts = 0, "
            "lease_token = NULL, lease_until_us = NULL WHERE event_id IN "
            f"(SELECT event_id FROM events WHERE {' AND '.join(where)} ORDER BY ts_us, event_id LIMIT ?) "
            "RETURNING event_id, ts_us"
        )
        all_params = [at_us, *params, limit]

        def write(conn: sqlite3.Connection) -> list[str]:
            rows = conn.execute(sql, all_params).fetchall()
            rows += _replay_fanout(conn, selector, at_us, limit - len(rows))
            rows.sort(key=lambda r: (r[1], r[0]))
            ids = [r[0] for r in rows]
            if ids:
                conn.executemany(
                    f"INSERT INTO audit_logs ({AUDIT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?)",
                    [_audit_row(audit(event_id)) for event_id in ids],
                )
            return ids

        return await self._write(write)

    async def list_attempts(self, user_id: str, event_id: str) -> list[DeliveryAttempt]:
        def read(conn: sqlite3.Connection) -> list[DeliveryAttempt]:
            rows = conn.execute(
                "SELECT attempt_id, event_id, user_id, started_us, duration_us, outcome, response_status, "
                "error, response_body, destination FROM delivery_attempts WHERE event_id = ? AND user_id = ? "
                "ORDER BY started_us, attempt_id",
                (event_id, user_id),
            )
            return [DeliveryAttempt(*r) for r in rows]

        return await self._read(read)

    async def delivery_depths(self, user_id: str | None = None) -> DeliveryDepths:
        def read(conn: sqlite3.Connection) -> DeliveryDepths:
            if user_id is None:  # each count is a walk of one small partial index
                pending = conn.execute(
                    "SELECT COUNT(*) FROM events WHERE status IN ('received', 'queued')"
                ).fetchone()[0]
                dead = conn.execute("SELECT COUNT(*) FROM events WHERE status = 'failed'").fetchone()[0]
                return DeliveryDepths(int(pending), int(dead))
            counts = dict(
                conn.execute(
                    "SELECT status, COUNT(*) FROM events INDEXED BY ix_events_inbox WHERE user_id = ? "
                    "AND status IN ('received', 'queued', 'failed') GROUP BY status",
                    (user_id,),
                ).fetchall()
            )
            return DeliveryDepths(
                int(counts.get("received", 0)) + int(counts.get("queued", 0)), int(counts.get("failed", 0))
            )

        return await self._read(read)

    async def count_attempts(self, user_id: str, since_us: int) -> AttemptCounts:
        def read(conn: sqlite3.Connection) -> AttemptCounts:
            total, delivered = conn.execute(
                "SELECT COUNT(*), COALESCE(SUM(outcome = 'delivered'), 0) FROM delivery_attempts "
                "WHERE user_id = ? AND started_us >= ?",
                (user_id, since_us),
            ).fetchone()
            return AttemptCounts(int(total), int(delivered))

        return await self._read(read)


#: record_attempts' new event states, all in one statement: a JSON array of the changed state rows
#: (``attempts.STATE_COLUMNS``).
_UPDATE_AFTER_ATTEMPTS = (
    "UPDATE events SET status = u.value ->> 2, lease_token = u.value ->> 4, "
    "lease_until_us = u.value ->> 5, attempts = u.value ->> 6, retry_count = (u.value ->> 6) - 1, "
    "last_retry_us = u.value ->> 7, delivered_us = u.value ->> 8, next_attempt_us = u.value ->> 9, "
    "round_attempts = u.value ->> 10 FROM json_each(?) AS u WHERE events.event_id = u.value ->> 0"
)
