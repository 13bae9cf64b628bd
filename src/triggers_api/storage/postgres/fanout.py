"""PostgreSQL subscriptions and fan-out (issue 10). Rules in ``storage/fanout.py``, as on SQLite.
Every change to a fanned-out event's deliveries first locks the event rows (in id order: no
deadlocks), so the status derived from them in the same transaction sees every concurrent change
that committed before it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

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
from triggers_api.storage.postgres.audit import (
    _insert_audit,
)
from triggers_api.storage.postgres.core import (
    EVENT_COLUMNS,
    Conn,
    PostgresCore,
    _event,
    _has_nul,
    _i64,
    _rowcount,
)
from triggers_api.storage.postgres.stream import _POSITION


def _candidates(excluded: str) -> str:
    """The destinations a claim may serve (``excluded``: the parameter holding the excluded ones):
    those with pending deliveries, found by skipping through ix_deliveries_dest_due one
    destination at a time (a seek each, however many rows each has), that are the workflow or an
    active subscription."""
    return f"""
WITH RECURSIVE dests(dest) AS (
    (SELECT destination FROM deliveries WHERE status = 'pending' ORDER BY destination LIMIT 1)
    UNION ALL
    SELECT (SELECT d.destination FROM deliveries d WHERE d.status = 'pending' AND d.destination > dests.dest
            ORDER BY d.destination LIMIT 1)
    FROM dests WHERE dests.dest IS NOT NULL
),
candidates AS (
    SELECT dests.dest FROM dests LEFT JOIN subscriptions s ON s.subscription_id = dests.dest
    WHERE dests.dest IS NOT NULL AND (dests.dest = 'workflow' OR s.status = 'active')
      AND NOT (dests.dest = ANY({excluded}::text[]))
)"""


#: The earliest due time of a claimable delivery ($1 now, $2 excluded destinations).
_FANOUT_NEXT_DUE = (
    _candidates("$2")
    + """
SELECT min(x.next_attempt_us) FROM candidates c CROSS JOIN LATERAL (
    SELECT d.next_attempt_us FROM deliveries d
    WHERE d.destination = c.dest AND d.status = 'pending' AND (d.lease_until_us IS NULL OR d.lease_until_us <= $1)
    ORDER BY d.next_attempt_us LIMIT 1
) x
"""
)


#: Lease up to $4 deliveries due at $3 to token $1 until $2 ($5 excluded destinations): the
#: earliest $4 of each candidate destination (its own index range), merged, earliest first.
_FANOUT_CLAIM = (
    _candidates("$5")
    + """,
due AS MATERIALIZED (
    SELECT x.event_id, x.destination FROM candidates c CROSS JOIN LATERAL (
        SELECT d.event_id, d.destination, d.next_attempt_us FROM deliveries d
        WHERE d.destination = c.dest AND d.status = 'pending' AND d.next_attempt_us <= $3
          AND (d.lease_until_us IS NULL OR d.lease_until_us <= $3)
        ORDER BY d.next_attempt_us
        LIMIT $4
        FOR UPDATE OF d SKIP LOCKED
    ) x
    ORDER BY x.next_attempt_us, x.event_id, x.destination
    LIMIT $4
)
UPDATE deliveries AS d SET lease_token = $1, lease_until_us = $2
FROM due
WHERE d.event_id = due.event_id AND d.destination = due.destination
RETURNING d.event_id, d.destination, d.attempts, d.round_attempts, d.next_attempt_us
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


class FanoutPart(PostgresCore):
    """Subscriptions and per-destination deliveries."""

    async def insert_subscription(self, record: SubscriptionRecord, audit: AuditRecord | None) -> None:
        async with self._conn("insert subscription failed") as conn, conn.transaction():
            await conn.execute(
                f"INSERT INTO subscriptions ({SUBSCRIPTION_COLUMNS}) VALUES "
                f"({', '.join(f'${i}' for i in range(1, 17))})",
                *subscription_row(record),
            )
            if audit is not None:
                await _insert_audit(conn, [audit])

    async def get_subscription(self, user_id: str, subscription_id: str) -> SubscriptionRecord | None:
        if _has_nul(user_id, subscription_id):
            return None
        async with self._conn("read failed") as conn:
            row = await conn.fetchrow(
                f"SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE subscription_id = $1 AND user_id = $2",
                subscription_id,
                user_id,
            )
        return subscription_from_row(row) if row else None

    async def list_subscriptions(self, user_id: str) -> list[SubscriptionRecord]:
        if _has_nul(user_id):
            return []
        async with self._conn("read failed") as conn:
            rows = await conn.fetch(
                f"SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE user_id = $1 "
                "ORDER BY created_us, subscription_id",
                user_id,
            )
        return [subscription_from_row(r) for r in rows]

    async def load_subscriptions(self, subscription_ids: Sequence[str]) -> list[SubscriptionRecord]:
        ids = [i for i in subscription_ids if not _has_nul(i)]
        async with self._conn("read failed") as conn:
            rows = await conn.fetch(
                f"SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE subscription_id = ANY($1::text[])",
                ids,
            )
        return [subscription_from_row(r) for r in rows]

    async def update_subscription(self, record: SubscriptionRecord, audit: AuditRecord | None) -> bool:
        row = subscription_row(record)
        async with self._conn("update subscription failed") as conn, conn.transaction():
            status = await conn.execute(
                "UPDATE subscriptions SET target_url = $3, event_types = $4, filter = $5, description = $6, "
                "metadata = $7, status = $8, disabled_reason = $9, secret = $10, previous_secret = $11, "
                "previous_secret_until_us = $12, updated_us = $13, failing_since_us = $14 "
                "WHERE subscription_id = $1 AND user_id = $2",
                row[0],
                row[1],
                *row[2:12],
                row[13],
                row[15],
            )
            if _rowcount(status) == 0:
                return False
            if record.status not in (SubscriptionStatus.ACTIVE, SubscriptionStatus.PAUSED):
                await _cancel_destination(conn, record.subscription_id)
            if audit is not None:
                await _insert_audit(conn, [audit])
        return True

    async def delete_subscription(
        self, user_id: str, subscription_id: str, at_us: int, audit: AuditRecord | None
    ) -> bool:
        if _has_nul(user_id, subscription_id):
            return False
        async with self._conn("delete subscription failed") as conn, conn.transaction():
            status = await conn.execute(
                "DELETE FROM subscriptions WHERE subscription_id = $1 AND user_id = $2",
                subscription_id,
                user_id,
            )
            if _rowcount(status) == 0:
                return False
            await _cancel_destination(conn, subscription_id)
            if audit is not None:
                await _insert_audit(conn, [audit])
        return True

    async def disable_subscription(
        self,
        subscription_id: str,
        reason: str,
        at_us: int,
        audit: Callable[[SubscriptionRecord], AuditRecord],
    ) -> bool:
        async with self._conn("disable subscription failed") as conn, conn.transaction():
            row = await conn.fetchrow(
                f"SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE subscription_id = $1 "
                "AND status <> 'disabled' FOR UPDATE",
                subscription_id,
            )
            if row is None:
                return False
            record = subscription_from_row(row)
            record.status, record.disabled_reason, record.updated_us = "disabled", reason, at_us
            await conn.execute(
                "UPDATE subscriptions SET status = 'disabled', disabled_reason = $2, updated_us = $3 "
                "WHERE subscription_id = $1",
                subscription_id,
                reason,
                at_us,
            )
            await _cancel_destination(conn, subscription_id)
            await _insert_audit(conn, [audit(record)])
        return True

    async def failing_subscriptions(self, failing_since_before_us: int) -> list[str]:
        async with self._conn("read failed") as conn:
            rows = await conn.fetch(
                "SELECT subscription_id FROM subscriptions WHERE status = 'active' AND failing_since_us <= $1",
                _i64(failing_since_before_us),
            )
        return [r[0] for r in rows]

    async def claim_due_deliveries(
        self,
        lease_token: str,
        now_us: int,
        lease_until_us: int,
        limit: int,
        exclude: Sequence[str] = (),
    ) -> list[FanoutClaim]:
        if limit <= 0:
            return []
        excluded = [e for e in exclude if not _has_nul(e)]
        async with self._conn("claim failed") as conn:
            picked = await conn.fetch(
                _FANOUT_CLAIM, lease_token, _i64(lease_until_us), _i64(now_us), limit, excluded
            )
            if not picked:
                return []
            ids = sorted({r[0] for r in picked})
            await conn.execute(
                "WITH l AS (SELECT event_id FROM events WHERE event_id = ANY($1::text[]) AND status = 'received' "
                "AND acknowledged_us IS NULL ORDER BY event_id FOR UPDATE) "
                "UPDATE events SET status = 'queued' FROM l WHERE events.event_id = l.event_id "
                "AND events.status = 'received'",
                ids,
            )
            rows = await conn.fetch(
                f"SELECT {EVENT_COLUMNS} FROM events WHERE event_id = ANY($1::text[])", ids
            )
        events = {r[0]: _event(r) for r in rows}
        picked = sorted(picked, key=lambda r: (r[4], r[0], r[1]))
        return [
            FanoutClaim(events[r[0]], r[1], lease_token, lease_until_us, int(r[2]), int(r[3]))
            for r in picked
            if r[0] in events
        ]

    async def next_fanout_due(self, now_us: int, exclude: Sequence[str] = ()) -> int | None:
        excluded = [e for e in exclude if not _has_nul(e)]
        async with self._conn("read failed") as conn:
            due = await conn.fetchval(_FANOUT_NEXT_DUE, _i64(now_us), excluded)
        return int(due) if due is not None else None

    async def record_deliveries(self, records: Sequence[AttemptRecord]) -> list[bool]:
        if not records:
            return []
        ids = sorted(
            {r.attempt.event_id for r in records if not _has_nul(r.attempt.event_id, r.attempt.user_id)}
        )
        results: list[bool] = []
        async with self._conn("record delivery failed") as conn, conn.transaction():
            await conn.execute(
                "SELECT 1 FROM events WHERE event_id = ANY($1::text[]) ORDER BY event_id FOR UPDATE", ids
            )
            for r in records:
                a = r.attempt
                if a.event_id not in ids or _has_nul(a.destination):
                    results.append(False)
                    continue
                row = await conn.fetchrow(
                    "SELECT status, attempts, round_attempts, lease_token, lease_until_us, next_attempt_us, "
                    "delivered_us, last_attempt_us FROM deliveries WHERE event_id = $1 AND destination = $2 "
                    "AND user_id = $3 FOR UPDATE",
                    a.event_id,
                    a.destination,
                    a.user_id,
                )
                if row is None:
                    results.append(False)
                    continue
                state = dict(zip(_STATE_KEYS, row, strict=True))
                ended = a.started_us + a.duration_us
                applied = apply_delivery_attempt(
                    state, a.outcome, r.lease_token, r.next_attempt_us, ended, a.started_us
                )
                await conn.execute(
                    "UPDATE deliveries SET status = $3, attempts = $4, round_attempts = $5, lease_token = $6, "
                    "lease_until_us = $7, next_attempt_us = $8, delivered_us = $9, last_attempt_us = $10 "
                    "WHERE event_id = $1 AND destination = $2",
                    a.event_id,
                    a.destination,
                    *(state[k] for k in _STATE_KEYS),
                )
                await conn.execute(
                    "INSERT INTO delivery_attempts (attempt_id, event_id, user_id, started_us, duration_us, "
                    "outcome, response_status, error, response_body, destination) "
                    "VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)",
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
                )
                if state["attempts"] > 1:
                    await conn.execute(
                        "UPDATE events SET retry_count = retry_count + 1, last_retry_us = $2 WHERE event_id = $1",
                        a.event_id,
                        a.started_us,
                    )
                if a.destination != WORKFLOW_DESTINATION:
                    if a.outcome == "delivered":
                        await conn.execute(
                            "UPDATE subscriptions SET last_success_us = $2, failing_since_us = NULL "
                            "WHERE subscription_id = $1",
                            a.destination,
                            ended,
                        )
                    else:
                        await conn.execute(
                            "UPDATE subscriptions SET failing_since_us = COALESCE(failing_since_us, $2) "
                            "WHERE subscription_id = $1",
                            a.destination,
                            a.started_us,
                        )
                results.append(applied)
                if applied and r.audit is not None:
                    await _insert_audit(conn, [r.audit])
            await _rederive(conn, ids)
        return results

    async def release_deliveries(self, claims: Sequence[tuple[str, str, str]], due_us: int) -> int:
        rows = [c for c in claims if not _has_nul(*c)]
        if not rows:
            return 0
        async with self._conn("release failed") as conn:
            status = await conn.execute(
                "UPDATE deliveries SET lease_token = NULL, lease_until_us = NULL, next_attempt_us = $1 "
                "FROM unnest($2::text[], $3::text[], $4::text[]) AS c(event_id, destination, token) "
                "WHERE deliveries.event_id = c.event_id AND deliveries.destination = c.destination "
                "AND deliveries.lease_token = c.token AND deliveries.status = 'pending'",
                _i64(due_us),
                [c[0] for c in rows],
                [c[1] for c in rows],
                [c[2] for c in rows],
            )
        return _rowcount(status)

    async def list_deliveries(self, user_id: str, event_id: str) -> list[DestinationDelivery]:
        if _has_nul(user_id, event_id):
            return []
        async with self._conn("read failed") as conn:
            rows = await conn.fetch(
                f"SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE event_id = $1 AND user_id = $2 "
                "ORDER BY destination <> 'workflow', destination",
                event_id,
                user_id,
            )
        return [DestinationDelivery(*r) for r in rows]

    async def insert_directed_event(
        self, event: EventRecord, destinations: Sequence[str], audit: AuditRecord | None
    ) -> None:
        async with self._conn("insert failed") as conn, conn.transaction():
            await conn.execute(
                f"INSERT INTO events ({EVENT_COLUMNS}, position, next_attempt_us) "
                f"VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12, {_POSITION} + 1, $13)",
                event.event_id,
                event.user_id,
                event.event_type,
                event.payload,
                event.status,
                event.ts_us,
                event.expires_at,
                event.metadata,
                event.retry_count,
                event.last_retry_us,
                event.delivered_us,
                event.acknowledged_us,
                FANOUT_PARKED_US,
            )
            await conn.executemany(
                "INSERT INTO deliveries (event_id, destination, user_id, status, next_attempt_us) "
                "VALUES ($1, $2, $3, 'pending', $4)",
                [(event.event_id, d, event.user_id, event.ts_us) for d in destinations],
            )
            if audit is not None:
                await _insert_audit(conn, [audit])
        self._announce({event.user_id})

    async def count_destination_attempts(self, user_id: str, since_us: int) -> dict[str, AttemptCounts]:
        if _has_nul(user_id):
            return {}
        async with self._conn("read failed") as conn:
            rows = await conn.fetch(
                "SELECT destination, count(*), count(*) FILTER (WHERE outcome = 'delivered') "
                "FROM delivery_attempts WHERE user_id = $1 AND started_us >= $2 GROUP BY destination",
                user_id,
                _i64(since_us),
            )
        return {r[0]: AttemptCounts(int(r[1]), int(r[2])) for r in rows}


async def _plan_fanout(
    conn: Conn, events: list[EventRecord], workflow: bool
) -> list[tuple[str, str, str, int]]:
    """The deliveries to create for a group (read before it is stored: the subscriptions active
    when the group was written decide; none for users without any, the usual case)."""
    if not events:
        return []
    rows = await conn.fetch(
        f"SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE user_id = ANY($1::text[]) AND status = 'active'",
        sorted({e.user_id for e in events}),
    )
    if not rows:
        return []
    return plan_fanout(events, [subscription_from_row(r) for r in rows], workflow)


async def _store_fanout(conn: Conn, plan: list[tuple[str, str, str, int]]) -> None:
    """Inside the group's transaction: the deliveries of the events that were stored (not
    refused as an idempotent replay), and those events parked off the single-destination path."""
    await conn.execute(
        "INSERT INTO deliveries (event_id, destination, user_id, status, next_attempt_us) "
        "SELECT p.event_id, p.destination, p.user_id, 'pending', p.due "
        "FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) AS p(event_id, destination, user_id, due) "
        "WHERE EXISTS (SELECT 1 FROM events e WHERE e.event_id = p.event_id)",
        [p[0] for p in plan],
        [p[1] for p in plan],
        [p[2] for p in plan],
        [p[3] for p in plan],
    )
    await conn.execute(
        "UPDATE events SET next_attempt_us = $2 WHERE event_id = ANY($1::text[])",
        sorted({p[0] for p in plan}),
        FANOUT_PARKED_US,
    )


async def _rederive(conn: Conn, event_ids: Sequence[str]) -> None:
    """Set fanned-out events' status (and delivered time) from their deliveries; the caller
    holds the events' row locks."""
    if not event_ids:
        return
    events = await conn.fetch(
        "SELECT event_id, status, acknowledged_us FROM events WHERE event_id = ANY($1::text[])",
        list(event_ids),
    )
    deliveries = await conn.fetch(
        "SELECT event_id, status, attempts, lease_token IS NOT NULL, delivered_us FROM deliveries "
        "WHERE event_id = ANY($1::text[])",
        list(event_ids),
    )
    by_event: dict[str, list[Any]] = {}
    for d in deliveries:
        by_event.setdefault(d[0], []).append(d)
    ids, statuses, delivered = [], [], []
    for e in events:
        ds = by_event.get(e[0], [])
        ids.append(e[0])
        status = derive_status(e[1], e[2] is not None, [(d[1], d[2], bool(d[3])) for d in ds])
        statuses.append(status)
        delivered.append(max((d[4] for d in ds if d[4] is not None), default=None))
    await conn.execute(
        "UPDATE events SET status = u.status, delivered_us = CASE WHEN u.status = 'delivered' "
        "THEN COALESCE(events.delivered_us, u.delivered) ELSE events.delivered_us END "
        "FROM unnest($1::text[], $2::text[], $3::bigint[]) AS u(event_id, status, delivered) "
        'WHERE events.event_id = u.event_id COLLATE "C"',
        ids,
        statuses,
        delivered,
    )


async def _cancel_destination(conn: Conn, destination: str) -> None:
    rows = await conn.fetch(
        "SELECT DISTINCT event_id FROM deliveries WHERE destination = $1 AND status = 'pending'",
        destination,
    )
    ids = sorted(r[0] for r in rows)
    if not ids:
        return
    await conn.execute(
        "SELECT 1 FROM events WHERE event_id = ANY($1::text[]) ORDER BY event_id FOR UPDATE", ids
    )
    await conn.execute(
        "UPDATE deliveries SET status = 'cancelled', lease_token = NULL, lease_until_us = NULL "
        "WHERE destination = $1 AND status = 'pending'",
        destination,
    )
    await _rederive(conn, ids)


async def _replay_fanout(
    conn: Conn, selector: ReplaySelector, at_us: int, limit: int
) -> list[tuple[str, int]]:
    """The fan-out half of replay (see the SQLite twin)."""
    if limit <= 0 or _has_nul(selector.user_id, selector.destination, selector.event_type):
        return []
    where = ["e.user_id = $1", "e.acknowledged_us IS NULL", "d.status = 'failed'"]
    params: list[Any] = [selector.user_id]

    def param(value: Any) -> str:
        params.append(value)
        return f"${len(params)}"

    if selector.event_ids is not None:
        where.append(f"e.event_id = ANY({param([i for i in selector.event_ids if not _has_nul(i)])}::text[])")
    if selector.event_type is not None:
        where.append(f"e.event_type = {param(selector.event_type)}")
    if selector.from_us is not None:
        where.append(f"e.ts_us >= {param(_i64(selector.from_us))}")
    if selector.to_us is not None:
        where.append(f"e.ts_us <= {param(_i64(selector.to_us))}")
    if selector.destination is not None:
        where.append(f"d.destination = {param(selector.destination)}")
    rows = await conn.fetch(
        f"SELECT DISTINCT e.event_id, e.ts_us FROM events e JOIN deliveries d ON d.event_id = e.event_id "
        f"WHERE {' AND '.join(where)} ORDER BY e.ts_us, e.event_id LIMIT {param(limit)}",
        *params,
    )
    ids = sorted(r[0] for r in rows)
    if not ids:
        return []
    await conn.execute(
        "SELECT 1 FROM events WHERE event_id = ANY($1::text[]) ORDER BY event_id FOR UPDATE", ids
    )
    await conn.execute(
        "UPDATE deliveries SET status = 'pending', next_attempt_us = $2, round_attempts = 0, "
        "lease_token = NULL, lease_until_us = NULL WHERE event_id = ANY($1::text[]) AND status = 'failed' "
        "AND ($3::text IS NULL OR destination = $3)",
        ids,
        _i64(at_us),
        selector.destination,
    )
    await conn.execute("UPDATE events SET status = 'queued' WHERE event_id = ANY($1::text[])", ids)
    return [(r[0], int(r[1])) for r in rows]
