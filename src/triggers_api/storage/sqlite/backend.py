"""The SQLite backend assembled from its parts, its lifecycle, and the group-committing writer.

Writes go through one writer thread that *group-commits*: it takes every write waiting in its
queue, stores the plain event inserts of the whole group as one multi-row INSERT per table, runs
every other write inside its own SAVEPOINT (so one failure cannot spoil its neighbours; should the
merged insert fail, the group is re-run write by write), settles every acknowledgement of the
group with two statements (``events._acknowledge_merged``: their audit rows join the multi-row
audit INSERT), commits them together with one fsync (``synchronous=FULL``), then wakes all their
waiters with a single loop callback. That is what makes "committed before 201" affordable at
thousands of requests per second: the fsync and the thread hop are shared by everyone waiting.
Reads run on a small pool of threads with their own connections (WAL lets them read while the
writer writes).
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import queue
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor

from triggers_api.errors import StorageError, StorageUnavailableError
from triggers_api.storage.sqlite.audit import AuditPart
from triggers_api.storage.sqlite.core import (
    _storage_error,
    _unavailable,
    _Write,
)
from triggers_api.storage.sqlite.delivery import DeliveryPart
from triggers_api.storage.sqlite.event_types import EventTypesPart
from triggers_api.storage.sqlite.events import EventsPart, _acknowledge_merged
from triggers_api.storage.sqlite.fanout import FanoutPart
from triggers_api.storage.sqlite.keys import KeysPart
from triggers_api.storage.sqlite.migrations import MigrationsPart
from triggers_api.storage.sqlite.stream import StreamPart


def _settle(writes: list[_Write]) -> None:
    """Runs on the event loop: resolves every waiter of one group commit at once."""
    for w in writes:
        if w.future.done():
            continue
        if w.error is not None:
            w.future.set_exception(w.error)
        else:
            w.future.set_result(w.result)


class SQLiteStorage(
    EventsPart, KeysPart, AuditPart, EventTypesPart, StreamPart, DeliveryPart, FanoutPart, MigrationsPart
):
    """Implements :class:`~triggers_api.storage.base.Storage` on one SQLite file."""

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
