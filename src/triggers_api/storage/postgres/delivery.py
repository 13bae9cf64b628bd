"""PostgreSQL delivery (the single-destination push worker's side). Claims lock with
``FOR UPDATE SKIP LOCKED``, so concurrent workers in any number of processes take disjoint events
without waiting for each other; attempts and their outcomes, releases, replay of dead letters, the
attempt history, queue depths and attempt counts."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

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
    ReplaySelector,
)
from triggers_api.storage.postgres.audit import (
    _insert_audit,
)
from triggers_api.storage.postgres.core import (
    EVENT_COLUMNS,
    PostgresCore,
    _event,
    _has_nul,
    _i64,
)
from triggers_api.storage.postgres.fanout import _replay_fanout

# Lease due, unleased pending events, earliest due first. SKIP LOCKED: rows another worker is
# claiming right now are passed over, not waited for; the lock is re-checked on the newest row
# version, so an event is never leased to two callers whose leases are both live. The pick is a
# MATERIALIZED CTE: as a join or IN (...) the planner may rescan a LIMIT ... FOR UPDATE subquery
# once per outer row, and each rescan, skipping rows this statement already changed, picks more.
_CLAIM = f"""
WITH due AS MATERIALIZED (
    SELECT event_id FROM events
    WHERE status IN ('received', 'queued') AND COALESCE(next_attempt_us, ts_us) <= $3
      AND (lease_until_us IS NULL OR lease_until_us <= $3)
    ORDER BY COALESCE(next_attempt_us, ts_us)
    LIMIT $4
    FOR UPDATE SKIP LOCKED
)
UPDATE events AS e SET status = 'queued', lease_token = $1, lease_until_us = $2
FROM due
WHERE e.event_id = due.event_id
RETURNING {", ".join("e." + c for c in EVENT_COLUMNS.split(", "))}, e.attempts, e.round_attempts,
          COALESCE(e.next_attempt_us, e.ts_us)
"""


class DeliveryPart(PostgresCore):
    """Claims, attempts, leases, replay, depths and counts."""

    # See the Protocol's docstrings for the semantics (they match the SQLite backend's).
    async def claim_due_events(
        self, lease_token: str, now_us: int, lease_until_us: int, limit: int
    ) -> list[DeliveryClaim]:
        if limit <= 0:
            return []
        async with self._conn("claim failed") as conn:
            rows = await conn.fetch(_CLAIM, lease_token, _i64(lease_until_us), _i64(now_us), limit)
        ordered = sorted(rows, key=lambda r: (r[-1], r[0]))
        return [
            DeliveryClaim(_event(r[:12]), lease_token, lease_until_us, int(r[12]), int(r[13]))
            for r in ordered
        ]

    async def next_delivery_due(self, now_us: int) -> int | None:
        async with self._conn("read failed") as conn:
            due = await conn.fetchval(
                "SELECT COALESCE(next_attempt_us, ts_us) FROM events WHERE status IN ('received', 'queued') "
                "AND (lease_until_us IS NULL OR lease_until_us <= $1) "
                f"AND COALESCE(next_attempt_us, ts_us) < {FANOUT_PARKED_US} "
                "ORDER BY COALESCE(next_attempt_us, ts_us) LIMIT 1",
                _i64(now_us),
            )
        return int(due) if due is not None else None

    async def record_attempt(
        self,
        attempt: DeliveryAttempt,
        lease_token: str,
        *,
        next_attempt_us: int | None = None,
        audit: AuditRecord | None = None,
    ) -> bool:
        # One set of outcome rules for both backends (storage/attempts.py): a batch of one.
        applied = await self.record_attempts([AttemptRecord(attempt, lease_token, next_attempt_us, audit)])
        return applied[0]

    async def record_attempts(self, records: Sequence[AttemptRecord]) -> list[bool]:
        """One transaction: the events' state read and row-locked at once (in id order, so two
        batches never deadlock), the outcomes decided in Python (``attempts.apply_attempts``),
        then one statement per table."""
        if not records:
            return []
        ids = sorted(
            {r.attempt.event_id for r in records if not _has_nul(r.attempt.event_id, r.attempt.user_id)}
        )
        async with self._conn("record attempt failed") as conn, conn.transaction():
            rows = await conn.fetch(
                f"SELECT {STATE_COLUMNS} FROM events WHERE event_id = ANY($1::text[]) "
                "ORDER BY event_id FOR UPDATE",
                ids,
            )
            state = {row[0]: list(row) for row in rows}
            results, attempts, audits, touched = apply_attempts(state, records)
            if attempts:
                await conn.executemany(
                    "INSERT INTO delivery_attempts (attempt_id, event_id, user_id, started_us, duration_us, "
                    "outcome, response_status, error, response_body) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)",
                    [
                        (
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
                        for a in attempts
                    ],
                )
            if touched:
                columns = list(zip(*touched, strict=True))
                await conn.execute(
                    "UPDATE events SET status = u.status, lease_token = u.lease_token, "
                    "lease_until_us = u.lease_until_us, attempts = u.attempts, retry_count = u.attempts - 1, "
                    "last_retry_us = u.last_retry_us, delivered_us = u.delivered_us, "
                    "next_attempt_us = u.next_attempt_us, round_attempts = u.round_attempts "
                    "FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::int[], $6::bigint[], "
                    "$7::bigint[], $8::bigint[], $9::int[]) AS u(event_id, status, lease_token, lease_until_us, "
                    "attempts, last_retry_us, delivered_us, next_attempt_us, round_attempts) "
                    'WHERE events.event_id = u.event_id COLLATE "C"',
                    list(columns[0]),
                    list(columns[2]),
                    list(columns[4]),
                    list(columns[5]),
                    list(columns[6]),
                    list(columns[7]),
                    list(columns[8]),
                    [_i64(v) if v is not None else None for v in columns[9]],
                    list(columns[10]),
                )
            if audits:
                await _insert_audit(conn, audits)
            return results

    async def release_claims(self, claims: Sequence[tuple[str, str]], due_us: int) -> int:
        pairs = [(e, t) for e, t in claims if not _has_nul(e, t)]
        if not pairs:
            return 0
        async with self._conn("release failed") as conn:
            rows = await conn.fetch(
                "UPDATE events SET lease_token = NULL, lease_until_us = NULL, next_attempt_us = $1 "
                "FROM unnest($2::text[], $3::text[]) AS c(event_id, token) "
                "WHERE events.event_id = c.event_id AND events.lease_token = c.token "
                "AND events.status = 'queued' RETURNING events.user_id",
                _i64(due_us),
                [e for e, _ in pairs],
                [t for _, t in pairs],
            )
        self._announce({r[0] for r in rows})  # due again: idle workers elsewhere look
        return len(rows)

    async def replay_events(
        self, selector: ReplaySelector, at_us: int, limit: int, audit: Callable[[str], AuditRecord]
    ) -> list[str]:
        where = ["user_id = $2", "status = 'failed'", f"COALESCE(next_attempt_us, 0) < {FANOUT_PARKED_US}"]
        if selector.destination not in (None, WORKFLOW_DESTINATION):
            where.append("false")  # a subscription's deliveries: only fanned-out events have them
        params: list[Any] = [_i64(at_us), selector.user_id]

        def param(value: Any) -> str:
            params.append(value)
            return f"${len(params)}"

        if selector.event_ids is not None:
            ids = [i for i in selector.event_ids if not _has_nul(i)]
            if not ids:
                return []
            where.append(f"event_id = ANY({param(ids)}::text[])")
        if selector.event_type is not None:
            if _has_nul(selector.event_type):
                return []
            where.append(f"event_type = {param(selector.event_type)}")
        if selector.from_us is not None:
            where.append(f"ts_us >= {param(_i64(selector.from_us))}")
        if selector.to_us is not None:
            where.append(f"ts_us <= {param(_i64(selector.to_us))}")
        if _has_nul(selector.user_id) or limit <= 0:
            return []
        sql = (  # a MATERIALIZED pick, for the reason given at _CLAIM
            f"WITH picked AS MATERIALIZED (SELECT event_id FROM events WHERE {' AND '.join(where)} "
            f"ORDER BY ts_us, event_id LIMIT {param(limit)} FOR UPDATE) "
            "UPDATE events SET status = 'queued', next_attempt_us = $1, round_attempts = 0, "
            "lease_token = NULL, lease_until_us = NULL FROM picked "
            "WHERE events.event_id = picked.event_id AND events.status = 'failed' "
            "RETURNING events.event_id, events.ts_us"
        )
        async with self._conn("replay failed") as conn, conn.transaction():
            rows = [(r[0], int(r[1])) for r in await conn.fetch(sql, *params)]
            rows += await _replay_fanout(conn, selector, at_us, limit - len(rows))
            rows.sort(key=lambda r: (r[1], r[0]))
            ids = [r[0] for r in rows]
            if ids:
                await _insert_audit(conn, [audit(event_id) for event_id in ids])
        if ids:
            self._announce({selector.user_id})
        return ids

    async def list_attempts(self, user_id: str, event_id: str) -> list[DeliveryAttempt]:
        if _has_nul(user_id, event_id):
            return []
        async with self._conn("read failed") as conn:
            rows = await conn.fetch(
                "SELECT attempt_id, event_id, user_id, started_us, duration_us, outcome, response_status, "
                "error, response_body, destination FROM delivery_attempts WHERE event_id = $1 AND user_id = $2 "
                "ORDER BY started_us, attempt_id",
                event_id,
                user_id,
            )
        return [DeliveryAttempt(*r) for r in rows]

    async def delivery_depths(self, user_id: str | None = None) -> DeliveryDepths:
        async with self._conn("read failed") as conn:
            if user_id is None:  # each count walks one small partial index
                row = await conn.fetchrow(
                    "SELECT (SELECT count(*) FROM events WHERE status IN ('received', 'queued')), "
                    "(SELECT count(*) FROM events WHERE status = 'failed')"
                )
            elif _has_nul(user_id):
                return DeliveryDepths(0, 0)
            else:
                row = await conn.fetchrow(
                    "SELECT count(*) FILTER (WHERE status IN ('received', 'queued')), "
                    "count(*) FILTER (WHERE status = 'failed') FROM events "
                    "WHERE user_id = $1 AND status IN ('received', 'queued', 'failed')",
                    user_id,
                )
        assert row is not None
        return DeliveryDepths(int(row[0]), int(row[1]))

    async def count_attempts(self, user_id: str, since_us: int) -> AttemptCounts:
        if _has_nul(user_id):
            return AttemptCounts(0, 0)
        async with self._conn("read failed") as conn:
            row = await conn.fetchrow(
                "SELECT count(*), count(*) FILTER (WHERE outcome = 'delivered') FROM delivery_attempts "
                "WHERE user_id = $1 AND started_us >= $2",
                user_id,
                _i64(since_us),
            )
        assert row is not None
        return AttemptCounts(int(row[0]), int(row[1]))
