"""PostgreSQL events: the group statements of ingestion (idempotency is ``INSERT ... ON CONFLICT
DO UPDATE ... WHERE expired``) and of acknowledgement (a conditional ``UPDATE ... WHERE
acknowledged_us IS NULL``: of two processes acknowledging one event exactly one changes it and
audits it), look-up, the inbox listing and its pages rendered as JSON by PostgreSQL, retention,
and counts by time bucket."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import asyncpg

from triggers_api.errors import StorageError
from triggers_api.storage.base import (
    INBOX_STATUSES,
    AckResult,
    AuditRecord,
    EventPage,
    EventQuery,
    EventRecord,
    EventStatus,
    IdempotencyRecord,
    StoreOutcome,
)
from triggers_api.storage.postgres.audit import (
    AUDIT_COLUMNS,
    _audit_arrays,
)
from triggers_api.storage.postgres.core import (
    EVENT_COLUMNS,
    PostgresCore,
    _Ack,
    _event,
    _has_nul,
    _i64,
    _rowcount,
    _Write,
)
from triggers_api.storage.postgres.fanout import _plan_fanout, _store_fanout
from triggers_api.storage.postgres.stream import _POSITION

_PURGE_BATCH = 10_000
#: Retention deletes expired events in statements of at most this many (see delete_events).
_SWEEP_CHUNK = 200


# One statement stores a whole group: the idempotency records that are new (or replace an
# expired one), then only the events and audit rows of writes whose record was stored (or that
# had none). It returns the group indexes of the writes refused because a live record exists.
_GROUP_INSERT = f"""
WITH idem AS (
    INSERT INTO idempotency_keys AS k
        (user_id, idem_key, request_hash, response_status, response_body, created_us, expires_us)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::bytea[], $6::bigint[], $7::bigint[])
    ON CONFLICT (user_id, idem_key) DO UPDATE SET
        request_hash = EXCLUDED.request_hash, response_status = EXCLUDED.response_status,
        response_body = EXCLUDED.response_body, created_us = EXCLUDED.created_us,
        expires_us = EXCLUDED.expires_us
    WHERE k.expires_us <= EXCLUDED.created_us
    RETURNING k.user_id, k.idem_key
), refused AS (
    SELECT r.w FROM unnest($1::text[], $2::text[], $8::int[]) AS r(u, key, w)
    WHERE NOT EXISTS (SELECT 1 FROM idem WHERE idem.user_id = r.u AND idem.idem_key = r.key)
), ev AS (
    INSERT INTO events ({EVENT_COLUMNS}, position)
    SELECT e.event_id, e.user_id, e.event_type, e.payload, e.status, e.ts_us, e.expires_at, e.metadata,
           e.retry_count, e.last_retry_us, e.delivered_us, e.acknowledged_us, {_POSITION} + e.n
    FROM unnest($9::text[], $10::text[], $11::text[], $12::bytea[], $13::text[], $14::bigint[],
                $15::bigint[], $16::bytea[], $17::int[], $18::bigint[], $19::bigint[], $20::bigint[],
                $21::int[]) WITH ORDINALITY
        AS e(event_id, user_id, event_type, payload, status, ts_us, expires_at, metadata,
             retry_count, last_retry_us, delivered_us, acknowledged_us, w, n)
    WHERE NOT EXISTS (SELECT 1 FROM refused WHERE refused.w = e.w)
    RETURNING 1
), au AS (
    INSERT INTO audit_logs ({AUDIT_COLUMNS})
    SELECT a.log_id, a.user_id, a.action, a.ts_us, a.event_id, a.details, a.ip_address, a.request_id
    FROM unnest($22::text[], $23::text[], $24::text[], $25::bigint[], $26::text[], $27::bytea[],
                $28::text[], $29::text[], $30::int[])
        AS a(log_id, user_id, action, ts_us, event_id, details, ip_address, request_id, w)
    WHERE NOT EXISTS (SELECT 1 FROM refused WHERE refused.w = a.w)
    RETURNING 1
)
SELECT w FROM refused
"""


_ACKNOWLEDGE = f"""
WITH upd AS (
    UPDATE events SET status = '{EventStatus.DELIVERED.value}', acknowledged_us = $3,
        delivered_us = COALESCE(delivered_us, $3), payload = NULL
    WHERE user_id = $1 AND event_id = ANY($2::text[]) AND acknowledged_us IS NULL
    RETURNING event_id
), au AS (
    INSERT INTO audit_logs ({AUDIT_COLUMNS})
    SELECT a.log_id, a.user_id, a.action, a.ts_us, a.event_id, a.details, a.ip_address, a.request_id
    FROM unnest($4::text[], $5::text[], $6::text[], $7::bigint[], $8::text[], $9::bytea[],
                $10::text[], $11::text[], $12::text[])
        AS a(log_id, user_id, action, ts_us, event_id, details, ip_address, request_id, k)
    WHERE a.k IN (SELECT event_id FROM upd)
    RETURNING 1
), cancel AS (
    UPDATE deliveries SET status = 'cancelled', lease_token = NULL, lease_until_us = NULL
    WHERE event_id IN (SELECT event_id FROM upd) AND status = 'pending'
    RETURNING 1
)
SELECT event_id, true AS changed FROM upd
UNION ALL
SELECT event_id, false FROM events WHERE user_id = $1 AND event_id = ANY($2::text[])
"""


#: Every acknowledgement of a group in one statement (see ``_ack_group``): ``$1-$3`` the distinct
#: (event, user) pairs with their times, ``$4-$12`` the audit rows keyed by event (``k``). The
#: final SELECT reads the statement's snapshot, so it finds the rows the update just changed too.
_ACKNOWLEDGE_GROUP = f"""
WITH v AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[]) AS v(event_id, user_id, at)
), upd AS (
    UPDATE events AS e SET status = '{EventStatus.DELIVERED.value}', acknowledged_us = v.at,
        delivered_us = COALESCE(e.delivered_us, v.at), payload = NULL
    FROM v
    WHERE e.event_id = v.event_id AND e.user_id = v.user_id AND e.acknowledged_us IS NULL
    RETURNING e.event_id, e.user_id
), au AS (
    INSERT INTO audit_logs ({AUDIT_COLUMNS})
    SELECT a.log_id, a.user_id, a.action, a.ts_us, a.event_id, a.details, a.ip_address, a.request_id
    FROM unnest($4::text[], $5::text[], $6::text[], $7::bigint[], $8::text[], $9::bytea[],
                $10::text[], $11::text[], $12::text[])
        AS a(log_id, user_id, action, ts_us, event_id, details, ip_address, request_id, k)
    WHERE (a.k, a.user_id) IN (SELECT event_id, user_id FROM upd)
    RETURNING 1
), cancel AS (
    UPDATE deliveries SET status = 'cancelled', lease_token = NULL, lease_until_us = NULL
    WHERE event_id IN (SELECT event_id FROM upd) AND status = 'pending'
    RETURNING 1
)
SELECT event_id, user_id, true AS changed FROM upd
UNION ALL
SELECT e.event_id, e.user_id, false FROM events AS e
JOIN v ON e.event_id = v.event_id AND e.user_id = v.user_id
"""


def _ack_results(
    ids: Sequence[str],
    user_id: str,
    changed: set[tuple[str, str]],
    present: set[tuple[str, str]],
    reported: set[tuple[str, str]],
) -> list[AckResult]:
    """Each id's result; of several acknowledgements of one event the first reported wins."""
    results: list[AckResult] = []
    for event_id in ids:
        key = (event_id, user_id)
        if key in changed and key not in reported:
            reported.add(key)
            results.append(AckResult.ACKNOWLEDGED)
        elif key in present:
            results.append(AckResult.ALREADY_ACKNOWLEDGED)
        else:
            results.append(AckResult.NOT_FOUND)
    return results


class EventsPart(PostgresCore):
    """Events, idempotency, the inbox, acknowledgement, retention."""

    async def _store(self, group: list[_Write]) -> list[StoreOutcome]:
        idem = sorted(
            ((w.idempotency, i) for i, w in enumerate(group) if w.idempotency is not None),
            key=lambda pair: (pair[0].user_id, pair[0].key),  # one lock order for every process
        )
        ev = [(e, i) for i, w in enumerate(group) for e in w.events]
        au = [(a, i) for i, w in enumerate(group) for a in w.audit]
        args: list[Any] = [
            [r.user_id for r, _ in idem],
            [r.key for r, _ in idem],
            [r.request_hash for r, _ in idem],
            [r.response_status for r, _ in idem],
            [r.response_body for r, _ in idem],
            [r.created_us for r, _ in idem],
            [r.expires_us for r, _ in idem],
            [i for _, i in idem],
            [e.event_id for e, _ in ev],
            [e.user_id for e, _ in ev],
            [e.event_type for e, _ in ev],
            [e.payload for e, _ in ev],
            [e.status for e, _ in ev],
            [e.ts_us for e, _ in ev],
            [e.expires_at for e, _ in ev],
            [e.metadata for e, _ in ev],
            [e.retry_count for e, _ in ev],
            [e.last_retry_us for e, _ in ev],
            [e.delivered_us for e, _ in ev],
            [e.acknowledged_us for e, _ in ev],
            [i for _, i in ev],
            *_audit_arrays([a for a, _ in au]),
            [i for _, i in au],
        ]
        async with self._conn("insert failed") as conn:
            plan = await _plan_fanout(
                conn, [e for e, _ in ev], self.workflow_destination
            )  # issue 10: subscriptions
            if plan:
                async with conn.transaction():
                    refused = {r[0] for r in await conn.fetch(_GROUP_INSERT, *args)}
                    await _store_fanout(conn, plan)
            else:
                refused = {r[0] for r in await conn.fetch(_GROUP_INSERT, *args)}
            existing: dict[int, IdempotencyRecord] = {}
            if refused:
                # A new snapshot: the live records that refused us are visible (committed) now.
                wanted = [(r, i) for r, i in idem if i in refused]
                rows = await conn.fetch(
                    "SELECT k.user_id, k.idem_key, k.request_hash, k.response_status, k.response_body, "
                    "k.created_us, k.expires_us FROM idempotency_keys k "
                    "JOIN unnest($1::text[], $2::text[]) AS q(u, key) ON k.user_id = q.u AND k.idem_key = q.key",
                    [r.user_id for r, _ in wanted],
                    [r.key for r, _ in wanted],
                )
                found = {(row[0], row[1]): IdempotencyRecord(*row) for row in rows}
                for r, i in wanted:
                    record = found.get((r.user_id, r.key))
                    if record is None:  # purged in between: rare; the caller's retry will store
                        raise StorageError("idempotency record vanished; retry")
                    existing[i] = record
        return [
            StoreOutcome(stored=False, existing=existing[i])
            if i in existing
            else StoreOutcome(stored=True, events=list(w.events))
            for i, w in enumerate(group)
        ]

    async def insert_events(
        self,
        events: Sequence[EventRecord],
        audit: Sequence[AuditRecord],
        idempotency: IdempotencyRecord | None = None,
    ) -> StoreOutcome:
        if not self._opened or self._queue is None:
            raise StorageError("storage is closed")
        future: asyncio.Future[StoreOutcome] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Write(list(events), list(audit), idempotency, future))
        return await future

    async def get_event(self, user_id: str, event_id: str) -> EventRecord | None:
        if _has_nul(user_id, event_id):
            return None
        async with self._conn("read failed") as conn:
            row = await conn.fetchrow(
                f"SELECT {EVENT_COLUMNS} FROM events WHERE event_id = $1 AND user_id = $2", event_id, user_id
            )
        return _event(row) if row else None

    async def list_events(self, query: EventQuery) -> list[EventRecord]:
        if _has_nul(query.user_id, query.event_type, *query.statuses) or (
            query.after is not None and _has_nul(query.after[1])
        ):
            return []
        sql, params = event_listing_sql(query)
        async with self._conn("read failed") as conn:
            return [_event(r) for r in await conn.fetch(sql, *params)]

    async def list_events_json(self, query: EventQuery, *, with_ack: bool = False) -> EventPage | None:
        if _has_nul(query.user_id, query.event_type, *query.statuses) or (
            query.after is not None and _has_nul(query.after[1])
        ):
            return EventPage(b"[]", 0, False, None)
        probe = EventQuery(
            user_id=query.user_id,
            statuses=query.statuses,
            event_type=query.event_type,
            from_us=query.from_us,
            to_us=query.to_us,
            after=query.after,
            limit=query.limit + 1,
            newest_first=query.newest_first,
        )
        sql, params = event_listing_sql(probe)
        order = "DESC" if query.newest_first else "ASC"
        limit = int(query.limit)
        page_sql = (
            f"SELECT string_agg(obj, ',' ORDER BY rn) FILTER (WHERE rn <= {limit}), count(*), "
            f"max(ts_us) FILTER (WHERE rn = {limit}), max(event_id) FILTER (WHERE rn = {limit}) "
            f"FROM (SELECT {_EVENT_OBJECT_ACK if with_ack else _EVENT_OBJECT} AS obj, ts_us, event_id, "
            f"row_number() OVER (ORDER BY ts_us {order}, event_id {order}) AS rn FROM ({sql}) AS page) AS q"
        )
        try:
            async with self._conn("read failed") as conn:
                row = await conn.fetchrow(page_sql, *params)
        except StorageError as exc:
            if isinstance(exc.__cause__, asyncpg.PostgresError):  # a payload that is not UTF-8
                return None
            raise
        assert row is not None  # an aggregate answers one row
        body, count, last_ts, last_id = row
        if count == 0:
            return EventPage(b"[]", 0, False, None)
        has_more = count > limit
        return EventPage(
            b"[" + body.encode() + b"]", min(count, limit), has_more, (last_ts, last_id) if has_more else None
        )

    async def acknowledge(
        self, user_id: str, event_ids: Sequence[str], at_us: int, audit: dict[str, AuditRecord]
    ) -> list[AckResult]:
        """Queued for the ack writers, which store every acknowledgement waiting in one
        statement (one round trip, one WAL flush: the group commit of ingestion, for consumers)."""
        ids = list(event_ids)
        if not ids:
            return []
        if not self._opened or self._ack_queue is None:
            raise StorageError("storage is closed")
        future: asyncio.Future[list[AckResult]] = asyncio.get_running_loop().create_future()
        self._ack_queue.put_nowait(_Ack(user_id, ids, at_us, audit, future))
        return await future

    async def _ack_group(self, group: list[_Ack]) -> None:
        if len(group) == 1:
            a = group[0]
            try:
                a.future.set_result(await self._acknowledge_alone(a.user_id, a.ids, a.at_us, a.audit))
            except StorageError as exc:
                a.future.set_exception(exc)
            return
        # The distinct (event, user) pairs, each with the time and audit row of its first ack.
        first: dict[tuple[str, str], _Ack] = {}
        for a in group:
            for event_id in a.ids:
                if not _has_nul(event_id):
                    first.setdefault((event_id, a.user_id), a)
        keys = list(first)
        audited = [(e, r) for (e, _), a in first.items() if (r := a.audit.get(e)) is not None]
        records = [r for _, r in audited]
        try:
            async with self._conn("acknowledge failed") as conn:
                rows = await conn.fetch(
                    _ACKNOWLEDGE_GROUP,
                    [e for e, _ in keys],
                    [u for _, u in keys],
                    [first[k].at_us for k in keys],
                    *_audit_arrays(records),
                    [e for e, _ in audited],
                )
        except StorageError as exc:
            # A deadlock with another process's group, say: each alone (a lost connection fails
            # each on its own too, with the same error).
            if not isinstance(exc.__cause__, asyncpg.PostgresError):
                for a in group:
                    if not a.future.done():
                        a.future.set_exception(exc)
                return
            for a in group:
                await self._ack_group([a])
            return
        changed = {(r[0], r[1]) for r in rows if r[2]}
        present = {(r[0], r[1]) for r in rows}
        reported: set[tuple[str, str]] = set()
        for a in group:
            if not a.future.done():
                a.future.set_result(_ack_results(a.ids, a.user_id, changed, present, reported))

    async def _acknowledge_alone(
        self, user_id: str, ids: list[str], at_us: int, audit: dict[str, AuditRecord]
    ) -> list[AckResult]:
        searchable = [i for i in ids if not _has_nul(i)]
        keys = list(audit)
        records = [audit[k] for k in keys]
        async with self._conn("acknowledge failed") as conn:
            rows = await conn.fetch(_ACKNOWLEDGE, user_id, searchable, at_us, *_audit_arrays(records), keys)
        changed = {r[0] for r in rows if r[1]}
        present = {r[0] for r in rows}
        results: list[AckResult] = []
        reported: set[str] = set()
        for event_id in ids:
            if event_id in changed and event_id not in reported:
                reported.add(event_id)
                results.append(AckResult.ACKNOWLEDGED)
            elif event_id in present:
                results.append(AckResult.ALREADY_ACKNOWLEDGED)
            else:
                results.append(AckResult.NOT_FOUND)
        return results

    async def expired_events(self, now_s: int, limit: int) -> list[EventRecord]:
        async with self._conn("read failed") as conn:
            rows = await conn.fetch(
                f"SELECT {EVENT_COLUMNS} FROM events WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2",
                _i64(now_s),
                limit,
            )
        return [_event(r) for r in rows]

    async def delete_events(self, event_ids: Sequence[str], now_s: int) -> int:
        """In statements of at most ``_SWEEP_CHUNK`` events, each its own transaction: a smaller
        WAL flush and shorter row locks for the commits of ingestion sharing the server."""
        ids = [i for i in event_ids if not _has_nul(i)]
        total = 0
        for start in range(0, len(ids), _SWEEP_CHUNK):
            async with self._conn("delete failed") as conn:
                status = await conn.execute(
                    "DELETE FROM events WHERE event_id = ANY($1::text[]) AND expires_at <= $2",
                    ids[start : start + _SWEEP_CHUNK],
                    _i64(now_s),
                )
            total += _rowcount(status)
        return total

    async def purge_audit(self, before_us: int) -> int:
        async with self._conn("purge failed") as conn:
            status = await conn.execute(
                f"WITH old AS MATERIALIZED (SELECT log_id FROM audit_logs WHERE ts_us < $1 LIMIT {_PURGE_BATCH}) "
                "DELETE FROM audit_logs USING old WHERE audit_logs.log_id = old.log_id",
                _i64(before_us),
            )
        return _rowcount(status)

    async def purge_idempotency(self, now_us: int) -> int:
        """Every expired record goes, in bounded batches so no statement holds long locks."""
        total = 0
        while True:
            async with self._conn("purge failed") as conn:
                status = await conn.execute(
                    "WITH old AS MATERIALIZED (SELECT user_id, idem_key FROM idempotency_keys "
                    f"WHERE expires_us <= $1 LIMIT {_PURGE_BATCH}) DELETE FROM idempotency_keys k USING old "
                    "WHERE k.user_id = old.user_id AND k.idem_key = old.idem_key",
                    _i64(now_us),
                )
            deleted = _rowcount(status)
            total += deleted
            if deleted < _PURGE_BATCH:
                return total

    async def count_events_by_bucket(
        self, user_id: str, since_us: int, until_us: int, bucket_us: int
    ) -> list[int]:
        buckets = max(0, -(-(until_us - since_us) // bucket_us))
        counts = [0] * buckets
        if not buckets or _has_nul(user_id):
            return counts
        async with self._conn("read failed") as conn:
            rows = await conn.fetch(
                "SELECT (ts_us - $1) / $2 AS bucket, count(*) FROM events "
                "WHERE user_id = $3 AND ts_us >= $1 AND ts_us < $4 GROUP BY bucket",
                _i64(since_us),
                _i64(bucket_us),
                user_id,
                _i64(until_us),
            )
        for index, count in rows:
            if 0 <= index < buckets:
                counts[index] = int(count)
        return counts


def _iso_sql(column: str) -> str:
    """``events/service.py``'s ISO 8601 form (microseconds, ``Z``) in SQL."""
    return (
        f"to_char(to_timestamp({column} / 1000000) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS') "
        f"|| '.' || lpad(({column} % 1000000)::text, 6, '0') || 'Z'"
    )


def _nullable_iso_sql(column: str) -> str:
    return f"CASE WHEN {column} IS NULL THEN 'null' ELSE '\"' || {_iso_sql(column)} || '\"' END"


#: One event as the API's ``Event`` JSON (``events.service.render_event``), built by PostgreSQL;
#: payload and metadata spliced in as stored (``convert_from`` refuses bytes that are not UTF-8).
_EVENT_OBJECT = (
    "'{\"event_id\":' || to_json(event_id)::text || ',\"user_id\":' || to_json(user_id)::text || "
    "',\"event_type\":' || to_json(event_type)::text || "
    "',\"payload\":' || COALESCE(convert_from(payload, 'UTF8'), 'null') || "
    "',\"status\":' || to_json(status)::text || "
    f"',\"timestamp\":\"' || {_iso_sql('ts_us')} || '\"' || "
    "',\"ttl\":' || expires_at || ',\"retry_count\":' || retry_count || "
    f"',\"last_retry_at\":' || {_nullable_iso_sql('last_retry_us')} || "
    f"',\"delivered_at\":' || {_nullable_iso_sql('delivered_us')} || "
    "',\"metadata\":' || convert_from(metadata, 'UTF8')"
)


_EVENT_OBJECT_ACK = (
    _EVENT_OBJECT + f" || ',\"acknowledged_at\":' || {_nullable_iso_sql('acknowledged_us')} || '}}'"
)


_EVENT_OBJECT += " || '}'"


def event_listing_sql(query: EventQuery) -> tuple[str, list[Any]]:
    """Keyset pagination on (ts_us, event_id); shaped so the indexes serve it (see the EXPLAIN test)."""
    where = ["user_id = $1"]
    params: list[Any] = [query.user_id]

    def param(value: Any) -> str:
        params.append(value)
        return f"${len(params)}"

    statuses = tuple(query.statuses)
    if statuses and set(statuses) == {s.value for s in INBOX_STATUSES}:
        where.append("status IN ('received', 'queued', 'failed')")  # matches the partial index
    elif len(statuses) == 1:
        where.append(f"status = {param(statuses[0])}")
    elif statuses:
        where.append(f"status = ANY({param(list(statuses))}::text[])")
    if query.event_type is not None:
        where.append(f"event_type = {param(query.event_type)}")
    if query.from_us is not None:
        where.append(f"ts_us >= {param(_i64(query.from_us))}")
    if query.to_us is not None:
        where.append(f"ts_us <= {param(_i64(query.to_us))}")
    if query.after is not None:
        op = "<" if query.newest_first else ">"
        where.append(f"(ts_us, event_id) {op} ({param(_i64(query.after[0]))}, {param(query.after[1])})")
    order = "DESC" if query.newest_first else "ASC"
    sql = (
        f"SELECT {EVENT_COLUMNS} FROM events WHERE {' AND '.join(where)} "
        f"ORDER BY ts_us {order}, event_id {order} LIMIT {param(query.limit)}"
    )
    return sql, params
