"""PostgreSQL stream positions and cross-process wake-ups (LISTEN/NOTIFY).

After a group commits, the users it stored events for are announced on the channel (one NOTIFY
per burst, sent in its own tiny transaction: a NOTIFY inside the insert transaction would
serialise every process's commits on PostgreSQL's notify lock). Every process LISTENs on one
dedicated connection and calls its listeners (idle workers, open streams). A lost notification
(a crash between commit and NOTIFY, a reconnect) only delays: listeners keep a slow poll, and a
reconnect calls them all once."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import asyncpg
import orjson

from triggers_api.errors import StorageError
from triggers_api.storage.base import (
    StreamItem,
)
from triggers_api.storage.postgres.core import (
    EVENT_COLUMNS,
    EventsListener,
    PostgresCore,
    _event,
    _has_nul,
    _i64,
    log,
)

#: Stream positions are ``xid * 2**20 + n``: the inserting transaction's id, then the row's rank
#: within it. A reader returns only rows whose transaction id is below its snapshot's ``xmin``
#: (every transaction below it has ended), so a transaction that commits later always has a
#: greater id than anything already returned: positions come out in an order no later commit
#: can slip under, with no gaps and no repeats (see :meth:`PostgresStorage.events_after`).
POSITION_SHIFT = 20


_POSITION = f"(pg_current_xact_id()::text::bigint << {POSITION_SHIFT})"


_SAFE_POSITION = f"(pg_snapshot_xmin(pg_current_snapshot())::text::bigint << {POSITION_SHIFT})"


_NOTIFY_MAX_BYTES = 7900  # PostgreSQL refuses NOTIFY payloads of 8000 bytes or more


_LISTEN_RETRY = 1.0  # seconds between attempts to (re)open the LISTEN connection


_LISTEN_PROBE = 30.0  # seconds between liveness probes of an idle LISTEN connection


class StreamPart(PostgresCore):
    """Stream positions (xid-ordered) and LISTEN/NOTIFY wake-ups."""

    async def stream_head(self) -> int:
        async with self._conn("read failed") as conn:
            head = await conn.fetchval(
                f"SELECT COALESCE(max(position), 0) FROM events WHERE position < {_SAFE_POSITION}"
            )
        return int(head)

    async def stream_start(self) -> int:
        return await self.stream_head()  # a committed event is below the head at once

    async def stream_position(self, user_id: str, event_id: str) -> int | None:
        if _has_nul(user_id, event_id):
            return None
        async with self._conn("read failed") as conn:
            position = await conn.fetchval(
                "SELECT position FROM events WHERE event_id = $1 AND user_id = $2", event_id, user_id
            )
        return int(position) if position is not None else None

    async def events_after(
        self, user_id: str, position: int, event_type: str | None, limit: int
    ) -> list[StreamItem]:
        """Only rows of transactions below the snapshot's xmin: all of those have ended, so no
        transaction still running can commit a row below what this returns."""
        if _has_nul(user_id, event_type):
            return []
        sql = (
            f"SELECT position, {EVENT_COLUMNS} FROM events WHERE user_id = $1 AND position > $2 "
            f"AND position < {_SAFE_POSITION}"
        )
        params: list[Any] = [user_id, _i64(position)]
        if event_type is not None:
            sql += " AND event_type = $3"
            params.append(event_type)
        sql += f" ORDER BY position LIMIT ${len(params) + 1}"
        params.append(limit)
        async with self._conn("read failed") as conn:
            rows = await conn.fetch(sql, *params)
        return [StreamItem(int(r[0]), _event(r[1:])) for r in rows]

    def listen_for_events(self, callback: EventsListener) -> None:
        self._listeners.append(callback)
        if self._opened and self._listen_task is None:
            self._listen_task = asyncio.create_task(self._listen_loop(), name="pg-listen")

    async def _announce_loop(self) -> None:
        assert self._announce_wake is not None
        while True:
            await self._announce_wake.wait()
            self._announce_wake.clear()
            await self._announce_now()

    async def _announce_now(self) -> None:
        users, self._announce_users = self._announce_users, set()
        if not users or self._pool is None:
            return
        payload = orjson.dumps(sorted(users)).decode()
        if len(payload.encode()) > _NOTIFY_MAX_BYTES:
            payload = "*"  # too many to name: everyone looks
        try:
            async with self._conn("notify failed") as conn:
                await conn.execute("SELECT pg_notify($1, $2)", self.channel, payload)
                if len(self._own_pids) > 1000:  # pids of long-closed connections
                    self._own_pids.clear()
                self._own_pids.add(conn.get_server_pid())
        except StorageError as exc:
            log.warning("notify_failed", backend="postgresql", error=str(exc))

    def _dispatch(self, users: frozenset[str] | None) -> None:
        for callback in list(self._listeners):
            try:
                callback(users)
            except Exception:
                log.exception("events_listener_failed", backend="postgresql")

    def _on_notification(self, conn: object, pid: int, channel: str, payload: object) -> None:
        if pid in self._own_pids:
            return  # this process's own commit: its hooks were told directly, at commit time
        users: frozenset[str] | None = None
        if isinstance(payload, str) and payload != "*":
            try:
                users = frozenset(str(u) for u in orjson.loads(payload))
            except (orjson.JSONDecodeError, TypeError):
                users = None
        self._dispatch(users)

    async def _listen_loop(self) -> None:
        """One LISTEN connection, re-opened whenever it is lost (probed every 30 s)."""
        deaf = False  # True after a lost connection: whatever happened meanwhile went unheard
        while True:
            try:
                conn = await asyncpg.connect(self.dsn, server_settings=self._server_settings(), timeout=10)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                log.warning("listen_connect_failed", backend="postgresql", error=type(exc).__name__)
                deaf = True
                await asyncio.sleep(_LISTEN_RETRY)
                continue
            lost = asyncio.Event()
            try:
                conn.add_termination_listener(lambda _c, lost=lost: lost.set())
                await conn.add_listener(self.channel, self._on_notification)
                if deaf:
                    self._dispatch(None)
                deaf = True
                while not lost.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(lost.wait(), _LISTEN_PROBE)
                    if not lost.is_set():
                        await conn.fetchval("SELECT 1", timeout=5)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                log.warning("listen_connection_lost", backend="postgresql", error=type(exc).__name__)
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(conn.close(), timeout=2)
            await asyncio.sleep(_LISTEN_RETRY)
