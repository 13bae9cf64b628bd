"""The shared core every part of the SQLite backend builds on: the connections, the two doors to
the database (:meth:`SQLiteCore._write`, queued for the one writer thread, and
:meth:`SQLiteCore._read`, run on the reader pool), the events table's columns, the multi-row
insert, and how sqlite3 errors leave the backend (:class:`StorageError`, or
:class:`StorageUnavailableError` for a full disk or an I/O error).

The writer thread that drains the queue is in :mod:`.backend`; the parts are mixins over
:class:`SQLiteCore`, assembled there into :class:`SQLiteStorage`.
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from triggers_api.errors import StorageError, StorageUnavailableError
from triggers_api.storage.base import (
    EventRecord,
)

T = TypeVar("T")


EVENT_COLUMNS = (
    "event_id, user_id, event_type, payload, status, ts_us, expires_at, metadata, "
    "retry_count, last_retry_us, delivered_us, acknowledged_us"
)


def _event(row: sqlite3.Row | tuple[Any, ...]) -> EventRecord:
    return EventRecord(*row)


#: EVENT_COLUMNS as the items of a JSON array (BLOB columns as text: JSON cannot hold blobs).
_EVENT_JSON_COLUMNS = ", ".join(
    f"CAST({c} AS TEXT)" if c in ("payload", "metadata") else c
    for c in (column.strip() for column in EVENT_COLUMNS.split(","))
)


_ATTEMPT_COLUMNS = (
    "attempt_id, event_id, user_id, started_us, duration_us, outcome, response_status, error, response_body"
)


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


class SQLiteCore:
    """State and doors shared by every part: the writer queue, the reader pool, the connections."""

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
