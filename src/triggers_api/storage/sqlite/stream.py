"""SQLite stream positions and wake-ups.

Stream positions are SQLite rowids: the one writer takes the database lock per transaction and a
new row gets max(rowid) + 1, so rowid order is commit order. (VACUUM may renumber rowids of this
table, and deleting the newest row lets its rowid be reused, which retention does only once
*every* event has expired; either may make a stream connected across it miss events.)
Other processes on the same file are noticed by the callers' slow poll: there is nothing to hear."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from triggers_api.storage.base import (
    StreamItem,
)
from triggers_api.storage.sqlite.core import (
    EVENT_COLUMNS,
    SQLiteCore,
    _event,
)


class StreamPart(SQLiteCore):
    """Stream positions (rowids) and cross-process wake-ups (none)."""

    async def stream_head(self) -> int:
        def read(conn: sqlite3.Connection) -> int:
            return int(conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM events").fetchone()[0])

        return await self._read(read)

    async def stream_start(self) -> int:
        return await self.stream_head()  # a committed event is below the head at once

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

    def listen_for_events(self, callback: Callable[[frozenset[str] | None], None]) -> None:
        """Nothing to hear: other processes on this file are noticed by the callers' slow poll."""
