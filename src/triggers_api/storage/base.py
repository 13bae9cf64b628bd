"""The storage contract: the only door to data.

Every backend (SQLite, PostgreSQL, ...) implements :class:`Storage` and passes the same contract
suite (``tests/contract``). Methods are domain-shaped (``insert_events``, ``acknowledge``) so that
no SQL, driver or transaction leaks above this layer. Times are integer microseconds since the
Unix epoch (UTC) inside storage; the edges turn them into ISO 8601 strings.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
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


@runtime_checkable
class Storage(Protocol):
    async def open(self) -> None:
        """Connect and apply migrations (idempotent)."""

    async def close(self) -> None: ...

    async def migrate(self) -> None: ...

    async def ping(self) -> None:
        """Raise :class:`~triggers_api.errors.StorageError` when the database is unreachable."""

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

    async def acknowledge(
        self, user_id: str, event_ids: Sequence[str], at_us: int, audit: dict[str, AuditRecord]
    ) -> list[AckResult]:
        """Mark events delivered+acknowledged, drop payloads, audit only the ones that changed."""

    # -- keys ---------------------------------------------------------------------------------------
    async def insert_key(self, key: ApiKeyRecord, audit: AuditRecord | None) -> None: ...

    async def find_key_by_hash(self, key_hash: str) -> ApiKeyRecord | None: ...

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
