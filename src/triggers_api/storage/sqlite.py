"""SQLite backend: the embedded default.

Writes go through one writer thread that *group-commits*: it takes every write waiting in its
queue, stores the plain event inserts of the whole group as one multi-row INSERT per table, runs
every other write inside its own SAVEPOINT (so one failure cannot spoil its neighbours; should the
merged insert fail, the group is re-run write by write), settles every acknowledgement of the
group with two statements (``_acknowledge_merged``: their audit rows join the multi-row audit
INSERT), commits them together with one fsync (``synchronous=FULL``), then wakes all their waiters with a single loop callback. That is what makes "committed before 201" affordable at thousands of requests per
second: the fsync and the thread hop are shared by everyone waiting. Reads run on a small pool
of threads with their own connections (WAL lets them read while the writer writes).
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import orjson

from triggers_api.errors import StorageError, StorageUnavailableError
from triggers_api.storage.attempts import STATE_COLUMNS, apply_attempts
from triggers_api.storage.base import (
    FANOUT_PARKED_US,
    INBOX_STATUSES,
    WORKFLOW_DESTINATION,
    AckResult,
    ApiKeyRecord,
    AttemptCounts,
    AttemptRecord,
    AuditQuery,
    AuditRecord,
    DeliveryAttempt,
    DeliveryClaim,
    DeliveryDepths,
    DestinationDelivery,
    EventPage,
    EventQuery,
    EventRecord,
    EventStatus,
    EventTypeActivity,
    EventTypeRecord,
    EventTypeVersion,
    FanoutClaim,
    IdempotencyRecord,
    PutOutcome,
    ReplaySelector,
    StoreOutcome,
    StreamItem,
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

T = TypeVar("T")

MIGRATIONS: list[str] = [
    # 1: events, keys, audit log, idempotency records
    """
    CREATE TABLE events (
        event_id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        event_type TEXT NOT NULL,
        payload BLOB,
        status TEXT NOT NULL,
        ts_us INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        metadata BLOB NOT NULL,
        retry_count INTEGER NOT NULL DEFAULT 0,
        last_retry_us INTEGER,
        delivered_us INTEGER,
        acknowledged_us INTEGER
    );
    CREATE INDEX ix_events_user_ts ON events (user_id, ts_us, event_id);
    CREATE INDEX ix_events_inbox ON events (user_id, ts_us, event_id)
        WHERE status IN ('received', 'queued', 'failed');
    CREATE INDEX ix_events_user_type_ts ON events (user_id, event_type, ts_us, event_id);
    CREATE INDEX ix_events_expires ON events (expires_at);

    CREATE TABLE api_keys (
        key_id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        key_hash TEXT NOT NULL UNIQUE,
        key_prefix TEXT NOT NULL,
        name TEXT NOT NULL,
        created_us INTEGER NOT NULL,
        last_used_us INTEGER,
        expires_us INTEGER,
        rate_limit INTEGER NOT NULL,
        is_active INTEGER NOT NULL,
        scopes TEXT NOT NULL,
        revoked_us INTEGER
    );
    CREATE INDEX ix_api_keys_user ON api_keys (user_id, created_us);

    CREATE TABLE audit_logs (
        log_id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        event_id TEXT,
        action TEXT NOT NULL,
        ts_us INTEGER NOT NULL,
        details BLOB NOT NULL,
        ip_address TEXT NOT NULL,
        request_id TEXT NOT NULL
    );
    CREATE INDEX ix_audit_user_ts ON audit_logs (user_id, ts_us, log_id);
    CREATE INDEX ix_audit_user_event ON audit_logs (user_id, event_id, ts_us);
    CREATE INDEX ix_audit_user_action ON audit_logs (user_id, action, ts_us);
    -- Audit records are append-only: the database refuses edits (retention deletes are allowed).
    CREATE TRIGGER audit_logs_no_update BEFORE UPDATE ON audit_logs
    BEGIN SELECT RAISE(ABORT, 'audit_logs is append-only'); END;

    CREATE TABLE idempotency_keys (
        user_id TEXT NOT NULL,
        idem_key TEXT NOT NULL,
        request_hash TEXT NOT NULL,
        response_status INTEGER NOT NULL,
        response_body BLOB NOT NULL,
        created_us INTEGER NOT NULL,
        expires_us INTEGER NOT NULL,
        PRIMARY KEY (user_id, idem_key)
    );
    CREATE INDEX ix_idempotency_expires ON idempotency_keys (expires_us);
    """,
    # 2: delivery (push worker): due times, leases, attempt counters, the attempt history.
    # A pending event (received/queued) is due at COALESCE(next_attempt_us, ts_us); the partial
    # expression index makes claiming the earliest due event a seek, not a scan. Attempts go
    # with their event when retention deletes it.
    """
    ALTER TABLE events ADD COLUMN next_attempt_us INTEGER;
    ALTER TABLE events ADD COLUMN lease_token TEXT;
    ALTER TABLE events ADD COLUMN lease_until_us INTEGER;
    ALTER TABLE events ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE events ADD COLUMN round_attempts INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX ix_events_due ON events (COALESCE(next_attempt_us, ts_us))
        WHERE status IN ('received', 'queued');
    CREATE INDEX ix_events_dead ON events (user_id, ts_us, event_id) WHERE status = 'failed';

    CREATE TABLE delivery_attempts (
        attempt_id TEXT PRIMARY KEY,
        event_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        started_us INTEGER NOT NULL,
        duration_us INTEGER NOT NULL,
        outcome TEXT NOT NULL,
        response_status INTEGER,
        error TEXT,
        response_body BLOB NOT NULL
    );
    CREATE INDEX ix_attempts_event ON delivery_attempts (event_id, started_us);
    CREATE INDEX ix_attempts_user ON delivery_attempts (user_id, started_us);
    CREATE TRIGGER events_delete_attempts AFTER DELETE ON events
    BEGIN DELETE FROM delivery_attempts WHERE event_id = old.event_id; END;
    """,
    # 3 (event types): the schema catalog, every version ever registered, and per-user stamps
    # that grow with each change (other processes poll them to drop stale validators).
    """
    CREATE TABLE event_types (
        user_id TEXT NOT NULL,
        event_type TEXT NOT NULL,
        version INTEGER NOT NULL,
        schema BLOB NOT NULL,
        mode TEXT NOT NULL,
        description TEXT,
        created_us INTEGER NOT NULL,
        updated_us INTEGER NOT NULL,
        PRIMARY KEY (user_id, event_type)
    );
    CREATE TABLE event_type_versions (
        user_id TEXT NOT NULL,
        event_type TEXT NOT NULL,
        version INTEGER NOT NULL,
        schema BLOB NOT NULL,
        mode TEXT NOT NULL,
        created_us INTEGER NOT NULL,
        PRIMARY KEY (user_id, event_type, version)
    );
    CREATE TABLE event_type_stamps (user_id TEXT PRIMARY KEY, stamp INTEGER NOT NULL);
    """,
    # 4 (issue 10): subscriptions and fan-out. One delivery row per (event, destination) for
    # events that matched a subscription, each with its own schedule, attempts and lease.
    """
    CREATE TABLE subscriptions (
        subscription_id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        target_url TEXT NOT NULL,
        event_types TEXT NOT NULL,
        filter BLOB,
        description TEXT NOT NULL,
        metadata BLOB NOT NULL,
        status TEXT NOT NULL,
        disabled_reason TEXT,
        secret TEXT NOT NULL,
        previous_secret TEXT,
        previous_secret_until_us INTEGER,
        created_us INTEGER NOT NULL,
        updated_us INTEGER NOT NULL,
        last_success_us INTEGER,
        failing_since_us INTEGER
    );
    CREATE INDEX ix_subscriptions_user ON subscriptions (user_id, created_us);
    CREATE TABLE deliveries (
        event_id TEXT NOT NULL,
        destination TEXT NOT NULL,
        user_id TEXT NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        round_attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_us INTEGER NOT NULL,
        lease_token TEXT,
        lease_until_us INTEGER,
        delivered_us INTEGER,
        last_attempt_us INTEGER,
        PRIMARY KEY (event_id, destination)
    );
    CREATE INDEX ix_deliveries_due ON deliveries (next_attempt_us) WHERE status = 'pending';
    CREATE INDEX ix_deliveries_destination ON deliveries (destination, status);
    ALTER TABLE delivery_attempts ADD COLUMN destination TEXT NOT NULL DEFAULT 'workflow';
    CREATE TRIGGER events_delete_deliveries AFTER DELETE ON events
    BEGIN DELETE FROM deliveries WHERE event_id = old.event_id; END;
    """,
]

EVENT_COLUMNS = (
    "event_id, user_id, event_type, payload, status, ts_us, expires_at, metadata, "
    "retry_count, last_retry_us, delivered_us, acknowledged_us"
)
KEY_COLUMNS = (
    "key_id, user_id, key_hash, key_prefix, name, created_us, rate_limit, scopes, is_active, "
    "expires_us, last_used_us, revoked_us"
)
AUDIT_COLUMNS = "log_id, user_id, action, ts_us, event_id, details, ip_address, request_id"


def _event(row: sqlite3.Row | tuple[Any, ...]) -> EventRecord:
    return EventRecord(*row)


def _key(row: tuple[Any, ...]) -> ApiKeyRecord:
    (key_id, user_id, key_hash, prefix, name, created, rate, scopes, active, expires, used, revoked) = row
    return ApiKeyRecord(
        key_id=key_id,
        user_id=user_id,
        key_hash=key_hash,
        key_prefix=prefix,
        name=name,
        created_us=created,
        rate_limit=rate,
        scopes=tuple(orjson.loads(scopes)),
        is_active=bool(active),
        expires_us=expires,
        last_used_us=used,
        revoked_us=revoked,
    )


def _audit(row: tuple[Any, ...]) -> AuditRecord:
    return AuditRecord(*row)


class _Rows:
    """Plain inserts (no idempotency check) that may share statements with the group's others.

    Values come flat (row after row), built on the event loop's thread where the records are
    read anyway, so the writer only concatenates lists while it holds the GIL.
    """

    __slots__ = ("audit", "events", "outcome")

    def __init__(self, events: list[Any], audit: list[Any], outcome: Any) -> None:
        self.events = events
        self.audit = audit
        self.outcome = outcome


class _Acks:
    """One :meth:`SQLiteStorage.acknowledge` call that may share statements with the group's
    other acknowledgements (see ``_acknowledge_merged``); its audit rows are ready-made tuples."""

    __slots__ = ("at_us", "audit", "ids", "user_id")

    def __init__(self, user_id: str, ids: list[str], at_us: int, audit: dict[str, tuple[Any, ...]]) -> None:
        self.user_id = user_id
        self.ids = ids
        self.at_us = at_us
        self.audit = audit


class _Write:
    __slots__ = ("acks", "error", "fn", "future", "result", "rows")

    def __init__(
        self,
        fn: Callable[[sqlite3.Connection], Any],
        future: asyncio.Future[Any],
        rows: _Rows | None = None,
        acks: _Acks | None = None,
    ) -> None:
        self.fn = fn
        self.future = future
        self.rows = rows
        self.acks = acks
        self.result: Any = None
        self.error: BaseException | None = None


#: Rows per multi-row INSERT at most (12 columns x 256 rows stays far below SQLite's 32,766
#: parameters); one statement per table for any group up to that size.
_MAX_ROWS = 256
_INSERT_SQL: dict[tuple[str, int], str] = {}


def _insert_many(conn: sqlite3.Connection, table: str, columns: str, width: int, values: list[Any]) -> None:
    """Insert rows given as flat ``values`` (``width`` per row) with as few statements as possible.

    Each ``execute`` is one ``sqlite3_step``, so one GIL round trip, where ``executemany`` takes
    the GIL back for every row (each time waiting for the busy event-loop thread). Statements of
    each size are built once and stay in the connection's statement cache.
    """
    rows = len(values) // width
    start = 0
    while start < rows:
        size = min(_MAX_ROWS, rows - start)
        sql = _INSERT_SQL.get((table, size))
        if sql is None:
            placeholder = "(" + ",".join("?" * width) + ")"
            sql = f"INSERT INTO {table} ({columns}) VALUES " + ",".join([placeholder] * size)
            _INSERT_SQL[(table, size)] = sql
        conn.execute(sql, values if size == rows else values[start * width : (start + size) * width])
        start += size


#: Primary result codes that are the machine's fault, not the request's: SQLITE_IOERR (10),
#: SQLITE_CANTOPEN (14), SQLITE_FULL (13). Extended codes (e.g. SQLITE_IOERR_WRITE) share the low byte.
_UNAVAILABLE_CODES = frozenset({10, 13, 14})


def _unavailable(exc: BaseException) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(code, int) and (code & 0xFF) in _UNAVAILABLE_CODES


def _storage_error(exc: sqlite3.Error, prefix: str = "") -> StorageError:
    """sqlite3 errors leave as StorageError; a full disk or an I/O error as StorageUnavailableError."""
    kind = StorageUnavailableError if _unavailable(exc) else StorageError
    return kind(f"{prefix}{exc}")


def _settle(writes: list[_Write]) -> None:
    """Runs on the event loop: resolves every waiter of one group commit at once."""
    for w in writes:
        if w.future.done():
            continue
        if w.error is not None:
            w.future.set_exception(w.error)
        else:
            w.future.set_result(w.result)


class SQLiteStorage:
    """Implements :class:`~triggers_api.storage.base.Storage` on one SQLite file."""

    def __init__(
        self,
        path: Path | str,
        *,
        commit_batch_max: int = 512,
        readers: int = 4,
        workflow_destination: bool = True,
    ) -> None:
        self.path = Path(path)
        self.workflow_destination = workflow_destination
        self.commit_batch_max = commit_batch_max
        self._readers = readers
        self._queue: queue.SimpleQueue[list[_Write] | None] = queue.SimpleQueue()
        # Writes made during one event-loop iteration, handed to the writer together (see _write).
        self._pending: list[_Write] = []
        self._pending_loop: asyncio.AbstractEventLoop | None = None
        self._turn = -1  # the writer-lock file, opened by the writer thread
        self._checkpointer: threading.Thread | None = None
        self._stopping = threading.Event()
        self._writer: threading.Thread | None = None
        self._read_pool: ThreadPoolExecutor | None = None
        self._local = threading.local()
        self._opened = False
        self._write_failure: str | None = None  # set by the writer on a full disk / I/O error

    # -- lifecycle ----------------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path,
            isolation_level=None,
            check_same_thread=False,
            timeout=30,
            cached_statements=512,  # _insert_many's statements of each group size
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")  # a commit is on disk before its waiters wake
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    def _migrate_sync(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_us INTEGER)"
            )
            done = {v for (v,) in conn.execute("SELECT version FROM schema_migrations")}
            for version, script in enumerate(MIGRATIONS, start=1):
                if version in done:
                    continue
                for statement in _split_sql(script):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations (version, applied_us) VALUES (?, strftime('%s','now')*1000000)",
                    (version,),
                )
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise StorageError(f"migration failed: {exc}") from exc
        finally:
            conn.close()

    async def migrate(self) -> None:
        await asyncio.to_thread(self._migrate_sync)

    async def open(self) -> None:
        if self._opened:
            return
        await self.migrate()
        self._read_pool = ThreadPoolExecutor(max_workers=self._readers, thread_name_prefix="sqlite-read")
        self._writer = threading.Thread(target=self._write_loop, name="sqlite-writer", daemon=True)
        self._writer.start()
        self._stopping.clear()
        self._checkpointer = threading.Thread(
            target=self._checkpoint_loop, name="sqlite-checkpoint", daemon=True
        )
        self._checkpointer.start()
        self._opened = True

    async def close(self) -> None:
        if not self._opened:
            return
        self._opened = False
        self._hand_over()
        self._queue.put(None)
        if self._writer is not None:
            await asyncio.to_thread(self._writer.join)
        self._stopping.set()
        if self._checkpointer is not None:
            await asyncio.to_thread(self._checkpointer.join)
        if self._read_pool is not None:
            self._read_pool.shutdown(wait=True)

    async def ping(self) -> None:
        def probe(conn: sqlite3.Connection) -> None:
            # An open connection keeps answering after its file is deleted: check the file too.
            if not self.path.exists():
                raise StorageError(f"database file {self.path} is missing")
            conn.execute("SELECT 1 FROM schema_migrations LIMIT 1").fetchall()

        await self._read(probe)

    def write_failure(self) -> str | None:
        return self._write_failure

    # -- the writer ---------------------------------------------------------------------------------
    def _checkpoint_loop(self) -> None:
        """Copy the WAL back into the database file, off the commit path.

        SQLite's automatic checkpoint runs inside the COMMIT that crosses 1,000 WAL pages: every
        few dozen group commits, one copied pages and fsynced the database file while all its
        waiters waited (the p95/p99 of ingestion). A PASSIVE checkpoint never blocks writers or
        readers; this one runs every 0.2 s in its own thread. Durability is unchanged: a commit
        is on disk once its WAL frames are fsynced, whenever they are copied back.
        """
        conn = self._connect()
        try:
            while not self._stopping.wait(0.2):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error:  # another process is checkpointing: next time
                    pass
        finally:
            conn.close()

    def _write_loop(self) -> None:
        conn = self._connect()
        conn.execute("PRAGMA wal_autocheckpoint=0")  # see _checkpoint_loop
        # Several API processes (``serve --workers N``) each have a writer. SQLite lets one write
        # at a time and makes the others retry with sleeps (1, 2, 5, 10 ms ...: long tails); a
        # blocking lock on a file beside the database hands the turn over at once instead.
        self._turn = os.open(f"{self.path}.writer-lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            while True:
                first = self._queue.get()
                if first is None:
                    return
                batch = list(first)
                stop = False
                while len(batch) < self.commit_batch_max:
                    try:
                        nxt = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is None:
                        stop = True
                        break
                    batch.extend(nxt)
                self._commit_group(conn, batch)
                if stop:
                    return
        finally:
            conn.close()
            os.close(self._turn)

    def _commit_group(self, conn: sqlite3.Connection, batch: list[_Write]) -> None:
        fcntl.flock(self._turn, fcntl.LOCK_EX)  # blocks without the GIL; released after COMMIT
        try:
            if not self._run_group(conn, batch, merge=True):
                self._run_group(conn, batch, merge=False)
        finally:
            fcntl.flock(self._turn, fcntl.LOCK_UN)
        self._wake(batch)

    def _run_group(self, conn: sqlite3.Connection, batch: list[_Write], *, merge: bool) -> bool:
        """One transaction for the whole group; False when the merged insert failed (then the
        transaction was rolled back and nothing settled: run it again with ``merge=False``)."""
        try:
            conn.execute("BEGIN IMMEDIATE")
            batch_rest = batch
            merged = [(w, w.rows) for w in batch if w.rows is not None] if merge else []
            acks = [(w, w.acks) for w in batch if w.acks is not None] if merge else []
            if merged or acks:
                try:
                    acked_audit = _acknowledge_merged(conn, acks) if acks else []
                    self._insert_merged(conn, merged, acked_audit)
                except (sqlite3.Error, ValueError, TypeError) as exc:  # TypeError: ids JSON cannot hold
                    if isinstance(exc, sqlite3.Error) and _unavailable(exc):
                        raise  # a full disk fails every write alike: fail the group
                    conn.execute("ROLLBACK")
                    return False
                batch_rest = [w for w in batch if w.rows is None and w.acks is None]
            for w in batch_rest:
                conn.execute("SAVEPOINT w")
                try:
                    w.result = w.fn(conn)
                    conn.execute("RELEASE w")
                except Exception as exc:  # one bad write must not spoil the group
                    if _unavailable(exc):  # the disk, not this write: fail the group (below)
                        raise
                    conn.execute("ROLLBACK TO w")
                    conn.execute("RELEASE w")
                    w.error = exc if not isinstance(exc, sqlite3.Error) else StorageError(str(exc))
            conn.execute("COMMIT")
            self._write_failure = None
        except sqlite3.Error as exc:
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
            # Nothing of the group is committed, so no waiter may hear success: a full disk or an
            # I/O error becomes StorageUnavailableError (503 + Retry-After), reported by health.
            error = _storage_error(exc, "commit failed: ")
            if isinstance(error, StorageUnavailableError):
                self._write_failure = str(exc)
            for w in batch:
                w.error = error
        return True

    @staticmethod
    def _wake(batch: list[_Write]) -> None:
        # Group the wake-ups per event loop: one thread-safe callback per loop, not per write.
        by_loop: dict[asyncio.AbstractEventLoop, list[_Write]] = {}
        for w in batch:
            by_loop.setdefault(w.future.get_loop(), []).append(w)
        for loop, writes in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle, writes)
            except RuntimeError:  # loop closed: nobody is waiting any more
                pass

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

    async def _write(
        self, fn: Callable[[sqlite3.Connection], T], rows: _Rows | None = None, acks: _Acks | None = None
    ) -> T:
        if not self._opened:
            raise StorageError("storage is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        if not self._pending or self._pending_loop is not loop:
            self._hand_over()
            self._pending_loop = loop
            loop.call_soon(self._hand_over)
        self._pending.append(_Write(fn, future, rows, acks))
        return await future

    def _hand_over(self) -> None:
        """Give the writer every write made since the last hand-over, as one queue item.

        Runs once per event-loop iteration that made writes (``call_soon`` from ``_write``): one
        thread wake-up for all of them, instead of one per request (each wake-up is a futex
        call, and a writer woken early fights the busy loop thread for the GIL).
        """
        if self._pending:
            pending, self._pending = self._pending, []
            self._queue.put(pending)

    # -- reads --------------------------------------------------------------------------------------
    def _reader_conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
        return conn

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if not self._opened or self._read_pool is None:
            raise StorageError("storage is closed")

        def run() -> T:
            try:
                return fn(self._reader_conn())
            except sqlite3.Error as exc:
                raise _storage_error(exc) from exc

        return await asyncio.get_running_loop().run_in_executor(self._read_pool, run)

    # -- events -------------------------------------------------------------------------------------
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

    # -- keys ---------------------------------------------------------------------------------------
    async def insert_key(self, key: ApiKeyRecord, audit: AuditRecord | None) -> None:
        row = (
            key.key_id,
            key.user_id,
            key.key_hash,
            key.key_prefix,
            key.name,
            key.created_us,
            key.rate_limit,
            orjson.dumps(list(key.scopes)).decode(),
            int(key.is_active),
            key.expires_us,
            key.last_used_us,
            key.revoked_us,
        )

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(f"INSERT INTO api_keys ({KEY_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", row)
            if audit is not None:
                conn.execute(
                    f"INSERT INTO audit_logs ({AUDIT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?)", _audit_row(audit)
                )

        await self._write(write)

    async def find_key_by_hash(self, key_hash: str) -> ApiKeyRecord | None:
        def read(conn: sqlite3.Connection) -> ApiKeyRecord | None:
            row = conn.execute(
                f"SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = ?", (key_hash,)
            ).fetchone()
            return _key(row) if row else None

        return await self._read(read)

    async def list_keys(self, user_id: str) -> list[ApiKeyRecord]:
        def read(conn: sqlite3.Connection) -> list[ApiKeyRecord]:
            rows = conn.execute(
                f"SELECT {KEY_COLUMNS} FROM api_keys WHERE user_id = ? ORDER BY created_us DESC, key_id DESC",
                (user_id,),
            )
            return [_key(r) for r in rows]

        return await self._read(read)

    async def revoke_key(
        self, key_id: str, user_id: str | None, at_us: int, audit: AuditRecord | None
    ) -> ApiKeyRecord | None:
        def write(conn: sqlite3.Connection) -> ApiKeyRecord | None:
            sql = f"SELECT {KEY_COLUMNS} FROM api_keys WHERE key_id = ?"
            params: tuple[Any, ...] = (key_id,)
            if user_id is not None:
                sql += " AND user_id = ?"
                params = (key_id, user_id)
            row = conn.execute(sql, params).fetchone()
            if row is None:
                return None
            key = _key(row)
            if key.is_active:
                conn.execute(
                    "UPDATE api_keys SET is_active = 0, revoked_us = ? WHERE key_id = ?", (at_us, key_id)
                )
                key.is_active, key.revoked_us = False, at_us
                if audit is not None:
                    audit.user_id = key.user_id
                    conn.execute(
                        f"INSERT INTO audit_logs ({AUDIT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?)",
                        _audit_row(audit),
                    )
            return key

        return await self._write(write)

    async def record_key_use(self, last_used: dict[str, int]) -> None:
        rows = [(ts, key_id, ts) for key_id, ts in last_used.items()]
        if not rows:
            return

        def write(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "UPDATE api_keys SET last_used_us = ? WHERE key_id = ? "
                "AND (last_used_us IS NULL OR last_used_us < ?)",
                rows,
            )

        await self._write(write)

    async def count_keys(self) -> int:
        def read(conn: sqlite3.Connection) -> int:
            return int(conn.execute("SELECT COUNT(*) FROM api_keys").fetchone()[0])

        return await self._read(read)

    # -- audit --------------------------------------------------------------------------------------
    async def list_audit(self, query: AuditQuery) -> list[AuditRecord]:
        where = ["user_id = ?"]
        params: list[Any] = [query.user_id]
        if query.event_id is not None:
            where.append("event_id = ?")
            params.append(query.event_id)
        if query.action is not None:
            where.append("action = ?")
            params.append(query.action)
        if query.before is not None:
            where.append("(ts_us < ? OR (ts_us = ? AND log_id < ?))")
            params += [query.before[0], query.before[0], query.before[1]]
        sql = (
            f"SELECT {AUDIT_COLUMNS} FROM audit_logs WHERE {' AND '.join(where)} "
            "ORDER BY ts_us DESC, log_id DESC LIMIT ?"
        )
        params.append(query.limit)

        def read(conn: sqlite3.Connection) -> list[AuditRecord]:
            return [_audit(r) for r in conn.execute(sql, params)]

        return await self._read(read)

    # -- retention ----------------------------------------------------------------------------------
    async def expired_events(self, now_s: int, limit: int) -> list[EventRecord]:
        def read(conn: sqlite3.Connection) -> list[EventRecord]:
            rows = conn.execute(
                f"SELECT {EVENT_COLUMNS} FROM events WHERE expires_at <= ? ORDER BY expires_at LIMIT ?",
                (now_s, limit),
            )
            return [_event(r) for r in rows]

        return await self._read(read)

    async def delete_events(self, event_ids: Sequence[str], now_s: int) -> int:
        rows = [(e, now_s) for e in event_ids]

        def write(conn: sqlite3.Connection) -> int:
            # rowcount, not total_changes: the trigger deleting delivery attempts must not count
            return conn.executemany(
                "DELETE FROM events WHERE event_id = ? AND expires_at <= ?", rows
            ).rowcount

        return await self._write(write)

    async def purge_audit(self, before_us: int) -> int:
        def write(conn: sqlite3.Connection) -> int:
            return conn.execute(
                "DELETE FROM audit_logs WHERE log_id IN (SELECT log_id FROM audit_logs WHERE ts_us < ? LIMIT 10000)",
                (before_us,),
            ).rowcount

        return await self._write(write)

    async def purge_idempotency(self, now_us: int) -> int:
        def write(conn: sqlite3.Connection) -> int:
            return conn.execute("DELETE FROM idempotency_keys WHERE expires_us <= ?", (now_us,)).rowcount

        return await self._write(write)

    # == delivery ====================================================================================
    # See the Protocol's docstrings for the semantics. Stream positions are SQLite rowids: the one
    # writer takes the database lock per transaction and a new row gets max(rowid) + 1, so rowid
    # order is commit order. (VACUUM may renumber rowids of this table, and deleting the newest
    # row lets its rowid be reused, which retention does only once *every* event has expired;
    # either may make a stream connected across it miss events.)
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

    async def stream_head(self) -> int:
        def read(conn: sqlite3.Connection) -> int:
            return int(conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM events").fetchone()[0])

        return await self._read(read)

    async def stream_position(self, user_id: str, event_id: str) -> int | None:
        def read(conn: sqlite3.Connection) -> int | None:
            row = conn.execute(
                "SELECT rowid FROM events WHERE event_id = ? AND user_id = ?", (event_id, user_id)
            ).fetchone()
            return int(row[0]) if row else None

        return await self._read(read)

    async def events_after(
        self, user_id: str, position: int, event_type: str | None, limit: int
    ) -> list[StreamItem]:
        # ``+user_id``: walk rowids from the position on (a tail) rather than all the user's rows.
        sql = f"SELECT rowid, {EVENT_COLUMNS} FROM events WHERE rowid > ? AND +user_id = ?"
        params: list[Any] = [position, user_id]
        if event_type is not None:
            sql += " AND +event_type = ?"
            params.append(event_type)
        sql += " ORDER BY rowid LIMIT ?"
        params.append(limit)

        def read(conn: sqlite3.Connection) -> list[StreamItem]:
            return [StreamItem(int(r[0]), _event(r[1:])) for r in conn.execute(sql, params)]

        return await self._read(read)

    # == cross-process wake-ups ======================================================================
    def listen_for_events(self, callback: Callable[[frozenset[str] | None], None]) -> None:
        """Nothing to hear: other processes on this file are noticed by the callers' slow poll."""

    # == subscriptions and fan-out (issue 10) ========================================================
    # The fan-out path is per row and plain: its rules live in storage/fanout.py; the writer
    # thread serialises everything, so the event status derived after a change is always current.
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
            picked = conn.execute(
                f"{_CLAIMABLE} AND d.next_attempt_us <= ? ORDER BY d.next_attempt_us LIMIT ?",
                (now_us, excluded, now_us, limit),
            ).fetchall()
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
            row = conn.execute(
                f"{_CLAIMABLE} ORDER BY d.next_attempt_us LIMIT 1", (now_us, excluded)
            ).fetchone()
            return int(row[4]) if row else None

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

    # == event types: the schema catalog ============================================================
    # See the EventTypeRegistry Protocol. Writes go through the one writer like every other write;
    # activity is a loose index scan on ix_events_user_type_ts (one seek per distinct type).
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


# -- event types ------------------------------------------------------------------------------------
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


def _audit_row(a: AuditRecord) -> tuple[Any, ...]:
    return (a.log_id, a.user_id, a.action, a.ts_us, a.event_id, a.details, a.ip_address, a.request_id)


_ATTEMPT_COLUMNS = (
    "attempt_id, event_id, user_id, started_us, duration_us, outcome, response_status, error, response_body"
)
#: record_attempts' new event states, all in one statement: a JSON array of the changed state rows
#: (``attempts.STATE_COLUMNS``).
_UPDATE_AFTER_ATTEMPTS = (
    "UPDATE events SET status = u.value ->> 2, lease_token = u.value ->> 4, "
    "lease_until_us = u.value ->> 5, attempts = u.value ->> 6, retry_count = (u.value ->> 6) - 1, "
    "last_retry_us = u.value ->> 7, delivered_us = u.value ->> 8, next_attempt_us = u.value ->> 9, "
    "round_attempts = u.value ->> 10 FROM json_each(?) AS u WHERE events.event_id = u.value ->> 0"
)


#: EVENT_COLUMNS as the items of a JSON array (BLOB columns as text: JSON cannot hold blobs).
_EVENT_JSON_COLUMNS = ", ".join(
    f"CAST({c} AS TEXT)" if c in ("payload", "metadata") else c
    for c in (column.strip() for column in EVENT_COLUMNS.split(","))
)


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


def _split_sql(script: str) -> list[str]:
    """Split a migration into statements; trigger bodies (BEGIN ... END;) stay whole."""
    statements: list[str] = []
    current: list[str] = []
    in_trigger = False
    for line in script.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("--"):
            continue
        current.append(line)
        upper = stripped.upper()
        if upper.startswith("CREATE TRIGGER"):
            in_trigger = True
        if in_trigger:
            if upper.endswith("END;"):
                statements.append("\n".join(current))
                current, in_trigger = [], False
        elif stripped.endswith(";"):
            statements.append("\n".join(current))
            current = []
    if current:
        statements.append("\n".join(current))
    return statements


#: The claimable deliveries (parameters: now, excluded destinations as a JSON array).
_CLAIMABLE = (
    "SELECT d.event_id, d.destination, d.attempts, d.round_attempts, d.next_attempt_us FROM deliveries d "
    "INDEXED BY ix_deliveries_due LEFT JOIN subscriptions s ON s.subscription_id = d.destination "
    "WHERE d.status = 'pending' AND (d.lease_until_us IS NULL OR d.lease_until_us <= ?) "
    "AND (d.destination = 'workflow' OR s.status = 'active') "
    "AND d.destination NOT IN (SELECT value FROM json_each(?))"
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


def _insert_audit(conn: sqlite3.Connection, audit: AuditRecord | None) -> None:
    if audit is not None:
        conn.execute(f"INSERT INTO audit_logs ({AUDIT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?)", _audit_row(audit))


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
