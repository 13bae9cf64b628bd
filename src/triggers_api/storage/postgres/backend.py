"""The PostgreSQL backend assembled from its parts, its lifecycle, and the group-commit writers.

Concurrent :meth:`insert_events` calls queue up; a few writer tasks each take everything waiting
and store it with **one** statement (``events._GROUP_INSERT``: data-modifying CTEs over ``unnest``
arrays), which is one round trip and one WAL flush for the whole group. If the group fails (a
duplicate id, a deadlock with another process), each write is retried alone so one bad write
cannot spoil its neighbours. Acknowledgements have ack writers of their own, the same way
(``events._ACKNOWLEDGE_GROUP``).
"""

from __future__ import annotations

import asyncio

import asyncpg

from triggers_api.errors import StorageError
from triggers_api.storage.postgres.audit import AuditPart
from triggers_api.storage.postgres.core import (
    _translated,
    _Write,
    log,
)
from triggers_api.storage.postgres.delivery import DeliveryPart
from triggers_api.storage.postgres.event_types import EventTypesPart
from triggers_api.storage.postgres.events import EventsPart
from triggers_api.storage.postgres.fanout import FanoutPart
from triggers_api.storage.postgres.keys import KeysPart
from triggers_api.storage.postgres.migrations import MigrationsPart
from triggers_api.storage.postgres.stream import StreamPart

#: Largest number of events (and as many audit rows) one group statement carries.
_GROUP_EVENTS_MAX = 5000


class PostgresStorage(
    EventsPart, KeysPart, AuditPart, EventTypesPart, StreamPart, DeliveryPart, FanoutPart, MigrationsPart
):
    """Implements :class:`~triggers_api.storage.base.Storage` on PostgreSQL (asyncpg pool)."""

    async def open(self) -> None:
        if self._opened:
            return
        await self.migrate()
        with _translated("cannot connect to PostgreSQL"):
            self._pool = await asyncpg.create_pool(
                self.dsn,
                min_size=self.pool_min,
                max_size=self.pool_max,
                server_settings=self._server_settings(),
                timeout=min(10.0, self.timeout),
                command_timeout=self.timeout,
            )
        self._queue = asyncio.Queue()
        self._writer_tasks = [
            asyncio.create_task(self._write_loop(), name=f"pg-writer-{i}") for i in range(self.writers)
        ]
        self._ack_queue = asyncio.Queue()
        self._ack_tasks = [
            asyncio.create_task(self._ack_loop(), name=f"pg-ack-writer-{i}") for i in range(self.writers)
        ]
        self._announce_wake = asyncio.Event()
        self._announce_task = asyncio.create_task(self._announce_loop(), name="pg-notify")
        self._opened = True
        if self._listeners:
            self._listen_task = asyncio.create_task(self._listen_loop(), name="pg-listen")

    async def close(self) -> None:
        if not self._opened:
            return
        self._opened = False
        if self._queue is not None:
            for _ in self._writer_tasks:
                self._queue.put_nowait(None)  # after everything already queued
        await asyncio.gather(*self._writer_tasks, return_exceptions=True)
        self._writer_tasks = []
        if self._ack_queue is not None:
            for _ in self._ack_tasks:
                self._ack_queue.put_nowait(None)
        await asyncio.gather(*self._ack_tasks, return_exceptions=True)
        self._ack_tasks = []
        for task in (self._announce_task, self._listen_task):
            if task is not None:
                task.cancel()
        await asyncio.gather(
            *(t for t in (self._announce_task, self._listen_task) if t is not None), return_exceptions=True
        )
        self._announce_task = self._listen_task = None
        await self._announce_now()  # the last group's news, before the pool goes
        if self._pool is not None:
            pool, self._pool = self._pool, None
            try:
                await asyncio.wait_for(pool.close(), timeout=10)
            except (TimeoutError, asyncpg.PostgresError, OSError):
                pool.terminate()

    def write_failure(self) -> str | None:
        return self._failure

    async def ping(self) -> None:
        """Bounded as a whole (connecting included): a health check must answer, not hang."""
        try:
            await asyncio.wait_for(self._ping(), timeout=5)
        except TimeoutError as exc:
            raise StorageError("database unavailable: no answer within 5 s") from exc

    async def _ping(self) -> None:
        async with self._conn("database unavailable") as conn:
            await conn.fetchval("SELECT 1 FROM schema_migrations LIMIT 1")

    async def _write_loop(self) -> None:
        assert self._queue is not None
        queue = self._queue
        while True:
            first = await queue.get()
            if first is None:
                return
            group, size, keys, deferred, stop = [first], first.size, set(), [], False
            if first.idempotency is not None:
                keys.add((first.idempotency.user_id, first.idempotency.key))
            while len(group) < self.commit_batch_max and size < _GROUP_EVENTS_MAX:
                try:
                    nxt = queue.get_nowait()
                except asyncio.QueueEmpty:
                    break
                if nxt is None:
                    stop = True
                    break
                if nxt.idempotency is not None:
                    ident = (nxt.idempotency.user_id, nxt.idempotency.key)
                    if ident in keys:  # one statement may not touch one key twice: next group
                        deferred.append(nxt)
                        continue
                    keys.add(ident)
                group.append(nxt)
                size += nxt.size
            for later in deferred:
                queue.put_nowait(later)
            if stop:
                queue.put_nowait(None)
            try:
                await self._commit_group(group)
            except Exception as exc:  # never let the writer die: fail this group's waiters
                log.exception("group_commit_failed", backend="postgresql")
                for w in group:
                    if not w.future.done():
                        w.future.set_exception(StorageError(f"commit failed: {exc}"))

    async def _commit_group(self, group: list[_Write]) -> None:
        try:
            outcomes = await self._store(group)
        except StorageError as exc:
            # A statement error (a duplicate id, a deadlock with another process) is one write's
            # fault or a fluke: retry each alone so the others still succeed. A lost connection
            # is everyone's problem: fail the group at once.
            if len(group) == 1 or not isinstance(exc.__cause__, asyncpg.PostgresError):
                for w in group:
                    if not w.future.done():
                        w.future.set_exception(exc)
                return
            for w in group:
                await self._commit_group([w])
            return
        for w, outcome in zip(group, outcomes, strict=True):
            if not w.future.done():
                w.future.set_result(outcome)
        self._announce({e.user_id for o in outcomes if o.stored for e in o.events})

    async def _ack_loop(self) -> None:
        assert self._ack_queue is not None
        queue = self._ack_queue
        while True:
            first = await queue.get()
            if first is None:
                return
            group, size, stop = [first], len(first.ids), False
            while len(group) < self.commit_batch_max and size < _GROUP_EVENTS_MAX:
                try:
                    nxt = queue.get_nowait()
                except asyncio.QueueEmpty:
                    break
                if nxt is None:
                    stop = True
                    break
                group.append(nxt)
                size += len(nxt.ids)
            if stop:
                queue.put_nowait(None)
            try:
                await self._ack_group(group)
            except Exception as exc:  # never let the writer die: fail this group's waiters
                log.exception("ack_group_failed", backend="postgresql")
                for a in group:
                    if not a.future.done():
                        a.future.set_exception(StorageError(f"acknowledge failed: {exc}"))
