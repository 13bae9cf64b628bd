"""SQLite subscriptions and fan-out (issue 10): the subscriptions table and one delivery row per
(event, destination), each with its own schedule, attempts and lease. The rules are shared with
the other backends (``storage/fanout.py``); the writer thread serialises everything, so the event
status derived after a change is always current."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from triggers_api.storage.base import (
    FANOUT_PARKED_US,
    WORKFLOW_DESTINATION,
    AttemptCounts,
    AttemptRecord,
    AuditRecord,
    DestinationDelivery,
    EventRecord,
    FanoutClaim,
    ReplaySelector,
    SubscriptionRecord,
    SubscriptionStatus,
)
from triggers_api.storage.fanout import (
    DELIVERY_COLUMNS,
    SUBSCRIPTION_COLUMNS,
    apply_delivery_attempt,
    derive_status,
    plan_fanout,
    subscription_from_row,
    subscription_row,
)
from triggers_api.storage.sqlite.audit import _insert_audit
from triggers_api.storage.sqlite.core import (
    _ATTEMPT_COLUMNS,
    EVENT_COLUMNS,
    SQLiteCore,
    _event,
    _insert_many,
)


class FanoutPart(SQLiteCore):
    """Subscriptions and per-destination deliveries."""

    async def insert_subscription(self, record: SubscriptionRecord, audit: AuditRecord | None) -> None:
        row = subscription_row(record)

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                f"INSERT INTO subscriptions ({SUBSCRIPTION_COLUMNS}) VALUES ({','.join('?' * 16)})", row
            )
            _insert_audit(conn, audit)

        await self._write(write)

    async def get_subscription(self, user_id: str, subscription_id: str) -> SubscriptionRecord | None:
        def read(conn: sqlite3.Connection) -> SubscriptionRecord | None:
            row = conn.execute(
                f"SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE subscription_id = ? AND user_id = ?",
                (subscription_id, user_id),
            ).fetchone()
            return subscription_from_row(row) if row else None

        return await self._read(read)

    async def list_subscriptions(self, user_id: str) -> list[SubscriptionRecord]:
        def read(conn: sqlite3.Connection) -> list[SubscriptionRecord]:
            rows = conn.execute(
                f"SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE user_id = ? "
                "ORDER BY created_us, subscription_id",
                (user_id,),
            )
            return [subscription_from_row(r) for r in rows]

        return await self._read(read)

    async def load_subscriptions(self, subscription_ids: Sequence[str]) -> list[SubscriptionRecord]:
        ids = orjson.dumps(list(subscription_ids)).decode()

        def read(conn: sqlite3.Connection) -> list[SubscriptionRecord]:
            rows = conn.execute(
                f"SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions "
                "WHERE subscription_id IN (SELECT value FROM json_each(?))",
                (ids,),
            )
            return [subscription_from_row(r) for r in rows]

        return await self._read(read)

    async def update_subscription(self, record: SubscriptionRecord, audit: AuditRecord | None) -> bool:
        row = subscription_row(record)

        def write(conn: sqlite3.Connection) -> bool:
            changed = conn.execute(
                "UPDATE subscriptions SET target_url = ?, event_types = ?, filter = ?, description = ?, "
                "metadata = ?, status = ?, disabled_reason = ?, secret = ?, previous_secret = ?, "
                "previous_secret_until_us = ?, updated_us = ?, failing_since_us = ? "
                "WHERE subscription_id = ? AND user_id = ?",
                (*row[2:12], row[13], row[15], row[0], row[1]),
            ).rowcount
            if not changed:
                return False
            if record.status not in (SubscriptionStatus.ACTIVE, SubscriptionStatus.PAUSED):
                _cancel_destination(conn, record.subscription_id)
            _insert_audit(conn, audit)
            return True

        return await self._write(write)

    async def delete_subscription(
        self, user_id: str, subscription_id: str, at_us: int, audit: AuditRecord | None
    ) -> bool:
        def write(conn: sqlite3.Connection) -> bool:
            gone = conn.execute(
                "DELETE FROM subscriptions WHERE subscription_id = ? AND user_id = ?",
                (subscription_id, user_id),
            ).rowcount
            if not gone:
                return False
            _cancel_destination(conn, subscription_id)
            _insert_audit(conn, audit)
            return True

        return await self._write(write)

    async def disable_subscription(
        self,
        subscription_id: str,
        reason: str,
        at_us: int,
        audit: Callable[[SubscriptionRecord], AuditRecord],
    ) -> bool:
        def write(conn: sqlite3.Connection) -> bool:
            row = conn.execute(
                f"SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE subscription_id = ? AND status != ?",
                (subscription_id, SubscriptionStatus.DISABLED.value),
            ).fetchone()
            if row is None:
                return False
            record = subscription_from_row(row)
            record.status, record.disabled_reason, record.updated_us = "disabled", reason, at_us
            conn.execute(
                "UPDATE subscriptions SET status = 'disabled', disabled_reason = ?, updated_us = ? "
                "WHERE subscription_id = ?",
                (reason, at_us, subscription_id),
            )
            _cancel_destination(conn, subscription_id)
            _insert_audit(conn, audit(record))
            return True

        return await self._write(write)

    async def failing_subscriptions(self, failing_since_before_us: int) -> list[str]:
        def read(conn: sqlite3.Connection) -> list[str]:
            rows = conn.execute(
                "SELECT subscription_id FROM subscriptions WHERE status = 'active' AND failing_since_us <= ?",
                (failing_since_before_us,),
            )
            return [r[0] for r in rows]

        return await self._read(read)

    async def claim_due_deliveries(
        self,
        lease_token: str,
        now_us: int,
        lease_until_us: int,
        limit: int,
        exclude: Sequence[str] = (),
    ) -> list[FanoutClaim]:
        excluded = orjson.dumps(list(exclude)).decode()

        def write(conn: sqlite3.Connection) -> list[FanoutClaim]:
            picked = conn.execute(_CLAIM_DUE, (now_us, limit, excluded)).fetchall()
            if not picked:
                return []
            conn.executemany(
                "UPDATE deliveries SET lease_token = ?, lease_until_us = ? WHERE event_id = ? AND destination = ?",
                [(lease_token, lease_until_us, r[0], r[1]) for r in picked],
            )
            ids = orjson.dumps(sorted({r[0] for r in picked})).decode()
            conn.execute(
                "UPDATE events SET status = 'queued' WHERE event_id IN (SELECT value FROM json_each(?)) "
                "AND status = 'received' AND acknowledged_us IS NULL",
                (ids,),
            )
            events = {
                r[0]: _event(r)
                for r in conn.execute(
                    f"SELECT {EVENT_COLUMNS} FROM events WHERE event_id IN (SELECT value FROM json_each(?))",
                    (ids,),
                )
            }
            return [
                FanoutClaim(events[r[0]], r[1], lease_token, lease_until_us, r[2], r[3])
                for r in picked
                if r[0] in events
            ]

        return await self._write(write)

    async def next_fanout_due(self, now_us: int, exclude: Sequence[str] = ()) -> int | None:
        excluded = orjson.dumps(list(exclude)).decode()

        def read(conn: sqlite3.Connection) -> int | None:
            row = conn.execute(_NEXT_DUE, (now_us, excluded)).fetchone()
            return int(row[0]) if row and row[0] is not None else None

        return await self._read(read)

    async def record_deliveries(self, records: Sequence[AttemptRecord]) -> list[bool]:
        if not records:
            return []

        def write(conn: sqlite3.Connection) -> list[bool]:
            results: list[bool] = []
            touched: set[str] = set()
            for r in records:
                a = r.attempt
                row = conn.execute(
                    "SELECT status, attempts, round_attempts, lease_token, lease_until_us, next_attempt_us, "
                    "delivered_us, last_attempt_us FROM deliveries WHERE event_id = ? AND destination = ? "
                    "AND user_id = ?",
                    (a.event_id, a.destination, a.user_id),
                ).fetchone()
                if row is None:
                    results.append(False)
                    continue
                state = dict(zip(_STATE_KEYS, row, strict=True))
                ended = a.started_us + a.duration_us
                applied = apply_delivery_attempt(
                    state, a.outcome, r.lease_token, r.next_attempt_us, ended, a.started_us
                )
                conn.execute(
                    "UPDATE deliveries SET status = ?, attempts = ?, round_attempts = ?, lease_token = ?, "
                    "lease_until_us = ?, next_attempt_us = ?, delivered_us = ?, last_attempt_us = ? "
                    "WHERE event_id = ? AND destination = ?",
                    (*(state[k] for k in _STATE_KEYS), a.event_id, a.destination),
                )
                conn.execute(
                    f"INSERT INTO delivery_attempts ({_ATTEMPT_COLUMNS}, destination) VALUES ({','.join('?' * 10)})",
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
                        a.destination,
                    ),
                )
                if state["attempts"] > 1:
                    conn.execute(
                        "UPDATE events SET retry_count = retry_count + 1, last_retry_us = ? WHERE event_id = ?",
                        (a.started_us, a.event_id),
                    )
                if a.destination != WORKFLOW_DESTINATION:
                    if a.outcome == "delivered":
                        conn.execute(
                            "UPDATE subscriptions SET last_success_us = ?, failing_since_us = NULL "
                            "WHERE subscription_id = ?",
                            (ended, a.destination),
                        )
                    else:
                        conn.execute(
                            "UPDATE subscriptions SET failing_since_us = COALESCE(failing_since_us, ?) "
                            "WHERE subscription_id = ?",
                            (a.started_us, a.destination),
                        )
                touched.add(a.event_id)
                results.append(applied)
                if applied and r.audit is not None:
                    _insert_audit(conn, r.audit)
            for event_id in touched:
                _rederive(conn, event_id)
            return results

        return await self._write(write)

    async def release_deliveries(self, claims: Sequence[tuple[str, str, str]], due_us: int) -> int:
        rows = [(due_us, event_id, destination, token) for event_id, destination, token in claims]
        if not rows:
            return 0

        def write(conn: sqlite3.Connection) -> int:
            before = conn.total_changes
            conn.executemany(
                "UPDATE deliveries SET lease_token = NULL, lease_until_us = NULL, next_attempt_us = ? "
                "WHERE event_id = ? AND destination = ? AND lease_token = ? AND status = 'pending'",
                rows,
            )
            return conn.total_changes - before

        return await self._write(write)

    async def list_deliveries(self, user_id: str, event_id: str) -> list[DestinationDelivery]:
        def read(conn: sqlite3.Connection) -> list[DestinationDelivery]:
            rows = conn.execute(
                f"SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE event_id = ? AND user_id = ? "
                "ORDER BY destination != 'workflow', destination",
                (event_id, user_id),
            )
            return [DestinationDelivery(*r) for r in rows]

        return await self._read(read)

    async def insert_directed_event(
        self, event: EventRecord, destinations: Sequence[str], audit: AuditRecord | None
    ) -> None:
        row = (
            event.event_id, event.user_id, event.event_type, event.payload, event.status, event.ts_us,
            event.expires_at, event.metadata, event.retry_count, event.last_retry_us, event.delivered_us,
            event.acknowledged_us,
        )  # fmt: skip

        def write(conn: sqlite3.Connection) -> None:
            _insert_many(conn, "events", EVENT_COLUMNS, 12, list(row))
            conn.executemany(
                "INSERT INTO deliveries (event_id, destination, user_id, status, next_attempt_us) "
                "VALUES (?, ?, ?, 'pending', ?)",
                [(event.event_id, d, event.user_id, event.ts_us) for d in destinations],
            )
            conn.execute(
                "UPDATE events SET next_attempt_us = ? WHERE event_id = ?", (FANOUT_PARKED_US, event.event_id)
            )
            _insert_audit(conn, audit)

        await self._write(write)

    async def count_destination_attempts(self, user_id: str, since_us: int) -> dict[str, AttemptCounts]:
        def read(conn: sqlite3.Connection) -> dict[str, AttemptCounts]:
            rows = conn.execute(
                "SELECT destination, COUNT(*), COALESCE(SUM(outcome = 'delivered'), 0) FROM delivery_attempts "
                "WHERE user_id = ? AND started_us >= ? GROUP BY destination",
                (user_id, since_us),
            )
            return {r[0]: AttemptCounts(int(r[1]), int(r[2])) for r in rows}

        return await self._read(read)


#: The destinations a claim may serve (?3: excluded destinations as a JSON array): those with
#: pending deliveries, found by skipping through ix_deliveries_dest_due one destination at a time
#: (a seek each, however many rows each has), that are the workflow or an active subscription.
_CANDIDATES = """
WITH RECURSIVE dests(dest) AS (
    SELECT min(destination) FROM deliveries INDEXED BY ix_deliveries_dest_due WHERE status = 'pending'
    UNION ALL
    SELECT (SELECT min(destination) FROM deliveries INDEXED BY ix_deliveries_dest_due
            WHERE status = 'pending' AND destination > dests.dest)
    FROM dests WHERE dests.dest IS NOT NULL
),
candidates(dest) AS (
    SELECT dests.dest FROM dests LEFT JOIN subscriptions s ON s.subscription_id = dests.dest
    WHERE dests.dest IS NOT NULL AND (dests.dest = 'workflow' OR s.status = 'active')
      AND dests.dest NOT IN (SELECT value FROM json_each(?3))
)
"""
#: Up to ?2 claimable deliveries due at ?1, earliest first: the earliest ?2 of each candidate
#: destination (a range of its index, past at most its own leased rows), merged.
_CLAIM_DUE = (
    _CANDIDATES
    + """
SELECT d.event_id, d.destination, d.attempts, d.round_attempts, d.next_attempt_us
FROM candidates c JOIN deliveries d ON d.rowid IN (
    SELECT x.rowid FROM deliveries x INDEXED BY ix_deliveries_dest_due
    WHERE x.destination = c.dest AND x.status = 'pending' AND x.next_attempt_us <= ?1
      AND (x.lease_until_us IS NULL OR x.lease_until_us <= ?1)
    ORDER BY x.next_attempt_us LIMIT ?2
)
ORDER BY d.next_attempt_us, d.event_id, d.destination LIMIT ?2
"""
)
#: The earliest due time of a claimable delivery (unleased at ?1), over the candidates (?2 is
#: the excluded destinations; renumbered so _CANDIDATES' ?3 is it).
_NEXT_DUE = (
    _CANDIDATES.replace("?3", "?2")
    + """
SELECT min((
    SELECT x.next_attempt_us FROM deliveries x INDEXED BY ix_deliveries_dest_due
    WHERE x.destination = c.dest AND x.status = 'pending'
      AND (x.lease_until_us IS NULL OR x.lease_until_us <= ?1)
    ORDER BY x.next_attempt_us LIMIT 1
)) FROM candidates c
"""
)


_STATE_KEYS = (
    "status",
    "attempts",
    "round_attempts",
    "lease_token",
    "lease_until_us",
    "next_attempt_us",
    "delivered_us",
    "last_attempt_us",
)


def _fan_out(conn: sqlite3.Connection, events: list[EventRecord], workflow: bool) -> None:
    """Inside the insert's transaction: one delivery per matching subscription (and the
    workflow's), and the fanned-out events parked off the single-destination path."""
    if not events:
        return
    users = orjson.dumps(sorted({e.user_id for e in events})).decode()
    subs = conn.execute(
        f"SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions INDEXED BY ix_subscriptions_user "
        "WHERE user_id IN (SELECT value FROM json_each(?)) AND status = 'active'",
        (users,),
    ).fetchall()
    if not subs:
        return
    plan = plan_fanout(events, [subscription_from_row(r) for r in subs], workflow)
    if not plan:
        return
    conn.executemany(
        "INSERT INTO deliveries (event_id, destination, user_id, status, next_attempt_us) "
        "VALUES (?, ?, ?, 'pending', ?)",
        plan,
    )
    conn.execute(
        "UPDATE events SET next_attempt_us = ? WHERE event_id IN (SELECT value FROM json_each(?))",
        (FANOUT_PARKED_US, orjson.dumps(sorted({p[0] for p in plan})).decode()),
    )


def _rederive(conn: sqlite3.Connection, event_id: str) -> None:
    """Set the fanned-out event's status (and delivered time) from its deliveries."""
    row = conn.execute(
        "SELECT status, acknowledged_us FROM events WHERE event_id = ?", (event_id,)
    ).fetchone()
    if row is None:
        return
    deliveries = conn.execute(
        "SELECT status, attempts, lease_token IS NOT NULL, delivered_us FROM deliveries WHERE event_id = ?",
        (event_id,),
    ).fetchall()
    status = derive_status(row[0], row[1] is not None, [(d[0], d[1], bool(d[2])) for d in deliveries])
    delivered = max((d[3] for d in deliveries if d[3] is not None), default=None)
    conn.execute(
        "UPDATE events SET status = ?, delivered_us = CASE WHEN ? = 'delivered' "
        "THEN COALESCE(delivered_us, ?) ELSE delivered_us END WHERE event_id = ?",
        (status, status, delivered, event_id),
    )


def _cancel_destination(conn: sqlite3.Connection, destination: str) -> None:
    ids = [
        r[0]
        for r in conn.execute(
            "UPDATE deliveries SET status = 'cancelled', lease_token = NULL, lease_until_us = NULL "
            "WHERE destination = ? AND status = 'pending' RETURNING event_id",
            (destination,),
        ).fetchall()
    ]
    for event_id in ids:
        _rederive(conn, event_id)


def _replay_fanout(
    conn: sqlite3.Connection, selector: ReplaySelector, at_us: int, limit: int
) -> list[tuple[str, int]]:
    """The fan-out half of replay: the selected events' dead-lettered deliveries (of one
    destination when the selector names one) back to pending; returns (event_id, ts_us)."""
    if limit <= 0:
        return []
    where = ["e.user_id = ?", "e.acknowledged_us IS NULL", "d.status = 'failed'"]
    params: list[Any] = [selector.user_id]
    if selector.event_ids is not None:
        where.append("e.event_id IN (SELECT value FROM json_each(?))")
        params.append(orjson.dumps(list(selector.event_ids)).decode())
    if selector.event_type is not None:
        where.append("e.event_type = ?")
        params.append(selector.event_type)
    if selector.from_us is not None:
        where.append("e.ts_us >= ?")
        params.append(selector.from_us)
    if selector.to_us is not None:
        where.append("e.ts_us <= ?")
        params.append(selector.to_us)
    if selector.destination is not None:
        where.append("d.destination = ?")
        params.append(selector.destination)
    events = conn.execute(
        f"SELECT DISTINCT e.event_id, e.ts_us FROM events e JOIN deliveries d ON d.event_id = e.event_id "
        f"WHERE {' AND '.join(where)} ORDER BY e.ts_us, e.event_id LIMIT ?",
        (*params, limit),
    ).fetchall()
    for event_id, _ in events:
        sql = (
            "UPDATE deliveries SET status = 'pending', next_attempt_us = ?, round_attempts = 0, "
            "lease_token = NULL, lease_until_us = NULL WHERE event_id = ? AND status = 'failed'"
        )
        args: tuple[Any, ...] = (at_us, event_id)
        if selector.destination is not None:
            sql += " AND destination = ?"
            args += (selector.destination,)
        conn.execute(sql, args)
        conn.execute("UPDATE events SET status = 'queued' WHERE event_id = ?", (event_id,))
    return [(r[0], r[1]) for r in events]
