"""PostgreSQL backend: many API and worker processes, on many machines, sharing one database.

Same contract and semantics as :mod:`triggers_api.storage.sqlite`; what differs is *how*:

* **Group commit on ingest.** Concurrent :meth:`insert_events` calls queue up; a few writer
  tasks each take everything waiting and store it with **one** statement (data-modifying CTEs
  over ``unnest`` arrays), which is one round trip and one WAL flush for the whole group. If the
  group fails (a duplicate id, a deadlock with another process), each write is retried alone so
  one bad write cannot spoil its neighbours.
* **The database enforces correctness across processes**, never an in-process lock:
  idempotency is ``INSERT ... ON CONFLICT DO UPDATE ... WHERE expired`` on the (user, key)
  primary key; acknowledgement is a conditional ``UPDATE ... WHERE acknowledged_us IS NULL``, so
  of two processes acknowledging one event exactly one changes it (and audits it).
* **Payloads are ``bytea``**: JSON may hold ``\\u0000`` escapes that ``jsonb`` refuses, and the
  bytes must come back exactly as they were sent.
* **Text that is ordered or compared is ``COLLATE "C"``** so pagination order is byte order, as
  in SQLite, whatever the database's default collation.
* **Migrations** are numbered scripts recorded in ``schema_migrations``, applied under an
  advisory lock, so any number of processes may start (or run ``triggers-api migrate``) at once.
* **Delivery claims** are ``FOR UPDATE SKIP LOCKED`` with leases: workers in any number of
  processes take disjoint events without waiting for each other; a dead worker's leases expire.
* **Stream positions** follow commit order across processes without a global lock: they are
  built from the inserting transaction's id, and readers stop below their snapshot's ``xmin``.
* **Wake-ups** cross processes with LISTEN/NOTIFY (:meth:`PostgresStorage.listen_for_events`).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import asyncpg
import orjson
import structlog
from asyncpg.pool import PoolConnectionProxy

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

log = structlog.get_logger(__name__)

#: A connection, whether borrowed from the pool or opened alone (for ``migrate``).
Conn: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
#: Largest number of events (and as many audit rows) one group statement carries.
_GROUP_EVENTS_MAX = 5000
_PURGE_BATCH = 10_000
_NOTIFY_MAX_BYTES = 7900  # PostgreSQL refuses NOTIFY payloads of 8000 bytes or more
_LISTEN_RETRY = 1.0  # seconds between attempts to (re)open the LISTEN connection
_LISTEN_PROBE = 30.0  # seconds between liveness probes of an idle LISTEN connection

#: ``listen_for_events`` callbacks: the users with news, or None for "anyone's".
EventsListener = Callable[[frozenset[str] | None], None]

MIGRATIONS: list[str] = [
    # 1: events, keys, audit log, idempotency records
    """
    CREATE TABLE events (
        event_id text COLLATE "C" PRIMARY KEY,
        user_id text COLLATE "C" NOT NULL,
        event_type text COLLATE "C" NOT NULL,
        payload bytea,
        status text COLLATE "C" NOT NULL,
        ts_us bigint NOT NULL,
        expires_at bigint NOT NULL,
        metadata bytea NOT NULL,
        retry_count integer NOT NULL DEFAULT 0,
        last_retry_us bigint,
        delivered_us bigint,
        acknowledged_us bigint
    );
    -- every listing: (user, time); the inbox (still undelivered): partial; one status; one type
    CREATE INDEX ix_events_user_ts ON events (user_id, ts_us, event_id);
    CREATE INDEX ix_events_inbox ON events (user_id, ts_us, event_id)
        WHERE status IN ('received', 'queued', 'failed');
    CREATE INDEX ix_events_user_status_ts ON events (user_id, status, ts_us, event_id);
    CREATE INDEX ix_events_user_type_ts ON events (user_id, event_type, ts_us, event_id);
    CREATE INDEX ix_events_expires ON events (expires_at);

    CREATE TABLE api_keys (
        key_id text COLLATE "C" PRIMARY KEY,
        user_id text COLLATE "C" NOT NULL,
        key_hash text COLLATE "C" NOT NULL UNIQUE,
        key_prefix text NOT NULL,
        name bytea NOT NULL,  -- UTF-8; bytea because a name may hold U+0000, which text refuses
        created_us bigint NOT NULL,
        last_used_us bigint,
        expires_us bigint,
        rate_limit integer NOT NULL,
        is_active boolean NOT NULL,
        scopes text[] NOT NULL,
        revoked_us bigint
    );
    CREATE INDEX ix_api_keys_user ON api_keys (user_id, created_us, key_id);

    CREATE TABLE audit_logs (
        log_id text COLLATE "C" PRIMARY KEY,
        user_id text COLLATE "C" NOT NULL,
        event_id text COLLATE "C",
        action text COLLATE "C" NOT NULL,
        ts_us bigint NOT NULL,
        details bytea NOT NULL,
        ip_address text NOT NULL,
        request_id text NOT NULL
    );
    CREATE INDEX ix_audit_user_ts ON audit_logs (user_id, ts_us, log_id);
    CREATE INDEX ix_audit_user_event ON audit_logs (user_id, event_id, ts_us, log_id);
    CREATE INDEX ix_audit_user_action ON audit_logs (user_id, action, ts_us, log_id);
    CREATE INDEX ix_audit_ts ON audit_logs (ts_us);
    -- Audit records are append-only: the database refuses edits (retention deletes are allowed).
    CREATE FUNCTION audit_logs_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION 'audit_logs is append-only'; END $$;
    CREATE TRIGGER audit_logs_no_update BEFORE UPDATE ON audit_logs
        FOR EACH ROW EXECUTE FUNCTION audit_logs_append_only();

    CREATE TABLE idempotency_keys (
        user_id text COLLATE "C" NOT NULL,
        idem_key text COLLATE "C" NOT NULL,
        request_hash text NOT NULL,
        response_status integer NOT NULL,
        response_body bytea NOT NULL,
        created_us bigint NOT NULL,
        expires_us bigint NOT NULL,
        PRIMARY KEY (user_id, idem_key)
    );
    CREATE INDEX ix_idempotency_expires ON idempotency_keys (expires_us);
    """,
    # 2: delivery (push worker): due times, leases, attempt counters, the attempt history, and the
    # stream position. A pending event (received/queued) is due at COALESCE(next_attempt_us,
    # ts_us); the partial expression index makes claiming the earliest due event a seek. Attempts
    # go with their event (ON DELETE CASCADE). Rows from before this migration get negative
    # positions (older than anything a stream can ask for); new ones get xid-based positions.
    """
    ALTER TABLE events
        ADD COLUMN next_attempt_us bigint,
        ADD COLUMN lease_token text COLLATE "C",
        ADD COLUMN lease_until_us bigint,
        ADD COLUMN attempts integer NOT NULL DEFAULT 0,
        ADD COLUMN round_attempts integer NOT NULL DEFAULT 0,
        ADD COLUMN position bigint;
    UPDATE events SET position = -n.rn
        FROM (SELECT event_id, row_number() OVER (ORDER BY ts_us DESC, event_id DESC) AS rn FROM events) n
        WHERE events.event_id = n.event_id;
    ALTER TABLE events ALTER COLUMN position SET NOT NULL;
    CREATE UNIQUE INDEX ix_events_position ON events (position);
    CREATE INDEX ix_events_user_position ON events (user_id, position);
    CREATE INDEX ix_events_due ON events ((COALESCE(next_attempt_us, ts_us)))
        WHERE status IN ('received', 'queued');
    CREATE INDEX ix_events_dead ON events (user_id, ts_us, event_id) WHERE status = 'failed';

    CREATE TABLE delivery_attempts (
        attempt_id text COLLATE "C" PRIMARY KEY,
        event_id text COLLATE "C" NOT NULL REFERENCES events (event_id) ON DELETE CASCADE,
        user_id text COLLATE "C" NOT NULL,
        started_us bigint NOT NULL,
        duration_us bigint NOT NULL,
        outcome text COLLATE "C" NOT NULL,
        response_status integer,
        error text,
        response_body bytea NOT NULL
    );
    CREATE INDEX ix_attempts_event ON delivery_attempts (event_id, started_us, attempt_id);
    CREATE INDEX ix_attempts_user ON delivery_attempts (user_id, started_us);
    """,
    # 3 (event types): the schema catalog, every version ever registered, and per-user stamps
    # that grow with each change (other processes poll them to drop stale validators).
    """
    CREATE TABLE event_types (
        user_id text COLLATE "C" NOT NULL,
        event_type text COLLATE "C" NOT NULL,
        version integer NOT NULL,
        schema bytea NOT NULL,
        mode text NOT NULL,
        description bytea,  -- UTF-8; bytea because it may hold U+0000, which text refuses
        created_us bigint NOT NULL,
        updated_us bigint NOT NULL,
        PRIMARY KEY (user_id, event_type)
    );
    CREATE TABLE event_type_versions (
        user_id text COLLATE "C" NOT NULL,
        event_type text COLLATE "C" NOT NULL,
        version integer NOT NULL,
        schema bytea NOT NULL,
        mode text NOT NULL,
        created_us bigint NOT NULL,
        PRIMARY KEY (user_id, event_type, version)
    );
    CREATE TABLE event_type_stamps (user_id text COLLATE "C" PRIMARY KEY, stamp bigint NOT NULL);
    """,
    # 4 (issue 10): subscriptions and fan-out: one delivery row per (event, destination) for
    # events that matched a subscription, each with its own schedule, attempts and lease.
    """
    CREATE TABLE subscriptions (
        subscription_id text COLLATE "C" PRIMARY KEY,
        user_id text COLLATE "C" NOT NULL,
        target_url text NOT NULL,
        event_types text NOT NULL,
        filter bytea,
        description text NOT NULL,
        metadata bytea NOT NULL,
        status text COLLATE "C" NOT NULL,
        disabled_reason text,
        secret text NOT NULL,
        previous_secret text,
        previous_secret_until_us bigint,
        created_us bigint NOT NULL,
        updated_us bigint NOT NULL,
        last_success_us bigint,
        failing_since_us bigint
    );
    CREATE INDEX ix_subscriptions_user ON subscriptions (user_id, created_us);
    CREATE TABLE deliveries (
        event_id text COLLATE "C" NOT NULL REFERENCES events (event_id) ON DELETE CASCADE,
        destination text COLLATE "C" NOT NULL,
        user_id text COLLATE "C" NOT NULL,
        status text COLLATE "C" NOT NULL,
        attempts integer NOT NULL DEFAULT 0,
        round_attempts integer NOT NULL DEFAULT 0,
        next_attempt_us bigint NOT NULL,
        lease_token text COLLATE "C",
        lease_until_us bigint,
        delivered_us bigint,
        last_attempt_us bigint,
        PRIMARY KEY (event_id, destination)
    );
    CREATE INDEX ix_deliveries_due ON deliveries (next_attempt_us) WHERE status = 'pending';
    CREATE INDEX ix_deliveries_destination ON deliveries (destination, status);
    ALTER TABLE delivery_attempts ADD COLUMN destination text COLLATE "C" NOT NULL DEFAULT 'workflow';
    """,
]

#: Stream positions are ``xid * 2**20 + n``: the inserting transaction's id, then the row's rank
#: within it. A reader returns only rows whose transaction id is below its snapshot's ``xmin``
#: (every transaction below it has ended), so a transaction that commits later always has a
#: greater id than anything already returned: positions come out in an order no later commit
#: can slip under, with no gaps and no repeats (see :meth:`PostgresStorage.events_after`).
POSITION_SHIFT = 20
_POSITION = f"(pg_current_xact_id()::text::bigint << {POSITION_SHIFT})"
_SAFE_POSITION = f"(pg_snapshot_xmin(pg_current_snapshot())::text::bigint << {POSITION_SHIFT})"

EVENT_COLUMNS = (
    "event_id, user_id, event_type, payload, status, ts_us, expires_at, metadata, "
    "retry_count, last_retry_us, delivered_us, acknowledged_us"
)
KEY_COLUMNS = (
    "key_id, user_id, key_hash, key_prefix, name, created_us, rate_limit, scopes, is_active, "
    "expires_us, last_used_us, revoked_us"
)
AUDIT_COLUMNS = "log_id, user_id, action, ts_us, event_id, details, ip_address, request_id"
_AUDIT_UNNEST = "unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::bytea[], $7::text[], $8::text[])"

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


# Lease due, unleased pending events, earliest due first. SKIP LOCKED: rows another worker is
# claiming right now are passed over, not waited for; the lock is re-checked on the newest row
# version, so an event is never leased to two callers whose leases are both live. The pick is a
# MATERIALIZED CTE: as a join or IN (...) the planner may rescan a LIMIT ... FOR UPDATE subquery
# once per outer row, and each rescan, skipping rows this statement already changed, picks more.
_CLAIM = f"""
WITH due AS MATERIALIZED (
    SELECT event_id FROM events
    WHERE status IN ('received', 'queued') AND COALESCE(next_attempt_us, ts_us) <= $3
      AND (lease_until_us IS NULL OR lease_until_us <= $3)
    ORDER BY COALESCE(next_attempt_us, ts_us)
    LIMIT $4
    FOR UPDATE SKIP LOCKED
)
UPDATE events AS e SET status = 'queued', lease_token = $1, lease_until_us = $2
FROM due
WHERE e.event_id = due.event_id
RETURNING {", ".join("e." + c for c in EVENT_COLUMNS.split(", "))}, e.attempts, e.round_attempts,
          COALESCE(e.next_attempt_us, e.ts_us)
"""


def _i64(value: int) -> int:
    """Clamp a bound to bigint: a bound beyond every stored value selects the same rows."""
    return _INT64_MIN if value < _INT64_MIN else _INT64_MAX if value > _INT64_MAX else value


def _has_nul(*values: str | None) -> bool:
    """PostgreSQL ``text`` cannot hold U+0000, so a filter containing it matches nothing."""
    return any(v is not None and "\x00" in v for v in values)


def _event(row: asyncpg.Record | tuple[Any, ...]) -> EventRecord:
    return EventRecord(*row)


def _key(row: asyncpg.Record) -> ApiKeyRecord:
    (key_id, user_id, key_hash, prefix, name, created, rate, scopes, active, expires, used, revoked) = row
    return ApiKeyRecord(
        key_id=key_id,
        user_id=user_id,
        key_hash=key_hash,
        key_prefix=prefix,
        name=bytes(name).decode("utf-8", "surrogatepass"),
        created_us=created,
        rate_limit=rate,
        scopes=tuple(scopes),
        is_active=bool(active),
        expires_us=expires,
        last_used_us=used,
        revoked_us=revoked,
    )


def _audit(row: asyncpg.Record) -> AuditRecord:
    return AuditRecord(*row)


def _audit_arrays(records: Sequence[AuditRecord]) -> list[list[Any]]:
    return [
        [a.log_id for a in records],
        [a.user_id for a in records],
        [a.action for a in records],
        [a.ts_us for a in records],
        [a.event_id for a in records],
        [a.details for a in records],
        [a.ip_address for a in records],
        [a.request_id for a in records],
    ]


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


class PostgresStorage:
    """Implements :class:`~triggers_api.storage.base.Storage` on PostgreSQL (asyncpg pool)."""

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

    # -- lifecycle ----------------------------------------------------------------------------------
    def _server_settings(self) -> dict[str, str]:
        settings = {"application_name": "triggers-api", "jit": "off"}
        if self.schema is not None:
            settings["search_path"] = self.schema
        return settings

    async def _connect(self) -> asyncpg.Connection[asyncpg.Record]:
        with _translated("cannot connect to PostgreSQL"):
            return await asyncpg.connect(self.dsn, server_settings=self._server_settings(), timeout=10)

    async def _migrate_on(self, conn: Conn) -> None:
        with _translated("migration failed"):
            # Up to date (the usual start): read only, so a runtime role needs no DDL rights.
            if await conn.fetchval("SELECT to_regclass('schema_migrations')") is not None:
                done = {r[0] for r in await conn.fetch("SELECT version FROM schema_migrations")}
                if done >= set(range(1, len(MIGRATIONS) + 1)):
                    return
            async with conn.transaction():
                # Concurrent starters queue here; the first applies, the others find it done.
                await conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtext($1))", f"triggers_api.migrate:{self.schema}"
                )
                if self.schema is not None:
                    await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
                await conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations "
                    "(version integer PRIMARY KEY, applied_us bigint NOT NULL)"
                )
                done = {r[0] for r in await conn.fetch("SELECT version FROM schema_migrations")}
                for version, script in enumerate(MIGRATIONS, start=1):
                    if version in done:
                        continue
                    await conn.execute(script)
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, applied_us) "
                        "VALUES ($1, (extract(epoch FROM clock_timestamp()) * 1000000)::bigint)",
                        version,
                    )
                    log.info("migration_applied", backend="postgresql", version=version, schema=self.schema)

    async def migrate(self) -> None:
        if self._pool is not None:
            with _translated("migration failed"):
                async with self._pool.acquire() as conn:
                    await self._migrate_on(conn)
            return
        alone = await self._connect()
        try:
            await self._migrate_on(alone)
        finally:
            with contextlib.suppress(Exception):
                await alone.close()

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

    # -- the group-commit writers -------------------------------------------------------------------
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
            plan = await self._plan_fanout(conn, [e for e, _ in ev])  # issue 10: subscriptions
            if plan:
                async with conn.transaction():
                    refused = {r[0] for r in await conn.fetch(_GROUP_INSERT, *args)}
                    await self._store_fanout(conn, plan)
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

    # -- events -------------------------------------------------------------------------------------
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

    # -- keys ---------------------------------------------------------------------------------------
    async def insert_key(self, key: ApiKeyRecord, audit: AuditRecord | None) -> None:
        async with self._conn("insert key failed") as conn, conn.transaction():
            await conn.execute(
                f"INSERT INTO api_keys ({KEY_COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12)",
                key.key_id,
                key.user_id,
                key.key_hash,
                key.key_prefix,
                key.name.encode("utf-8", "surrogatepass"),
                key.created_us,
                key.rate_limit,
                list(key.scopes),
                key.is_active,
                key.expires_us,
                key.last_used_us,
                key.revoked_us,
            )
            if audit is not None:
                await self._insert_audit(conn, [audit])

    async def find_key_by_hash(self, key_hash: str) -> ApiKeyRecord | None:
        if _has_nul(key_hash):
            return None
        async with self._conn("read failed") as conn:
            row = await conn.fetchrow(f"SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = $1", key_hash)
        return _key(row) if row else None

    async def list_keys(self, user_id: str) -> list[ApiKeyRecord]:
        if _has_nul(user_id):
            return []
        async with self._conn("read failed") as conn:
            rows = await conn.fetch(
                f"SELECT {KEY_COLUMNS} FROM api_keys WHERE user_id = $1 ORDER BY created_us DESC, key_id DESC",
                user_id,
            )
        return [_key(r) for r in rows]

    async def revoke_key(
        self, key_id: str, user_id: str | None, at_us: int, audit: AuditRecord | None
    ) -> ApiKeyRecord | None:
        if _has_nul(key_id, user_id):
            return None
        owner = "" if user_id is None else " AND user_id = $2"
        params: list[Any] = [key_id] if user_id is None else [key_id, user_id]
        async with self._conn("revoke failed") as conn, conn.transaction():
            # Row lock first: of two concurrent revokes exactly one sees it active and audits.
            row = await conn.fetchrow(
                f"SELECT {KEY_COLUMNS} FROM api_keys WHERE key_id = $1{owner} FOR UPDATE", *params
            )
            if row is None:
                return None
            key = _key(row)
            if key.is_active:
                await conn.execute(
                    "UPDATE api_keys SET is_active = false, revoked_us = $1 WHERE key_id = $2", at_us, key_id
                )
                key.is_active, key.revoked_us = False, at_us
                if audit is not None:
                    audit.user_id = key.user_id
                    await self._insert_audit(conn, [audit])
            return key

    async def record_key_use(self, last_used: dict[str, int]) -> None:
        if not last_used:
            return
        async with self._conn("record key use failed") as conn:
            await conn.execute(
                "UPDATE api_keys SET last_used_us = u.ts FROM unnest($1::text[], $2::bigint[]) AS u(id, ts) "
                "WHERE api_keys.key_id = u.id AND (api_keys.last_used_us IS NULL OR api_keys.last_used_us < u.ts)",
                list(last_used),
                list(last_used.values()),
            )

    async def count_keys(self) -> int:
        async with self._conn("read failed") as conn:
            return int(await conn.fetchval("SELECT count(*) FROM api_keys"))

    # -- audit --------------------------------------------------------------------------------------
    @staticmethod
    async def _insert_audit(conn: Conn, records: Sequence[AuditRecord]) -> None:
        await conn.execute(
            f"INSERT INTO audit_logs ({AUDIT_COLUMNS}) SELECT * FROM {_AUDIT_UNNEST}", *_audit_arrays(records)
        )

    async def list_audit(self, query: AuditQuery) -> list[AuditRecord]:
        if _has_nul(query.user_id, query.event_id, query.action) or (
            query.before is not None and _has_nul(query.before[1])
        ):
            return []
        sql, params = audit_listing_sql(query)
        async with self._conn("read failed") as conn:
            return [_audit(r) for r in await conn.fetch(sql, *params)]

    # -- retention ----------------------------------------------------------------------------------
    async def expired_events(self, now_s: int, limit: int) -> list[EventRecord]:
        async with self._conn("read failed") as conn:
            rows = await conn.fetch(
                f"SELECT {EVENT_COLUMNS} FROM events WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2",
                _i64(now_s),
                limit,
            )
        return [_event(r) for r in rows]

    async def delete_events(self, event_ids: Sequence[str], now_s: int) -> int:
        ids = [i for i in event_ids if not _has_nul(i)]
        if not ids:
            return 0
        async with self._conn("delete failed") as conn:
            status = await conn.execute(
                "DELETE FROM events WHERE event_id = ANY($1::text[]) AND expires_at <= $2", ids, _i64(now_s)
            )
        return _rowcount(status)

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

    # == cross-process wake-ups: LISTEN/NOTIFY ========================================================
    # After a group commits, the users it stored events for are announced on the channel (one
    # NOTIFY per burst, sent in its own tiny transaction: a NOTIFY inside the insert transaction
    # would serialise every process's commits on PostgreSQL's notify lock). Every process LISTENs
    # on one dedicated connection and calls its listeners (idle workers, open streams). A lost
    # notification (a crash between commit and NOTIFY, a reconnect) only delays: listeners keep a
    # slow poll, and a reconnect calls them all once.
    def listen_for_events(self, callback: EventsListener) -> None:
        self._listeners.append(callback)
        if self._opened and self._listen_task is None:
            self._listen_task = asyncio.create_task(self._listen_loop(), name="pg-listen")

    def _announce(self, user_ids: set[str]) -> None:
        if user_ids and self._announce_wake is not None:
            self._announce_users |= user_ids
            self._announce_wake.set()

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

    # == delivery ======================================================================================
    # See the Protocol's docstrings for the semantics (they match the SQLite backend's). Claims
    # lock with FOR UPDATE SKIP LOCKED, so concurrent workers in any number of processes take
    # disjoint events without waiting for each other.
    async def claim_due_events(
        self, lease_token: str, now_us: int, lease_until_us: int, limit: int
    ) -> list[DeliveryClaim]:
        if limit <= 0:
            return []
        async with self._conn("claim failed") as conn:
            rows = await conn.fetch(_CLAIM, lease_token, _i64(lease_until_us), _i64(now_us), limit)
        ordered = sorted(rows, key=lambda r: (r[-1], r[0]))
        return [
            DeliveryClaim(_event(r[:12]), lease_token, lease_until_us, int(r[12]), int(r[13]))
            for r in ordered
        ]

    async def next_delivery_due(self, now_us: int) -> int | None:
        async with self._conn("read failed") as conn:
            due = await conn.fetchval(
                "SELECT COALESCE(next_attempt_us, ts_us) FROM events WHERE status IN ('received', 'queued') "
                "AND (lease_until_us IS NULL OR lease_until_us <= $1) "
                f"AND COALESCE(next_attempt_us, ts_us) < {FANOUT_PARKED_US} "
                "ORDER BY COALESCE(next_attempt_us, ts_us) LIMIT 1",
                _i64(now_us),
            )
        return int(due) if due is not None else None

    async def record_attempt(
        self,
        attempt: DeliveryAttempt,
        lease_token: str,
        *,
        next_attempt_us: int | None = None,
        audit: AuditRecord | None = None,
    ) -> bool:
        # One set of outcome rules for both backends (storage/attempts.py): a batch of one.
        applied = await self.record_attempts([AttemptRecord(attempt, lease_token, next_attempt_us, audit)])
        return applied[0]

    async def record_attempts(self, records: Sequence[AttemptRecord]) -> list[bool]:
        """One transaction: the events' state read and row-locked at once (in id order, so two
        batches never deadlock), the outcomes decided in Python (``attempts.apply_attempts``),
        then one statement per table."""
        if not records:
            return []
        ids = sorted(
            {r.attempt.event_id for r in records if not _has_nul(r.attempt.event_id, r.attempt.user_id)}
        )
        async with self._conn("record attempt failed") as conn, conn.transaction():
            rows = await conn.fetch(
                f"SELECT {STATE_COLUMNS} FROM events WHERE event_id = ANY($1::text[]) "
                "ORDER BY event_id FOR UPDATE",
                ids,
            )
            state = {row[0]: list(row) for row in rows}
            results, attempts, audits, touched = apply_attempts(state, records)
            if attempts:
                await conn.executemany(
                    "INSERT INTO delivery_attempts (attempt_id, event_id, user_id, started_us, duration_us, "
                    "outcome, response_status, error, response_body) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)",
                    [
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
                        )
                        for a in attempts
                    ],
                )
            if touched:
                columns = list(zip(*touched, strict=True))
                await conn.execute(
                    "UPDATE events SET status = u.status, lease_token = u.lease_token, "
                    "lease_until_us = u.lease_until_us, attempts = u.attempts, retry_count = u.attempts - 1, "
                    "last_retry_us = u.last_retry_us, delivered_us = u.delivered_us, "
                    "next_attempt_us = u.next_attempt_us, round_attempts = u.round_attempts "
                    "FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::int[], $6::bigint[], "
                    "$7::bigint[], $8::bigint[], $9::int[]) AS u(event_id, status, lease_token, lease_until_us, "
                    "attempts, last_retry_us, delivered_us, next_attempt_us, round_attempts) "
                    'WHERE events.event_id = u.event_id COLLATE "C"',
                    list(columns[0]),
                    list(columns[2]),
                    list(columns[4]),
                    list(columns[5]),
                    list(columns[6]),
                    list(columns[7]),
                    list(columns[8]),
                    [_i64(v) if v is not None else None for v in columns[9]],
                    list(columns[10]),
                )
            if audits:
                await self._insert_audit(conn, audits)
            return results

    async def release_claims(self, claims: Sequence[tuple[str, str]], due_us: int) -> int:
        pairs = [(e, t) for e, t in claims if not _has_nul(e, t)]
        if not pairs:
            return 0
        async with self._conn("release failed") as conn:
            rows = await conn.fetch(
                "UPDATE events SET lease_token = NULL, lease_until_us = NULL, next_attempt_us = $1 "
                "FROM unnest($2::text[], $3::text[]) AS c(event_id, token) "
                "WHERE events.event_id = c.event_id AND events.lease_token = c.token "
                "AND events.status = 'queued' RETURNING events.user_id",
                _i64(due_us),
                [e for e, _ in pairs],
                [t for _, t in pairs],
            )
        self._announce({r[0] for r in rows})  # due again: idle workers elsewhere look
        return len(rows)

    async def replay_events(
        self, selector: ReplaySelector, at_us: int, limit: int, audit: Callable[[str], AuditRecord]
    ) -> list[str]:
        where = ["user_id = $2", "status = 'failed'", f"COALESCE(next_attempt_us, 0) < {FANOUT_PARKED_US}"]
        if selector.destination not in (None, WORKFLOW_DESTINATION):
            where.append("false")  # a subscription's deliveries: only fanned-out events have them
        params: list[Any] = [_i64(at_us), selector.user_id]

        def param(value: Any) -> str:
            params.append(value)
            return f"${len(params)}"

        if selector.event_ids is not None:
            ids = [i for i in selector.event_ids if not _has_nul(i)]
            if not ids:
                return []
            where.append(f"event_id = ANY({param(ids)}::text[])")
        if selector.event_type is not None:
            if _has_nul(selector.event_type):
                return []
            where.append(f"event_type = {param(selector.event_type)}")
        if selector.from_us is not None:
            where.append(f"ts_us >= {param(_i64(selector.from_us))}")
        if selector.to_us is not None:
            where.append(f"ts_us <= {param(_i64(selector.to_us))}")
        if _has_nul(selector.user_id) or limit <= 0:
            return []
        sql = (  # a MATERIALIZED pick, for the reason given at _CLAIM
            f"WITH picked AS MATERIALIZED (SELECT event_id FROM events WHERE {' AND '.join(where)} "
            f"ORDER BY ts_us, event_id LIMIT {param(limit)} FOR UPDATE) "
            "UPDATE events SET status = 'queued', next_attempt_us = $1, round_attempts = 0, "
            "lease_token = NULL, lease_until_us = NULL FROM picked "
            "WHERE events.event_id = picked.event_id AND events.status = 'failed' "
            "RETURNING events.event_id, events.ts_us"
        )
        async with self._conn("replay failed") as conn, conn.transaction():
            rows = [(r[0], int(r[1])) for r in await conn.fetch(sql, *params)]
            rows += await self._replay_fanout(conn, selector, at_us, limit - len(rows))
            rows.sort(key=lambda r: (r[1], r[0]))
            ids = [r[0] for r in rows]
            if ids:
                await self._insert_audit(conn, [audit(event_id) for event_id in ids])
        if ids:
            self._announce({selector.user_id})
        return ids

    async def list_attempts(self, user_id: str, event_id: str) -> list[DeliveryAttempt]:
        if _has_nul(user_id, event_id):
            return []
        async with self._conn("read failed") as conn:
            rows = await conn.fetch(
                "SELECT attempt_id, event_id, user_id, started_us, duration_us, outcome, response_status, "
                "error, response_body, destination FROM delivery_attempts WHERE event_id = $1 AND user_id = $2 "
                "ORDER BY started_us, attempt_id",
                event_id,
                user_id,
            )
        return [DeliveryAttempt(*r) for r in rows]

    async def delivery_depths(self, user_id: str | None = None) -> DeliveryDepths:
        async with self._conn("read failed") as conn:
            if user_id is None:  # each count walks one small partial index
                row = await conn.fetchrow(
                    "SELECT (SELECT count(*) FROM events WHERE status IN ('received', 'queued')), "
                    "(SELECT count(*) FROM events WHERE status = 'failed')"
                )
            elif _has_nul(user_id):
                return DeliveryDepths(0, 0)
            else:
                row = await conn.fetchrow(
                    "SELECT count(*) FILTER (WHERE status IN ('received', 'queued')), "
                    "count(*) FILTER (WHERE status = 'failed') FROM events "
                    "WHERE user_id = $1 AND status IN ('received', 'queued', 'failed')",
                    user_id,
                )
        assert row is not None
        return DeliveryDepths(int(row[0]), int(row[1]))

    async def count_attempts(self, user_id: str, since_us: int) -> AttemptCounts:
        if _has_nul(user_id):
            return AttemptCounts(0, 0)
        async with self._conn("read failed") as conn:
            row = await conn.fetchrow(
                "SELECT count(*), count(*) FILTER (WHERE outcome = 'delivered') FROM delivery_attempts "
                "WHERE user_id = $1 AND started_us >= $2",
                user_id,
                _i64(since_us),
            )
        assert row is not None
        return AttemptCounts(int(row[0]), int(row[1]))

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

    async def stream_head(self) -> int:
        async with self._conn("read failed") as conn:
            head = await conn.fetchval(
                f"SELECT COALESCE(max(position), 0) FROM events WHERE position < {_SAFE_POSITION}"
            )
        return int(head)

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

    # == subscriptions and fan-out (issue 10) ========================================================
    # Rules in storage/fanout.py, as on SQLite. Every change to a fanned-out event's deliveries
    # first locks the event rows (in id order: no deadlocks), so the status derived from them in
    # the same transaction sees every concurrent change that committed before it.
    async def insert_subscription(self, record: SubscriptionRecord, audit: AuditRecord | None) -> None:
        async with self._conn("insert subscription failed") as conn, conn.transaction():
            await conn.execute(
                f"INSERT INTO subscriptions ({SUBSCRIPTION_COLUMNS}) VALUES "
                f"({', '.join(f'${i}' for i in range(1, 17))})",
                *subscription_row(record),
            )
            if audit is not None:
                await self._insert_audit(conn, [audit])

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
                await self._cancel_destination(conn, record.subscription_id)
            if audit is not None:
                await self._insert_audit(conn, [audit])
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
            await self._cancel_destination(conn, subscription_id)
            if audit is not None:
                await self._insert_audit(conn, [audit])
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
            await self._cancel_destination(conn, subscription_id)
            await self._insert_audit(conn, [audit(record)])
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
            due = await conn.fetchval(
                f"{_FANOUT_CLAIMABLE} ORDER BY d.next_attempt_us LIMIT 1", _i64(now_us), excluded
            )
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
                    await self._insert_audit(conn, [r.audit])
            await self._rederive(conn, ids)
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
                await self._insert_audit(conn, [audit])
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

    async def _plan_fanout(self, conn: Conn, events: list[EventRecord]) -> list[tuple[str, str, str, int]]:
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
        return plan_fanout(events, [subscription_from_row(r) for r in rows], self.workflow_destination)

    async def _store_fanout(self, conn: Conn, plan: list[tuple[str, str, str, int]]) -> None:
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

    async def _rederive(self, conn: Conn, event_ids: Sequence[str]) -> None:
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

    async def _cancel_destination(self, conn: Conn, destination: str) -> None:
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
        await self._rederive(conn, ids)

    async def _replay_fanout(
        self, conn: Conn, selector: ReplaySelector, at_us: int, limit: int
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
            where.append(
                f"e.event_id = ANY({param([i for i in selector.event_ids if not _has_nul(i)])}::text[])"
            )
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

    # == event types: the schema catalog ============================================================
    # See the EventTypeRegistry Protocol. A put takes a transaction-scoped advisory lock on
    # (user, type), so two processes registering one new type at once store two versions in order
    # rather than colliding; activity is a loose index scan on ix_events_user_type_ts.
    async def put_event_type(
        self,
        record: EventTypeRecord,
        audit: Callable[[str, EventTypeRecord], AuditRecord],
    ) -> tuple[EventTypeRecord, PutOutcome]:
        async with self._conn("event type write failed") as conn, conn.transaction():
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext($1))",
                f"event_type:{record.user_id}:{record.event_type}",
            )
            row = await conn.fetchrow(
                f"SELECT {_ET_COLUMNS} FROM event_types WHERE user_id = $1 AND event_type = $2",
                record.user_id,
                record.event_type,
            )
            current = _event_type(row) if row else None
            stored = EventTypeRecord(**{f: getattr(record, f) for f in _ET_FIELDS})
            if current is None:
                top = await conn.fetchval(
                    "SELECT COALESCE(MAX(version), 0) FROM event_type_versions "
                    "WHERE user_id = $1 AND event_type = $2",
                    record.user_id,
                    record.event_type,
                )
                stored.version, stored.created_us, outcome = (
                    int(top) + 1,
                    record.updated_us,
                    PutOutcome.CREATED,
                )
            else:
                if (current.schema, current.mode, current.description) == (
                    record.schema,
                    record.mode,
                    record.description,
                ):
                    return current, PutOutcome.UNCHANGED
                stored.version = current.version + (current.schema != record.schema)
                stored.created_us, outcome = current.created_us, PutOutcome.UPDATED
            await conn.execute(
                f"INSERT INTO event_types ({_ET_COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8) "
                "ON CONFLICT (user_id, event_type) DO UPDATE SET version = EXCLUDED.version, "
                "schema = EXCLUDED.schema, mode = EXCLUDED.mode, description = EXCLUDED.description, "
                "created_us = EXCLUDED.created_us, updated_us = EXCLUDED.updated_us",
                stored.user_id,
                stored.event_type,
                stored.version,
                stored.schema,
                stored.mode,
                _utf8(stored.description),
                stored.created_us,
                stored.updated_us,
            )
            await conn.execute(
                "INSERT INTO event_type_versions VALUES ($1,$2,$3,$4,$5,$6) "
                "ON CONFLICT (user_id, event_type, version) DO UPDATE SET mode = EXCLUDED.mode",
                stored.user_id,
                stored.event_type,
                stored.version,
                stored.schema,
                stored.mode,
                stored.updated_us,
            )
            await conn.execute(_BUMP_STAMP, stored.user_id)
            action = "event_type.created" if outcome is PutOutcome.CREATED else "event_type.updated"
            await self._insert_audit(conn, [audit(action, stored)])
        return stored, outcome

    async def get_event_type(self, user_id: str, event_type: str) -> EventTypeRecord | None:
        if _has_nul(user_id, event_type):
            return None
        async with self._conn("read failed") as conn:
            row = await conn.fetchrow(
                f"SELECT {_ET_COLUMNS} FROM event_types WHERE user_id = $1 AND event_type = $2",
                user_id,
                event_type,
            )
        return _event_type(row) if row else None

    async def list_event_types(self, user_id: str) -> list[EventTypeRecord]:
        if _has_nul(user_id):
            return []
        async with self._conn("read failed") as conn:
            rows = await conn.fetch(
                f"SELECT {_ET_COLUMNS} FROM event_types WHERE user_id = $1 ORDER BY event_type", user_id
            )
        return [_event_type(r) for r in rows]

    async def event_type_versions(self, user_id: str, event_type: str) -> list[EventTypeVersion]:
        if _has_nul(user_id, event_type):
            return []
        async with self._conn("read failed") as conn:
            rows = await conn.fetch(
                "SELECT version, schema, mode, created_us FROM event_type_versions "
                "WHERE user_id = $1 AND event_type = $2 ORDER BY version",
                user_id,
                event_type,
            )
        return [EventTypeVersion(int(r[0]), bytes(r[1]), r[2], int(r[3])) for r in rows]

    async def delete_event_type(self, user_id: str, event_type: str, audit: AuditRecord) -> bool:
        if _has_nul(user_id, event_type):
            return False
        async with self._conn("event type delete failed") as conn, conn.transaction():
            status = await conn.execute(
                "DELETE FROM event_types WHERE user_id = $1 AND event_type = $2", user_id, event_type
            )
            if not _rowcount(status):
                return False
            await conn.execute(_BUMP_STAMP, user_id)
            await self._insert_audit(conn, [audit])
        return True

    async def event_type_stamps(self) -> dict[str, int]:
        async with self._conn("read failed") as conn:
            rows = await conn.fetch("SELECT user_id, stamp FROM event_type_stamps")
        return {r[0]: int(r[1]) for r in rows}

    async def event_type_activity(
        self, user_id: str, since_us: int, recent_us: int, event_type: str | None = None
    ) -> list[EventTypeActivity]:
        if _has_nul(user_id, event_type):
            return []
        async with self._conn("read failed") as conn:
            if event_type is None:
                rows = await conn.fetch(_ACTIVITY_SQL, user_id, _i64(since_us), _i64(recent_us))
            else:
                rows = await conn.fetch(
                    _ONE_TYPE_ACTIVITY_SQL, user_id, _i64(since_us), _i64(recent_us), event_type
                )
        return [EventTypeActivity(r[0], int(r[1]), int(r[2])) for r in rows]

    async def recent_payloads(self, user_id: str, event_type: str, limit: int) -> list[bytes]:
        if _has_nul(user_id, event_type):
            return []
        async with self._conn("read failed") as conn:
            rows = await conn.fetch(
                "SELECT payload FROM events WHERE user_id = $1 AND event_type = $2 AND payload IS NOT NULL "
                "ORDER BY ts_us DESC, event_id DESC LIMIT $3",
                user_id,
                event_type,
                limit,
            )
        return [bytes(r[0]) for r in rows]


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
_BUMP_STAMP = (
    "INSERT INTO event_type_stamps AS s (user_id, stamp) VALUES ($1, 1) "
    "ON CONFLICT (user_id) DO UPDATE SET stamp = s.stamp + 1"
)

# Distinct types by skipping through ix_events_user_type_ts (user, type, time): one seek per
# type for the next name, one for its newest event, and a range count over its last 24 hours.
_ACTIVITY_SQL = """
WITH RECURSIVE types(t) AS (
    SELECT (SELECT min(event_type) FROM events WHERE user_id = $1)
    UNION ALL
    SELECT (SELECT min(event_type) FROM events WHERE user_id = $1 AND event_type > types.t)
    FROM types WHERE types.t IS NOT NULL
)
SELECT t, last, (SELECT count(*) FROM events WHERE user_id = $1 AND event_type = t AND ts_us >= $3)
FROM (SELECT t, (SELECT max(ts_us) FROM events WHERE user_id = $1 AND event_type = t) AS last
      FROM types WHERE t IS NOT NULL) AS seen
WHERE last >= $2
ORDER BY t
"""
_ONE_TYPE_ACTIVITY_SQL = """
SELECT t, last, (SELECT count(*) FROM events WHERE user_id = $1 AND event_type = t AND ts_us >= $3)
FROM (SELECT $4::text AS t,
             (SELECT max(ts_us) FROM events WHERE user_id = $1 AND event_type = $4::text) AS last) AS one
WHERE last >= $2
"""


def _utf8(text: str | None) -> bytes | None:
    return None if text is None else text.encode("utf-8", "surrogatepass")


def _event_type(row: asyncpg.Record) -> EventTypeRecord:
    user_id, event_type, version, schema, mode, description, created, updated = row
    return EventTypeRecord(
        user_id=user_id,
        event_type=event_type,
        version=int(version),
        schema=bytes(schema),
        mode=mode,
        description=None if description is None else bytes(description).decode("utf-8", "surrogatepass"),
        created_us=int(created),
        updated_us=int(updated),
    )


def _rowcount(status: str) -> int:
    """asyncpg returns the command tag (``DELETE 3``); the count is its last word."""
    try:
        return int(status.rsplit(" ", 1)[-1])
    except ValueError:
        return 0


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


def audit_listing_sql(query: AuditQuery) -> tuple[str, list[Any]]:
    where = ["user_id = $1"]
    params: list[Any] = [query.user_id]

    def param(value: Any) -> str:
        params.append(value)
        return f"${len(params)}"

    if query.event_id is not None:
        where.append(f"event_id = {param(query.event_id)}")
    if query.action is not None:
        where.append(f"action = {param(query.action)}")
    if query.before is not None:
        where.append(f"(ts_us, log_id) < ({param(_i64(query.before[0]))}, {param(query.before[1])})")
    sql = (
        f"SELECT {AUDIT_COLUMNS} FROM audit_logs WHERE {' AND '.join(where)} "
        f"ORDER BY ts_us DESC, log_id DESC LIMIT {param(query.limit)}"
    )
    return sql, params


#: The claimable deliveries ($1 now, $2 excluded destinations); the due time is the last column.
_FANOUT_CLAIMABLE = (
    "SELECT d.next_attempt_us FROM deliveries d LEFT JOIN subscriptions s ON s.subscription_id = d.destination "
    "WHERE d.status = 'pending' AND (d.lease_until_us IS NULL OR d.lease_until_us <= $1) "
    "AND (d.destination = 'workflow' OR s.status = 'active') AND NOT (d.destination = ANY($2::text[]))"
)
_FANOUT_CLAIM = """
WITH due AS MATERIALIZED (
    SELECT d.event_id, d.destination FROM deliveries d
    LEFT JOIN subscriptions s ON s.subscription_id = d.destination
    WHERE d.status = 'pending' AND d.next_attempt_us <= $3
      AND (d.lease_until_us IS NULL OR d.lease_until_us <= $3)
      AND (d.destination = 'workflow' OR s.status = 'active') AND NOT (d.destination = ANY($5::text[]))
    ORDER BY d.next_attempt_us
    LIMIT $4
    FOR UPDATE OF d SKIP LOCKED
)
UPDATE deliveries AS d SET lease_token = $1, lease_until_us = $2
FROM due
WHERE d.event_id = due.event_id AND d.destination = due.destination
RETURNING d.event_id, d.destination, d.attempts, d.round_attempts, d.next_attempt_us
"""
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
