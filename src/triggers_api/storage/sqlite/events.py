"""SQLite events: ingestion (plain inserts that share the group's multi-row statements, or
with an idempotency record), look-up, the inbox listing and its pages rendered as JSON by SQLite,
acknowledgement (merged per group commit), retention, and counts by time bucket."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import orjson

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
from triggers_api.storage.sqlite.audit import AUDIT_COLUMNS, _audit_row
from triggers_api.storage.sqlite.core import (
    _EVENT_JSON_COLUMNS,
    EVENT_COLUMNS,
    SQLiteCore,
    _Acks,
    _event,
    _insert_many,
    _Rows,
    _Write,
)
from triggers_api.storage.sqlite.fanout import _fan_out


class EventsPart(SQLiteCore):
    """Events, idempotency, the inbox, acknowledgement, retention."""

    def _insert_merged(
        self,
        conn: sqlite3.Connection,
        merged: list[tuple[_Write, _Rows]],
        more_audit: list[Any] | None = None,
    ) -> None:
        """The group's plain inserts as two multi-row statements (events, audit records), the
        audit rows of the group's acknowledgements (``more_audit``) included.

        No savepoint of their own (two statements fewer, each a GIL round trip): should one fail
        (a UUIDv7 key makes that all but impossible) the caller rolls the transaction back and
        runs every write on its own.
        """
        if len(merged) == 1:
            events, audit = merged[0][1].events, merged[0][1].audit
        else:
            events, audit = [], []
            for _, rows in merged:
                events += rows.events
                audit += rows.audit
        if more_audit:
            audit = audit + more_audit  # a new list: the write's own rows stay as they were
        _insert_many(conn, "events", EVENT_COLUMNS, 12, events)
        _insert_many(conn, "audit_logs", AUDIT_COLUMNS, 8, audit)
        _fan_out(conn, [e for _, rows in merged for e in rows.outcome.events], self.workflow_destination)
        for w, rows in merged:
            w.result = rows.outcome

    async def insert_events(
        self,
        events: Sequence[EventRecord],
        audit: Sequence[AuditRecord],
        idempotency: IdempotencyRecord | None = None,
    ) -> StoreOutcome:
        event_rows: list[Any] = []
        for e in events:
            event_rows += (
                e.event_id,
                e.user_id,
                e.event_type,
                e.payload,
                e.status,
                e.ts_us,
                e.expires_at,
                e.metadata,
                e.retry_count,
                e.last_retry_us,
                e.delivered_us,
                e.acknowledged_us,
            )
        audit_rows: list[Any] = []
        for a in audit:
            audit_rows += _audit_row(a)

        def write(conn: sqlite3.Connection) -> StoreOutcome:
            if idempotency is not None:
                row = conn.execute(
                    "SELECT request_hash, response_status, response_body, created_us, expires_us "
                    "FROM idempotency_keys WHERE user_id = ? AND idem_key = ?",
                    (idempotency.user_id, idempotency.key),
                ).fetchone()
                if row is not None and row[4] > idempotency.created_us:
                    return StoreOutcome(
                        stored=False,
                        existing=IdempotencyRecord(idempotency.user_id, idempotency.key, *row),
                    )
                conn.execute(
                    "INSERT OR REPLACE INTO idempotency_keys VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        idempotency.user_id,
                        idempotency.key,
                        idempotency.request_hash,
                        idempotency.response_status,
                        idempotency.response_body,
                        idempotency.created_us,
                        idempotency.expires_us,
                    ),
                )
            _insert_many(conn, "events", EVENT_COLUMNS, 12, event_rows)
            _insert_many(conn, "audit_logs", AUDIT_COLUMNS, 8, audit_rows)
            _fan_out(conn, list(events), self.workflow_destination)
            return StoreOutcome(stored=True, events=list(events))

        if idempotency is None:  # may share multi-row statements with the rest of its group
            rows = _Rows(event_rows, audit_rows, StoreOutcome(stored=True, events=list(events)))
            return await self._write(write, rows)
        return await self._write(write)

    async def get_event(self, user_id: str, event_id: str) -> EventRecord | None:
        def read(conn: sqlite3.Connection) -> EventRecord | None:
            row = conn.execute(
                f"SELECT {EVENT_COLUMNS} FROM events WHERE event_id = ? AND user_id = ?", (event_id, user_id)
            ).fetchone()
            return _event(row) if row else None

        return await self._read(read)

    async def list_events(self, query: EventQuery) -> list[EventRecord]:
        sql, params = _event_listing_sql(query)
        page_sql = f"SELECT json_group_array(json_array({_EVENT_JSON_COLUMNS})) FROM ({sql})"

        def read(conn: sqlite3.Connection) -> list[EventRecord]:
            # The whole page as one JSON value: one sqlite3_step, so one GIL round trip, where
            # fetching rows takes the GIL back once per row and a reader thread waits for the
            # busy event loop each time (3x the pages/s with 50 concurrent readers).
            try:
                (text,) = conn.execute(page_sql, params).fetchone()
                records = _events_from_json(text)
            except (ValueError, sqlite3.OperationalError):  # a payload that is not UTF-8: by row
                return [_event(r) for r in conn.execute(sql, params)]
            records.sort(key=_listing_order, reverse=query.newest_first)  # aggregates keep no order
            return records

        return await self._read(read)

    async def list_events_json(self, query: EventQuery, *, with_ack: bool = False) -> EventPage | None:
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
        sql, params = _event_listing_sql(probe)
        limit, newest_first = int(query.limit), query.newest_first
        # Each row's listing key, "<ts_us as 20 digits><event_id>": in page order these sort.
        page_sql = (
            "SELECT CAST(group_concat(obj, char(30)) AS BLOB), group_concat(k, ','), count(*) "
            f"FROM (SELECT {_EVENT_OBJECT_ACK if with_ack else _EVENT_OBJECT} AS obj, "
            f"printf('%020d', ts_us) || event_id AS k FROM ({sql}))"
        )

        def read(conn: sqlite3.Connection) -> EventPage | None:
            # One sqlite3_step for the page, and no Python object per row: the events are
            # rendered by SQLite (payload and metadata spliced in as stored, byte for byte),
            # separated by a byte JSON text cannot hold unescaped (0x1E).
            try:
                body, keys_text, count = conn.execute(page_sql, params).fetchone()
            except sqlite3.OperationalError:  # e.g. a stored payload that is not UTF-8
                return None
            if count == 0:
                return EventPage(b"[]", 0, False, None)
            # Aggregates promise no order: check the rows were concatenated in page order
            # (a sort of already sorted strings is one pass); otherwise the caller renders.
            keys = keys_text.split(",")
            if len(keys) != count or keys != sorted(keys, reverse=newest_first) or body is None:
                return None
            body = bytes(body)
            last = None
            if count > limit:  # the probe row only says that more follow
                body = body[: body.rfind(b"\x1e")]
                last = (int(keys[limit - 1][:20]), keys[limit - 1][20:])
            return EventPage(
                b"[" + body.replace(b"\x1e", b",") + b"]", min(count, limit), last is not None, last
            )

        return await self._read(read)

    async def acknowledge(
        self, user_id: str, event_ids: Sequence[str], at_us: int, audit: dict[str, AuditRecord]
    ) -> list[AckResult]:
        ids = list(event_ids)

        def write(conn: sqlite3.Connection) -> list[AckResult]:
            results: list[AckResult] = []
            for event_id in ids:
                row = conn.execute(
                    "SELECT acknowledged_us FROM events WHERE event_id = ? AND user_id = ?",
                    (event_id, user_id),
                ).fetchone()
                if row is None:
                    results.append(AckResult.NOT_FOUND)
                    continue
                if row[0] is not None:
                    results.append(AckResult.ALREADY_ACKNOWLEDGED)
                    continue
                conn.execute(
                    "UPDATE events SET status = ?, acknowledged_us = ?, "
                    "delivered_us = COALESCE(delivered_us, ?), payload = NULL "
                    "WHERE event_id = ? AND user_id = ? AND acknowledged_us IS NULL",
                    (EventStatus.DELIVERED.value, at_us, at_us, event_id, user_id),
                )
                conn.execute(  # fan-out: acknowledgement cancels every pending delivery
                    "UPDATE deliveries SET status = 'cancelled', lease_token = NULL, lease_until_us = NULL "
                    "WHERE event_id = ? AND status = 'pending'",
                    (event_id,),
                )
                record = audit.get(event_id)
                if record is not None:
                    conn.execute(
                        f"INSERT INTO audit_logs ({AUDIT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?)",
                        _audit_row(record),
                    )
                results.append(AckResult.ACKNOWLEDGED)
            return results

        # Shares two statements with every other acknowledgement of its group (write runs alone
        # only if the merged statements fail).
        acks = _Acks(user_id, ids, at_us, {k: _audit_row(v) for k, v in audit.items()})
        return await self._write(write, acks=acks)

    async def expired_events(self, now_s: int, limit: int) -> list[EventRecord]:
        sql = f"SELECT {EVENT_COLUMNS} FROM events WHERE expires_at <= ? ORDER BY expires_at LIMIT ?"
        page_sql = f"SELECT json_group_array(json_array({_EVENT_JSON_COLUMNS})) FROM ({sql})"

        def read(conn: sqlite3.Connection) -> list[EventRecord]:
            # One JSON value, as list_events reads a page: one sqlite3_step (one GIL round trip)
            # for the whole batch, where fetching 1,000 rows took the GIL back 1,000 times from
            # the event loop that serves ingestion meanwhile.
            try:
                (text,) = conn.execute(page_sql, (now_s, limit)).fetchone()
                records = _events_from_json(text)
                records.sort(key=lambda r: r.expires_at)  # aggregates keep no order
                return records
            except (ValueError, sqlite3.OperationalError):  # a payload that is not UTF-8: by row
                return [_event(r) for r in conn.execute(sql, (now_s, limit))]

        return await self._read(read)

    async def delete_events(self, event_ids: Sequence[str], now_s: int) -> int:
        """Deleted in writes of at most ``_SWEEP_CHUNK`` events, one statement each: a write
        holds the one writer (and every ingest waiting for it) for a millisecond or two, not for
        a thousand deletes of eight index entries and two triggers each."""
        ids = list(event_ids)
        total = 0
        for start in range(0, len(ids), _SWEEP_CHUNK):
            chunk = ids[start : start + _SWEEP_CHUNK]

            def write(conn: sqlite3.Connection, chunk: list[str] = chunk) -> int:
                # rowcount, not total_changes: the triggers deleting attempts and deliveries must
                # not count
                try:
                    ids_json = orjson.dumps(chunk).decode()
                except TypeError:  # an id JSON cannot hold (a lone surrogate): row by row
                    return conn.executemany(
                        "DELETE FROM events WHERE event_id = ? AND expires_at <= ?",
                        [(e, now_s) for e in chunk],
                    ).rowcount
                return conn.execute(_DELETE_EXPIRED, (ids_json, now_s)).rowcount

            total += await self._write(write)
        return total

    async def purge_audit(self, before_us: int) -> int:
        """At most 10,000 rows per call, as before, in writes of ``_SWEEP_CHUNK`` rows."""
        total = 0
        while total < _PURGE_MAX:

            def write(conn: sqlite3.Connection, size: int = min(_SWEEP_CHUNK, _PURGE_MAX - total)) -> int:
                return conn.execute(
                    "DELETE FROM audit_logs WHERE rowid IN "
                    "(SELECT rowid FROM audit_logs WHERE ts_us < ? LIMIT ?)",
                    (before_us, size),
                ).rowcount

            deleted = await self._write(write)
            total += deleted
            if deleted < _SWEEP_CHUNK:
                break
        return total

    async def purge_idempotency(self, now_us: int) -> int:
        """Every expired record goes, in writes of ``_SWEEP_CHUNK`` records (bounded writer time)."""
        total = 0
        while True:

            def write(conn: sqlite3.Connection) -> int:
                return conn.execute(
                    "DELETE FROM idempotency_keys WHERE rowid IN "
                    "(SELECT rowid FROM idempotency_keys WHERE expires_us <= ? LIMIT ?)",
                    (now_us, _SWEEP_CHUNK),
                ).rowcount

            deleted = await self._write(write)
            total += deleted
            if deleted < _SWEEP_CHUNK:
                return total

    async def count_events_by_bucket(
        self, user_id: str, since_us: int, until_us: int, bucket_us: int
    ) -> list[int]:
        buckets = max(0, -(-(until_us - since_us) // bucket_us))

        def read(conn: sqlite3.Connection) -> list[int]:
            counts = [0] * buckets
            rows = conn.execute(
                "SELECT (ts_us - ?) / ?, COUNT(*) FROM events WHERE user_id = ? AND ts_us >= ? AND ts_us < ? "
                "GROUP BY 1",
                (since_us, bucket_us, user_id, since_us, until_us),
            )
            for index, count in rows:
                if 0 <= index < buckets:
                    counts[index] = int(count)
            return counts

        return await self._read(read)


#: Retention's writes delete at most this many rows each: one such write (a statement, its
#: triggers and the group's commit) holds the writer for about a millisecond, so ingestion
#: waiting behind a sweep waits that long, not for a whole sweep batch (bench/scale.py).
_SWEEP_CHUNK = 200
_PURGE_MAX = 10_000  # audit rows one purge_audit call removes at most
_DELETE_EXPIRED = "DELETE FROM events WHERE event_id IN (SELECT value FROM json_each(?)) AND expires_at <= ?"


#: Which of the group's events exist, whose they are, and whether already acknowledged: one
#: JSON value, so one ``sqlite3_step`` (one GIL round trip) for the whole group.
_ACK_STATE = (
    "SELECT json_group_array(json_array(event_id, user_id, acknowledged_us IS NOT NULL)) "
    "FROM events WHERE event_id IN (SELECT value FROM json_each(?))"
)


#: The group's acknowledgements in one statement: a JSON array of ``[event_id, at_us]``.
_ACK_UPDATE = (
    f"UPDATE events SET status = '{EventStatus.DELIVERED.value}', acknowledged_us = u.value ->> 1, "
    "delivered_us = COALESCE(delivered_us, u.value ->> 1), payload = NULL "
    "FROM json_each(?) AS u WHERE events.event_id = u.value ->> 0 AND events.acknowledged_us IS NULL"
)


#: An acknowledgement cancels every pending (event, destination) delivery of the event (issue 10).
_ACK_CANCEL_DELIVERIES = (
    "UPDATE deliveries SET status = 'cancelled', lease_token = NULL, lease_until_us = NULL "
    "WHERE status = 'pending' AND event_id IN (SELECT json_extract(value, '$[0]') FROM json_each(?))"
)


def _acknowledge_merged(conn: sqlite3.Connection, acks: list[tuple[_Write, _Acks]]) -> list[Any]:
    """Every acknowledgement of a group commit in two statements; returns their audit rows (flat)
    for the group's multi-row audit insert.

    Runs inside the writer's transaction, so what ``_ACK_STATE`` reads cannot change before the
    update: each result is exact (404 for an unknown or another user's event, 410 for one
    acknowledged before, or earlier in this group), and the first of several acknowledgements of
    one event wins, as if they had run one after the other. Raises ``sqlite3.Error`` untouched:
    the caller then runs every write of the group on its own.
    """
    wanted = list({event_id: None for _, a in acks for event_id in a.ids})
    (text,) = conn.execute(_ACK_STATE, (orjson.dumps(wanted),)).fetchone()
    state: dict[str, tuple[str, int]] = {row[0]: (row[1], row[2]) for row in orjson.loads(text)}
    done: set[str] = set()
    updates: list[tuple[str, int]] = []
    audit: list[Any] = []
    for w, a in acks:
        results: list[AckResult] = []
        for event_id in a.ids:
            found = state.get(event_id)
            if found is None or found[0] != a.user_id:
                results.append(AckResult.NOT_FOUND)
            elif found[1] or event_id in done:
                results.append(AckResult.ALREADY_ACKNOWLEDGED)
            else:
                done.add(event_id)
                updates.append((event_id, a.at_us))
                row = a.audit.get(event_id)
                if row is not None:
                    audit += row
                results.append(AckResult.ACKNOWLEDGED)
        w.result = results
    if updates:
        changed = conn.execute(_ACK_UPDATE, (orjson.dumps(updates),)).rowcount
        if changed != len(updates):  # cannot happen inside one transaction; never answer wrongly
            raise sqlite3.OperationalError(f"acknowledged {changed} of {len(updates)} events")
        conn.execute(_ACK_CANCEL_DELIVERIES, (orjson.dumps(updates),))  # fan-out: nothing left to push
    return audit


def _iso_sql(column: str) -> str:
    """``events/service.py``'s ISO 8601 form (microseconds, ``Z``) in SQL."""
    return (  # datetime() costs a third of strftime() with a format
        f"replace(datetime({column} / 1000000, 'unixepoch'), ' ', 'T') || '.' || "
        f"substr('00000' || ({column} % 1000000), -6) || 'Z'"
    )


def _nullable_iso_sql(column: str) -> str:
    return f"CASE WHEN {column} IS NULL THEN 'null' ELSE '\"' || {_iso_sql(column)} || '\"' END"


#: One event as the API's ``Event`` JSON (``events.service.render_event``), built by SQLite.
_EVENT_OBJECT = (
    # event ids (UUIDs) and statuses (an enum) never need escaping: quoted without json_quote
    '\'{"event_id":"\' || event_id || \'","user_id":\' || json_quote(user_id) || '
    "',\"event_type\":' || json_quote(event_type) || "
    "',\"payload\":' || COALESCE(CAST(payload AS TEXT), 'null') || "
    "',\"status\":\"' || status || '\"' || "
    f"',\"timestamp\":\"' || {_iso_sql('ts_us')} || '\"' || "
    "',\"ttl\":' || expires_at || ',\"retry_count\":' || retry_count || "
    f"',\"last_retry_at\":' || {_nullable_iso_sql('last_retry_us')} || "
    f"',\"delivered_at\":' || {_nullable_iso_sql('delivered_us')} || "
    "',\"metadata\":' || CAST(metadata AS TEXT)"
)


_EVENT_OBJECT_ACK = (
    _EVENT_OBJECT + f" || ',\"acknowledged_at\":' || {_nullable_iso_sql('acknowledged_us')} || '}}'"
)


_EVENT_OBJECT += " || '}'"


def _events_from_json(text: str) -> list[EventRecord]:
    records = []
    for row in orjson.loads(text):
        payload = row[3]
        row[3] = payload.encode() if payload is not None else None
        row[7] = row[7].encode()
        records.append(EventRecord(*row))
    return records


def _listing_order(record: EventRecord) -> tuple[int, str]:
    return record.ts_us, record.event_id


def _event_listing_sql(query: EventQuery) -> tuple[str, list[Any]]:
    """Keyset pagination on (ts_us, event_id): stable while rows are inserted or acknowledged."""
    where = ["user_id = ?"]
    params: list[Any] = [query.user_id]
    statuses = tuple(query.statuses)
    if statuses and set(statuses) == {s.value for s in INBOX_STATUSES}:
        where.append("status IN ('received', 'queued', 'failed')")  # matches the partial index
    elif statuses:
        where.append(f"status IN ({','.join('?' * len(statuses))})")
        params += list(statuses)
    if query.event_type is not None:
        where.append("event_type = ?")
        params.append(query.event_type)
    if query.from_us is not None:
        where.append("ts_us >= ?")
        params.append(query.from_us)
    if query.to_us is not None:
        where.append("ts_us <= ?")
        params.append(query.to_us)
    if query.after is not None:
        op = "<" if query.newest_first else ">"
        # A row value, not "ts_us > ? OR (ts_us = ? AND ...)": SQLite seeks the index to the
        # cursor only with the row value; the OR form walked every earlier row of the user
        # (a page 900,000 events deep took 50x the first page; bench/scale.py).
        where.append(f"(ts_us, event_id) {op} (?, ?)")
        params += [query.after[0], query.after[1]]
    order = "DESC" if query.newest_first else "ASC"
    sql = (
        f"SELECT {EVENT_COLUMNS} FROM events WHERE {' AND '.join(where)} "
        f"ORDER BY ts_us {order}, event_id {order} LIMIT ?"
    )
    params.append(query.limit)
    return sql, params
