"""The storage contract: the only door to data.

Every backend (SQLite, PostgreSQL, ...) implements :class:`Storage` and passes the same contract
suite (``tests/contract``). Methods are domain-shaped (``insert_events``, ``acknowledge``) so that
no SQL, driver or transaction leaks above this layer. Times are integer microseconds since the
Unix epoch (UTC) inside storage; the edges turn them into ISO 8601 strings.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, runtime_checkable


def now_us() -> int:
    return time.time_ns() // 1000


class EventStatus(StrEnum):
    RECEIVED = "received"
    QUEUED = "queued"
    DELIVERED = "delivered"
    FAILED = "failed"


#: Statuses an event can have while it is still in the inbox (not yet delivered or acknowledged).
INBOX_STATUSES: tuple[EventStatus, ...] = (EventStatus.RECEIVED, EventStatus.QUEUED, EventStatus.FAILED)


class AckResult(StrEnum):
    ACKNOWLEDGED = "acknowledged"
    ALREADY_ACKNOWLEDGED = "already_acknowledged"
    NOT_FOUND = "not_found"


@dataclass(slots=True)
class EventRecord:
    event_id: str
    user_id: str
    event_type: str
    payload: bytes | None  # the JSON object as UTF-8 text; None once acknowledged
    status: str
    ts_us: int
    expires_at: int  # Unix seconds (the document's ``ttl``)
    metadata: bytes  # JSON object
    retry_count: int = 0
    last_retry_us: int | None = None
    delivered_us: int | None = None
    acknowledged_us: int | None = None


@dataclass(slots=True)
class AuditRecord:
    log_id: str
    user_id: str
    action: str
    ts_us: int
    event_id: str | None = None
    details: bytes = b"{}"  # JSON object
    ip_address: str = ""
    request_id: str = ""


@dataclass(slots=True)
class ApiKeyRecord:
    key_id: str
    user_id: str
    key_hash: str
    key_prefix: str
    name: str
    created_us: int
    rate_limit: int
    scopes: tuple[str, ...]
    is_active: bool = True
    expires_us: int | None = None
    last_used_us: int | None = None
    revoked_us: int | None = None


@dataclass(slots=True)
class IdempotencyRecord:
    user_id: str
    key: str
    request_hash: str
    response_status: int
    response_body: bytes
    created_us: int
    expires_us: int


@dataclass(slots=True, frozen=True)
class EventQuery:
    """A filtered, keyset-paginated listing of one user's events."""

    user_id: str
    statuses: tuple[str, ...] = ()  # empty: any status
    event_type: str | None = None
    from_us: int | None = None  # inclusive
    to_us: int | None = None  # inclusive
    after: tuple[int, str] | None = None  # (ts_us, event_id) of the last row already seen
    limit: int = 50
    newest_first: bool = False


@dataclass(slots=True, frozen=True)
class EventPage:
    """One listing page encoded by the database (:meth:`Storage.list_events_json`).

    ``events`` is the JSON array of the page's events, each rendered exactly as the API's
    ``Event`` schema (``acknowledged_at`` included when asked for): the bytes go into the response
    as they are, with no Python object per row.
    """

    events: bytes
    count: int
    has_more: bool
    last: tuple[int, str] | None  # (ts_us, event_id) of the page's last row when has_more


@dataclass(slots=True, frozen=True)
class AuditQuery:
    user_id: str
    event_id: str | None = None
    action: str | None = None
    before: tuple[int, str] | None = None  # (ts_us, log_id): newest first
    limit: int = 50


@dataclass(slots=True)
class StoreOutcome:
    """What :meth:`Storage.insert_events` did: stored, or found an earlier idempotent request."""

    stored: bool
    existing: IdempotencyRecord | None = None
    events: list[EventRecord] = field(default_factory=list)


# == delivery: push to the workflow engine (see ``triggers_api/delivery/``) ==========================
class AttemptOutcome(StrEnum):
    """What one delivery attempt decided for its event."""

    DELIVERED = "delivered"  # 2xx: the engine took the event
    RETRY = "retry"  # retriable failure; another attempt is scheduled
    FAILED = "failed"  # refused (non-retriable 4xx) or schedule exhausted: dead-lettered


@dataclass(slots=True)
class DeliveryClaim:
    """An event leased to one worker for one delivery attempt (see :meth:`Storage.claim_due_events`)."""

    event: EventRecord
    lease_token: str
    lease_until_us: int
    attempts: int  # attempts ever made for this event before this one
    round_attempts: int  # attempts made since it entered delivery or was last replayed


@dataclass(slots=True)
class DeliveryAttempt:
    """One HTTP attempt to push one event; kept as the event's attempt history."""

    attempt_id: str  # UUIDv7, chosen by the caller
    event_id: str
    user_id: str
    started_us: int
    duration_us: int
    outcome: str  # an AttemptOutcome value
    response_status: int | None = None  # None when no HTTP answer came back
    error: str | None = None  # error class: "timeout", "connect_error", "http_503", ...
    response_body: bytes = b""  # the first 1 KiB of the answer
    destination: str = "workflow"  # WORKFLOW_DESTINATION or a subscription id (fan-out)


@dataclass(slots=True)
class AttemptRecord:
    """One attempt to record, with what it decided (see :meth:`Storage.record_attempts`)."""

    attempt: DeliveryAttempt
    lease_token: str
    next_attempt_us: int | None = None
    audit: AuditRecord | None = None


@dataclass(slots=True, frozen=True)
class ReplaySelector:
    """Which of a user's dead letters to replay: given ids, or every match of the filters."""

    user_id: str
    event_ids: tuple[str, ...] | None = None
    event_type: str | None = None
    from_us: int | None = None  # inclusive, on the event's timestamp
    to_us: int | None = None  # inclusive
    destination: str | None = None  # only deliveries to this destination (fan-out); None: all


@dataclass(slots=True, frozen=True)
class DeliveryDepths:
    pending: int  # received + queued: waiting for a push (or a pull)
    dead_letters: int  # failed


@dataclass(slots=True, frozen=True)
class AttemptCounts:
    total: int
    delivered: int


@dataclass(slots=True, frozen=True)
class StreamItem:
    """An event with its position in commit order (see :meth:`Storage.events_after`)."""

    position: int
    event: EventRecord


# == event types: the schema catalog (see ``triggers_api/event_types/``) ===========================
class EventTypeMode(StrEnum):
    """What ingestion does with a payload that does not match its type's schema."""

    ENFORCE = "enforce"  # refused: 400 VALIDATION_ERROR (in a batch, only that item)
    WARN = "warn"  # stored, with ``metadata.schema_violations``
    OFF = "off"  # registered, not validated


class PutOutcome(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


@dataclass(slots=True)
class EventTypeRecord:
    """A user's registered event type: its current schema version and mode."""

    user_id: str
    event_type: str
    version: int
    schema: bytes  # canonical JSON (sorted keys) of the JSON Schema
    mode: str  # an EventTypeMode value
    description: str | None
    created_us: int
    updated_us: int


@dataclass(slots=True, frozen=True)
class EventTypeVersion:
    version: int
    schema: bytes
    mode: str
    created_us: int


@dataclass(slots=True, frozen=True)
class EventTypeActivity:
    """How much one type was sent: the newest event's time and the count in the last 24 hours."""

    event_type: str
    last_seen_us: int
    events_last_24h: int


class EventTypeRegistry(Protocol):
    """The catalog's storage; part of :class:`Storage` (every backend implements both)."""

    async def put_event_type(
        self,
        record: EventTypeRecord,
        audit: Callable[[str, EventTypeRecord], AuditRecord],
    ) -> tuple[EventTypeRecord, PutOutcome]:
        """Register or update ``record.event_type`` for ``record.user_id``, in one transaction.

        New (or deleted before): version is one more than the highest version it ever had
        (1 at first), outcome CREATED. Registered with a different ``schema`` (bytes compared):
        a new version, outcome UPDATED. Same schema, different mode or description: same
        version, updated in place, UPDATED. Identical: nothing written, UNCHANGED. Every
        version is kept (:meth:`event_type_versions`); ``created_us`` stays the first
        registration's. When something changed, ``audit(action, stored)`` builds the audit record
        stored with it (``event_type.created`` / ``event_type.updated``) and the user's
        registry stamp grows (:meth:`event_type_stamps`). Returns the stored record.
        """
        ...

    async def get_event_type(self, user_id: str, event_type: str) -> EventTypeRecord | None: ...

    async def list_event_types(self, user_id: str) -> list[EventTypeRecord]:
        """The user's registered types, by name."""
        ...

    async def event_type_versions(self, user_id: str, event_type: str) -> list[EventTypeVersion]:
        """Every version the type ever had (also after a delete), oldest first."""
        ...

    async def delete_event_type(self, user_id: str, event_type: str, audit: AuditRecord) -> bool:
        """Unregister (validation stops; versions kept); audits and bumps the stamp. False if absent."""
        ...

    async def event_type_stamps(self) -> dict[str, int]:
        """Every user's registry stamp: it grows with each change of that user's catalog. Read
        once a second by each process to drop stale validators (cross-process invalidation)."""
        ...

    async def event_type_activity(
        self, user_id: str, since_us: int, recent_us: int, event_type: str | None = None
    ) -> list[EventTypeActivity]:
        """Types (or the one type) the user sent events of at or after ``since_us``, with the
        newest event's time and how many arrived at or after ``recent_us``. Must not read every
        event of the user: a seek per type on the (user, type, time) index."""
        ...

    async def recent_payloads(self, user_id: str, event_type: str, limit: int) -> list[bytes]:
        """Payloads of the user's most recent events of the type (acknowledged ones have none)."""
        ...


# == subscriptions and fan-out (issue 10; see ``triggers_api/subscriptions/``) =======================
#: The destination name of the global ``TRIGGERS_WORKFLOW_URL`` in delivery rows and attempts.
WORKFLOW_DESTINATION = "workflow"
#: The due time of an event whose deliveries live in the deliveries table (it was fanned out to
#: subscriptions): beyond every real time, so the single-destination claim never reaches it.
FANOUT_PARKED_US = 2**62


class SubscriptionStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    DISABLED = "disabled"


class DeliveryStatus(StrEnum):
    """The state of one (event, destination) delivery."""

    PENDING = "pending"  # waiting for its first attempt or a retry (possibly leased)
    DELIVERED = "delivered"
    FAILED = "failed"  # dead letter
    CANCELLED = "cancelled"  # the event was acknowledged, or the subscription deleted/disabled


@dataclass(slots=True)
class SubscriptionRecord:
    subscription_id: str
    user_id: str
    target_url: str
    event_types: tuple[str, ...]  # empty: every type; "order.*" is a prefix
    filter: bytes | None  # the filter object as JSON, validated by subscriptions/filters.py
    description: str
    metadata: bytes  # JSON object
    status: str  # a SubscriptionStatus value
    disabled_reason: str | None
    secret: str  # whsec_...
    previous_secret: str | None
    previous_secret_until_us: int | None  # the old secret signs too until then
    created_us: int
    updated_us: int
    last_success_us: int | None = None
    failing_since_us: int | None = None  # first failure since the last success


@dataclass(slots=True)
class DestinationDelivery:
    """One (event, destination) delivery and its own schedule state."""

    event_id: str
    destination: str  # WORKFLOW_DESTINATION or a subscription id
    user_id: str
    status: str  # a DeliveryStatus value
    attempts: int
    round_attempts: int
    next_attempt_us: int | None
    delivered_us: int | None
    last_attempt_us: int | None


@dataclass(slots=True)
class FanoutClaim:
    """A delivery leased to one worker for one attempt (see :meth:`Storage.claim_due_deliveries`)."""

    event: EventRecord
    destination: str
    lease_token: str
    lease_until_us: int
    attempts: int  # attempts ever made for this delivery before this one
    round_attempts: int


@runtime_checkable
class Storage(EventTypeRegistry, Protocol):
    async def open(self) -> None:
        """Connect and apply migrations (idempotent)."""

    async def close(self) -> None: ...

    async def migrate(self) -> None: ...

    async def ping(self) -> None:
        """Raise :class:`~triggers_api.errors.StorageError` when the database is unreachable."""

    def write_failure(self) -> str | None:
        """Why the last write failed for a reason outside the request (disk full, I/O error, lost
        connection), or None once a write has committed since: what ``/v1/health`` reports."""

    # -- events -------------------------------------------------------------------------------------
    async def insert_events(
        self,
        events: Sequence[EventRecord],
        audit: Sequence[AuditRecord],
        idempotency: IdempotencyRecord | None = None,
    ) -> StoreOutcome:
        """Store events and their audit records in one transaction, durably, before returning.

        With ``idempotency``: if a live record for (user, key) exists, store nothing and return it.
        """

    async def get_event(self, user_id: str, event_id: str) -> EventRecord | None: ...

    async def list_events(self, query: EventQuery) -> list[EventRecord]: ...

    async def list_events_json(self, query: EventQuery, *, with_ack: bool = False) -> EventPage | None:
        """The page :meth:`list_events` would return (``query.limit`` rows at most, and whether
        more follow), already encoded as JSON; None when the database cannot encode this one
        exactly (the caller then renders :meth:`list_events`' records itself)."""

    async def acknowledge(
        self, user_id: str, event_ids: Sequence[str], at_us: int, audit: dict[str, AuditRecord]
    ) -> list[AckResult]:
        """Mark events delivered+acknowledged, drop payloads, audit only the ones that changed."""

    # -- keys ---------------------------------------------------------------------------------------
    async def insert_key(self, key: ApiKeyRecord, audit: AuditRecord | None) -> None: ...

    async def find_key_by_hash(self, key_hash: str) -> ApiKeyRecord | None: ...

    async def get_key(self, user_id: str, key_id: str) -> ApiKeyRecord | None:
        """One key of ``user_id`` by id, read consistently (a revocation counts at once), so a
        caller that already knows the key (authorizer context, session) checks it in one read.
        None when no such key or another user's."""

    async def list_keys(self, user_id: str) -> list[ApiKeyRecord]: ...

    async def revoke_key(
        self, key_id: str, user_id: str | None, at_us: int, audit: AuditRecord | None
    ) -> ApiKeyRecord | None:
        """Deactivate a key (of ``user_id`` when given). None when no such key."""

    async def record_key_use(self, last_used: dict[str, int]) -> None: ...

    async def count_keys(self) -> int: ...

    # -- audit --------------------------------------------------------------------------------------
    async def list_audit(self, query: AuditQuery) -> list[AuditRecord]: ...

    # -- retention ----------------------------------------------------------------------------------
    async def expired_events(self, now_s: int, limit: int) -> list[EventRecord]: ...

    async def delete_events(self, event_ids: Sequence[str], now_s: int) -> int:
        """Delete the given events that are still expired; returns how many went."""

    async def purge_audit(self, before_us: int) -> int: ...

    async def purge_idempotency(self, now_us: int) -> int: ...

    # == delivery ====================================================================================
    # Claiming, attempts, leases, dead letters and replay for the push worker, plus the reads the
    # live stream and the metrics summary need. A "pending" event has status received or queued;
    # its due time is ``next_attempt_us`` when set, else its ``ts_us`` (new events are due at once).
    # Acknowledgement sets status delivered, so acknowledged events are never pending.

    async def claim_due_events(
        self, lease_token: str, now_us: int, lease_until_us: int, limit: int
    ) -> list[DeliveryClaim]:
        """Lease up to ``limit`` pending events that are due (due time <= ``now_us``) and not leased
        (no lease, or a lease that expired at or before ``now_us``), earliest due first.

        Atomically (one transaction, safe against concurrent claimers in other processes: no event
        is ever returned to two callers whose leases are both live) sets on each claimed event
        status ``queued``, ``lease_token`` and ``lease_until_us``. Callers pass a fresh token per call.
        Returns the claims (any order); an empty list when nothing is due.
        """

    async def next_delivery_due(self, now_us: int) -> int | None:
        """The earliest due time of a pending event without a live lease at ``now_us`` (may be in the
        past), or None when there is none. A read, used by idle workers to sleep until then."""

    async def record_attempt(
        self,
        attempt: DeliveryAttempt,
        lease_token: str,
        *,
        next_attempt_us: int | None = None,
        audit: AuditRecord | None = None,
    ) -> bool:
        """Record one attempt and apply its outcome, in one transaction.

        Does nothing and returns False when the event no longer exists. Otherwise always stores
        the attempt row and counts it on the event (``attempts`` + 1; ``retry_count`` = attempts - 1;
        ``last_retry_us`` = ``attempt.started_us`` when this was not the first attempt). Then, only
        if the event is not acknowledged:

        - DELIVERED and status is not delivered: status ``delivered``, ``delivered_us`` set if unset
          (to the attempt's end), lease and due time cleared; applies whatever the lease (the
          engine has the event, so a later or concurrent claim must not push it as undelivered).
          The payload is kept (only acknowledgement drops it).
        - RETRY, with status ``queued`` and ``lease_token`` still the event's: due at
          ``next_attempt_us``, lease cleared, ``round_attempts`` + 1.
        - FAILED, same conditions: status ``failed`` (dead letter), lease and due time cleared,
          ``round_attempts`` + 1.

        ``audit`` is inserted only when the outcome was applied. Returns whether it was applied.
        """

    async def record_attempts(self, records: Sequence[AttemptRecord]) -> list[bool]:
        """:meth:`record_attempt` for each record, in order, in as few round trips as the backend
        allows (the push worker's outcomes, batched); each record keeps its own semantics (a later
        record of the same event sees the earlier one applied). Returns whether each was applied."""

    async def release_claims(self, claims: Sequence[tuple[str, str]], due_us: int) -> int:
        """Give back leased events without counting an attempt (shutdown, circuit breaker open).

        ``claims`` are (event_id, lease_token) pairs; only events still queued under that token
        are released: lease cleared, due at ``due_us``. Returns how many were released.
        """

    async def replay_events(
        self, selector: ReplaySelector, at_us: int, limit: int, audit: Callable[[str], AuditRecord]
    ) -> list[str]:
        """Put up to ``limit`` of the selector's user's dead letters (status ``failed``) back into
        delivery with a fresh retry schedule, oldest first: status ``queued``, due at ``at_us``,
        ``round_attempts`` 0, lease cleared; attempt history, ``attempts`` and ``retry_count`` kept.
        Events in any other status are left alone. ``audit(event_id)`` builds the audit record
        stored, in the same transaction, for each replayed event. Returns the replayed ids.
        """

    async def list_attempts(self, user_id: str, event_id: str) -> list[DeliveryAttempt]:
        """The event's attempts, oldest first (empty for another user's event)."""

    async def delivery_depths(self, user_id: str | None = None) -> DeliveryDepths:
        """How many events are pending and dead-lettered: of one user, or of everyone (None)."""

    async def count_attempts(self, user_id: str, since_us: int) -> AttemptCounts:
        """The user's attempts started at or after ``since_us``: all of them, and the delivered."""

    async def count_events_by_bucket(
        self, user_id: str, since_us: int, until_us: int, bucket_us: int
    ) -> list[int]:
        """Events of the user with ``since_us <= ts_us < until_us``, counted per bucket of
        ``bucket_us`` starting at ``since_us``: a list of ceil((until - since) / bucket) counts."""

    async def stream_head(self) -> int:
        """The position of the most recently committed event of any user (0 when there is none),
        among those :meth:`events_after` may already return (see its visibility rule)."""

    async def stream_start(self) -> int:
        """Where a stream opened now (no ``Last-Event-ID``) starts: at or above the position of
        every event committed before the call, so it sends only events stored after it opened.
        The head, where readers see every committed event at once; the clock's position where
        they see events only after a settle window (DynamoDB)."""

    async def stream_position(self, user_id: str, event_id: str) -> int | None:
        """The position of the user's event, or None when it does not exist (or is another's)."""

    async def events_after(
        self, user_id: str, position: int, event_type: str | None, limit: int
    ) -> list[StreamItem]:
        """The user's events (any status, optionally of one type) after ``position``, in position
        order, at most ``limit``.

        Positions are integers that grow in *commit* order: an event committed after a call
        returned must get a position greater than every position that call could return, so a
        reader that keeps the last position it saw never skips an event (no gaps) and never sees
        one twice. A position never changes while its event exists.

        Visibility: a backend may hold a committed event back while a transaction that could
        still commit a smaller position is running (PostgreSQL: until the snapshot's xmin passes
        it); it must return it once no such transaction remains. Readers therefore poll (or wait
        for :meth:`listen_for_events`) rather than expect an event the instant its commit returns.
        """

    # == cross-process wake-ups ======================================================================
    def listen_for_events(self, callback: Callable[[frozenset[str] | None], None]) -> None:
        """Have ``callback(user_ids)`` called on the event loop, soon after *any* process commits
        new events of those users or makes some of their events due again (replay, release);
        ``None`` means "possibly anyone's" (e.g. after the backend lost its connection). May be
        called before or after :meth:`open`. Idle workers and open streams use it to wake at once
        for work stored elsewhere. A backend that cannot hear other processes (SQLite) keeps the
        callback and never calls it: callers keep their slow poll as the safety net either way.
        """

    # == subscriptions and fan-out (issue 10) ========================================================
    # An event whose user has matching active subscriptions when it is stored is *fanned out*:
    # in the same transaction it gets one delivery row per matching subscription (plus one for
    # the workflow URL when the backend was opened with ``workflow_destination=True``) and its due
    # time becomes FANOUT_PARKED_US, so the single-destination methods above never claim it.
    # Its status is then derived from its deliveries, in the transaction that changes them:
    # ``received`` until one is claimed (or when none remain to make), ``queued`` while one is
    # pending, ``failed`` when none is pending and one is dead-lettered, else ``delivered``.
    # Acknowledgement cancels its pending deliveries.

    async def insert_subscription(self, record: SubscriptionRecord, audit: AuditRecord | None) -> None: ...

    async def get_subscription(self, user_id: str, subscription_id: str) -> SubscriptionRecord | None: ...

    async def list_subscriptions(self, user_id: str) -> list[SubscriptionRecord]:
        """The user's subscriptions, oldest first."""

    async def load_subscriptions(self, subscription_ids: Sequence[str]) -> list[SubscriptionRecord]:
        """The given subscriptions of any user (the worker's view of its destinations)."""

    async def update_subscription(self, record: SubscriptionRecord, audit: AuditRecord | None) -> bool:
        """Store the record's editable fields (target, types, filter, description, metadata,
        status, reason, secrets, updated time) over the user's subscription; a status other than
        active or paused also cancels its pending deliveries. False when there is no such one."""

    async def delete_subscription(
        self, user_id: str, subscription_id: str, at_us: int, audit: AuditRecord | None
    ) -> bool:
        """Delete it and cancel its pending deliveries (history kept). False when unknown."""

    async def disable_subscription(
        self,
        subscription_id: str,
        reason: str,
        at_us: int,
        audit: Callable[[SubscriptionRecord], AuditRecord],
    ) -> bool:
        """Disable an active or paused subscription (410, or failing too long), cancel its pending
        deliveries and store ``audit(record)``. False when it is already disabled or gone."""

    async def failing_subscriptions(self, failing_since_before_us: int) -> list[str]:
        """Ids of active subscriptions whose failures started at or before the bound."""

    async def claim_due_deliveries(
        self,
        lease_token: str,
        now_us: int,
        lease_until_us: int,
        limit: int,
        exclude: Sequence[str] = (),
    ) -> list[FanoutClaim]:
        """Lease up to ``limit`` pending deliveries that are due and unleased, earliest due first,
        whose destination is the workflow or an *active* subscription and not in ``exclude`` (open
        circuits, full destinations). Their events become ``queued``. Safe across processes."""

    async def next_fanout_due(self, now_us: int, exclude: Sequence[str] = ()) -> int | None:
        """The earliest due time of a claimable delivery (as above, unleased at ``now_us``)."""

    async def record_deliveries(self, records: Sequence[AttemptRecord]) -> list[bool]:
        """:meth:`record_attempts` for deliveries (``attempt.destination`` names the row), with the
        same rules per delivery (a cancelled delivery takes no outcome); also keeps the
        subscription's ``last_success_us``/``failing_since_us`` and re-derives the event status."""

    async def release_deliveries(self, claims: Sequence[tuple[str, str, str]], due_us: int) -> int:
        """Give back (event_id, destination, lease_token) leases unattempted, due at ``due_us``."""

    async def list_deliveries(self, user_id: str, event_id: str) -> list[DestinationDelivery]:
        """The event's deliveries (empty when it was not fanned out, or is another user's)."""

    async def insert_directed_event(
        self, event: EventRecord, destinations: Sequence[str], audit: AuditRecord | None
    ) -> None:
        """Store one event fanned out to exactly ``destinations`` (a subscription's test event)."""

    async def count_destination_attempts(self, user_id: str, since_us: int) -> dict[str, AttemptCounts]:
        """The user's attempts started at or after ``since_us``, per destination."""
