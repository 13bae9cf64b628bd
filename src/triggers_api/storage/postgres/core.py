"""The shared core every part of the PostgreSQL backend builds on: the pool and its connections
(:meth:`PostgresCore._conn`: driver and network errors leave as :class:`StorageError`, an outage as
:class:`StorageUnavailableError`), the queues the group-commit writers drain, the events table's
columns, and the small helpers every statement uses (bigint clamps, the U+0000 guard).

The writers and the lifecycle are in :mod:`.backend`; the parts are mixins over
:class:`PostgresCore`, assembled there into :class:`PostgresStorage`.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import asyncpg
import structlog
from asyncpg.pool import PoolConnectionProxy

from triggers_api.errors import StorageError, StorageUnavailableError
from triggers_api.storage.base import (
    AckResult,
    AuditRecord,
    EventRecord,
    IdempotencyRecord,
    StoreOutcome,
)

log = structlog.get_logger(__name__)


#: A connection, whether borrowed from the pool or opened alone (for ``migrate``).
Conn: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"


_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


#: ``listen_for_events`` callbacks: the users with news, or None for "anyone's".
EventsListener = Callable[[frozenset[str] | None], None]


EVENT_COLUMNS = (
    "event_id, user_id, event_type, payload, status, ts_us, expires_at, metadata, "
    "retry_count, last_retry_us, delivered_us, acknowledged_us"
)


def _i64(value: int) -> int:
    """Clamp a bound to bigint: a bound beyond every stored value selects the same rows."""
    return _INT64_MIN if value < _INT64_MIN else _INT64_MAX if value > _INT64_MAX else value


def _has_nul(*values: str | None) -> bool:
    """PostgreSQL ``text`` cannot hold U+0000, so a filter containing it matches nothing."""
    return any(v is not None and "\x00" in v for v in values)


def _event(row: asyncpg.Record | tuple[Any, ...]) -> EventRecord:
    return EventRecord(*row)


@contextlib.contextmanager
def _translated(what: str) -> Any:
    """Driver and network errors leave this module as :class:`StorageError`, nothing else."""
    try:
        yield
    except StorageError:
        raise
    except (
        asyncpg.PostgresError,
        asyncpg.InterfaceError,
        asyncpg.InternalClientError,
        OSError,
        TimeoutError,
    ) as exc:
        kind = StorageUnavailableError if _unavailable(exc) else StorageError
        raise kind(f"{what}: {type(exc).__name__}: {exc}") from exc


#: SQLSTATE classes that are the server's state, not the request's: connection exceptions (08),
#: insufficient resources such as a full disk (53), operator intervention such as a shutdown or
#: a server still starting (57), system errors (58).
_UNAVAILABLE_CLASSES = ("08", "53", "57", "58")


def _unavailable(exc: BaseException) -> bool:
    """A lost, refused or timed-out connection or a server that cannot work now: 503, retry."""
    # InternalClientError: a connection left mid-operation by a lost server ("another operation
    # is in progress"); it is dropped from the pool (see _conn).
    if isinstance(exc, (OSError, TimeoutError, asyncpg.InterfaceError, asyncpg.InternalClientError)):
        return True
    sqlstate = getattr(exc, "sqlstate", None)
    return isinstance(sqlstate, str) and sqlstate[:2] in _UNAVAILABLE_CLASSES


@dataclass(slots=True)
class _Write:
    """One queued :meth:`PostgresStorage.insert_events` call waiting for its group."""

    events: Sequence[EventRecord]
    audit: Sequence[AuditRecord]
    idempotency: IdempotencyRecord | None
    future: asyncio.Future[StoreOutcome]
    size: int = field(init=False)

    def __post_init__(self) -> None:
        self.size = max(1, len(self.events), len(self.audit))


@dataclass(slots=True)
class _Ack:
    """One queued :meth:`PostgresStorage.acknowledge` call waiting for its group."""

    user_id: str
    ids: list[str]
    at_us: int
    audit: dict[str, AuditRecord]
    future: asyncio.Future[list[AckResult]]


def _rowcount(status: str) -> int:
    """asyncpg returns the command tag (``DELETE 3``); the count is its last word."""
    try:
        return int(status.rsplit(" ", 1)[-1])
    except ValueError:
        return 0


class PostgresCore:
    """State and doors shared by every part: the pool, the writer queues, the listeners."""

    def __init__(
        self,
        dsn: str,
        *,
        schema: str | None = None,
        pool_min: int = 2,
        pool_max: int = 10,
        commit_batch_max: int = 512,
        writers: int = 2,
        timeout: float = 30.0,
        workflow_destination: bool = True,
    ) -> None:
        self.workflow_destination = workflow_destination
        if schema is not None and not _SCHEMA_NAME.match(schema):
            raise ValueError(f"invalid schema name {schema!r}: lower-case letters, digits and _ only")
        self.dsn = dsn
        self.schema = schema
        self.pool_min = pool_min
        self.pool_max = max(pool_max, 2 * writers + 1, pool_min)  # ingest and ack writers + a reader
        self.commit_batch_max = commit_batch_max
        self.writers = writers
        self.timeout = timeout  # connection wait and statement limit: an outage answers, never hangs
        self._failure: str | None = None  # the last outage seen, until the database answers again
        self._pool: asyncpg.Pool[asyncpg.Record] | None = None
        self._queue: asyncio.Queue[_Write | None] | None = None
        self._writer_tasks: list[asyncio.Task[None]] = []
        self._ack_queue: asyncio.Queue[_Ack | None] | None = None
        self._ack_tasks: list[asyncio.Task[None]] = []
        self._opened = False
        # LISTEN/NOTIFY: one channel per schema (NOTIFY is database-wide).
        self.channel = f"triggers_events:{schema}" if schema else "triggers_events"
        self._listeners: list[EventsListener] = []
        self._listen_task: asyncio.Task[None] | None = None
        self._announce_users: set[str] = set()
        self._announce_wake: asyncio.Event | None = None
        self._announce_task: asyncio.Task[None] | None = None
        self._own_pids: set[int] = set()  # backends this process notified from: its own news

    def _server_settings(self) -> dict[str, str]:
        settings = {"application_name": "triggers-api", "jit": "off"}
        if self.schema is not None:
            settings["search_path"] = self.schema
        return settings

    async def _connect(self) -> asyncpg.Connection[asyncpg.Record]:
        with _translated("cannot connect to PostgreSQL"):
            return await asyncpg.connect(self.dsn, server_settings=self._server_settings(), timeout=10)

    @contextlib.asynccontextmanager
    async def _conn(self, what: str) -> AsyncIterator[Conn]:
        if self._pool is None:
            raise StorageError("storage is closed")
        try:
            with _translated(what):
                async with self._pool.acquire(timeout=self.timeout) as conn:
                    try:
                        yield conn
                    except BaseException as exc:
                        if _unavailable(exc):  # a broken connection goes, the pool opens a new one
                            conn.terminate()
                        raise
        except StorageUnavailableError as exc:
            self._failure = str(exc)
            raise
        self._failure = None

    def _announce(self, user_ids: set[str]) -> None:
        if user_ids and self._announce_wake is not None:
            self._announce_users |= user_ids
            self._announce_wake.set()
