"""Typed views of the API's JSON bodies (the names of the OpenAPI's schemas).

Each model keeps the body it was built from in ``raw`` (the API may add fields before this SDK
knows them) and parses timestamps into aware ``datetime`` objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

JSON = dict[str, Any]


def parse_time(value: str | None) -> datetime | None:
    """RFC 3339 text (``...Z``, any fraction) to an aware datetime; Python 3.9's parser is strict."""
    if value is None:
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    date_part, _, rest = text.partition(".")
    if rest:  # pad or cut the fraction to microseconds
        digits = len(rest) - len(rest.lstrip("0123456789"))
        fraction, zone = rest[:digits], rest[digits:]
        text = f"{date_part}.{(fraction + '000000')[:6]}{zone}"
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def format_time(value: datetime | str | None) -> str | None:
    """A query/body timestamp: datetimes become RFC 3339 (naive ones are taken as UTC)."""
    if value is None or isinstance(value, str):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _time(value: str | None) -> datetime:
    parsed = parse_time(value)
    if parsed is None:
        raise ValueError("a required timestamp is missing")
    return parsed


@dataclass(frozen=True)
class EventMetadata:
    api_version: str
    correlation_id: str
    source_ip: str | None = None
    user_agent: str | None = None

    @classmethod
    def from_json(cls, data: JSON) -> EventMetadata:
        return cls(
            api_version=str(data.get("api_version", "")),
            correlation_id=str(data.get("correlation_id", "")),
            source_ip=data.get("source_ip"),
            user_agent=data.get("user_agent"),
        )


@dataclass(frozen=True)
class Event:
    """One event, as ``GET /v1/events/{id}``, the inbox, the stream and the push body give it."""

    event_id: str
    user_id: str
    event_type: str
    payload: dict[str, Any] | None  # None once acknowledged (the payload is deleted)
    status: str
    timestamp: datetime
    ttl: int
    retry_count: int
    metadata: EventMetadata
    last_retry_at: datetime | None = None
    delivered_at: datetime | None = None
    acknowledged_at: datetime | None = None
    raw: JSON = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: JSON) -> Event:
        return cls(
            event_id=data["event_id"],
            user_id=data["user_id"],
            event_type=data["event_type"],
            payload=data.get("payload"),
            status=data["status"],
            timestamp=_time(data["timestamp"]),
            ttl=int(data.get("ttl", 0)),
            retry_count=int(data.get("retry_count", 0)),
            metadata=EventMetadata.from_json(data.get("metadata") or {}),
            last_retry_at=parse_time(data.get("last_retry_at")),
            delivered_at=parse_time(data.get("delivered_at")),
            acknowledged_at=parse_time(data.get("acknowledged_at")),
            raw=data,
        )


@dataclass(frozen=True)
class CreatedEvent:
    """The answer to a create: the event is committed; ``replayed`` when the idempotency key
    matched an earlier request (nothing new was stored)."""

    event_id: str
    status: str
    timestamp: datetime
    message: str
    replayed: bool = False

    @classmethod
    def from_json(cls, data: JSON, replayed: bool = False) -> CreatedEvent:
        return cls(
            event_id=data["event_id"],
            status=data["status"],
            timestamp=_time(data["timestamp"]),
            message=data.get("message", ""),
            replayed=replayed,
        )


@dataclass(frozen=True)
class BatchItemError:
    """One refused item of a batch: its position and why."""

    index: int
    code: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BatchResult:
    success_count: int
    failure_count: int
    results: list[CreatedEvent | BatchItemError]  # one per input item, in order
    replayed: bool = False

    @classmethod
    def from_json(cls, data: JSON, replayed: bool = False) -> BatchResult:
        results: list[CreatedEvent | BatchItemError] = []
        for item in data.get("results", []):
            if "error" in item:
                error = item["error"]
                results.append(
                    BatchItemError(
                        index=int(item["index"]),
                        code=error.get("code", ""),
                        message=error.get("message", ""),
                        details=error.get("details") or {},
                    )
                )
            else:
                results.append(CreatedEvent.from_json(item, replayed))
        return cls(int(data["success_count"]), int(data["failure_count"]), results, replayed)


@dataclass(frozen=True)
class EventStatus:
    event_id: str
    status: str
    retry_count: int
    last_retry_at: datetime | None = None
    delivered_at: datetime | None = None
    acknowledged_at: datetime | None = None
    attempts: list[dict[str, Any]] = field(default_factory=list)  # delivery attempts, oldest first

    @classmethod
    def from_json(cls, data: JSON) -> EventStatus:
        return cls(
            event_id=data["event_id"],
            status=data["status"],
            retry_count=int(data.get("retry_count", 0)),
            last_retry_at=parse_time(data.get("last_retry_at")),
            delivered_at=parse_time(data.get("delivered_at")),
            acknowledged_at=parse_time(data.get("acknowledged_at")),
            attempts=list(data.get("attempts") or []),
        )


@dataclass(frozen=True)
class EventPage:
    """One page of the inbox or of the events listing; pass ``next_cursor`` as ``cursor``."""

    events: list[Event]
    next_cursor: str | None
    limit: int

    @property
    def has_more(self) -> bool:
        return self.next_cursor is not None

    @classmethod
    def from_json(cls, data: JSON) -> EventPage:
        pagination = data.get("pagination") or {}
        return cls(
            events=[Event.from_json(e) for e in data.get("events", [])],
            next_cursor=pagination.get("offset"),
            limit=int(pagination.get("limit", 0)),
        )


@dataclass(frozen=True)
class AckResult:
    event_id: str
    result: str  # "acknowledged", "already_acknowledged" or "not_found"

    @property
    def acknowledged(self) -> bool:
        return self.result == "acknowledged"


@dataclass(frozen=True)
class ReplayAccepted:
    event_id: str
    status: str
    message: str


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    user_id: str
    name: str
    key_prefix: str
    created_at: datetime
    rate_limit: int
    is_active: bool
    scopes: list[str]
    last_used_at: datetime | None = None
    expires_at: datetime | None = None
    revoked_at: datetime | None = None

    @classmethod
    def from_json(cls, data: JSON) -> ApiKey:
        return cls(**_key_fields(data))


@dataclass(frozen=True)
class CreatedApiKey(ApiKey):
    api_key: str = ""  # the plaintext key: in this answer only

    @classmethod
    def from_json(cls, data: JSON) -> CreatedApiKey:
        return cls(**_key_fields(data), api_key=data["api_key"])


def _key_fields(data: JSON) -> dict[str, Any]:
    return {
        "key_id": data["key_id"],
        "user_id": data["user_id"],
        "name": data["name"],
        "key_prefix": data["key_prefix"],
        "created_at": _time(data["created_at"]),
        "rate_limit": int(data["rate_limit"]),
        "is_active": bool(data["is_active"]),
        "scopes": list(data.get("scopes") or []),
        "last_used_at": parse_time(data.get("last_used_at")),
        "expires_at": parse_time(data.get("expires_at")),
        "revoked_at": parse_time(data.get("revoked_at")),
    }


@dataclass(frozen=True)
class AuditLog:
    log_id: str
    user_id: str
    action: str
    timestamp: datetime
    details: dict[str, Any]
    ip_address: str
    request_id: str
    event_id: str | None = None

    @classmethod
    def from_json(cls, data: JSON) -> AuditLog:
        return cls(
            log_id=data["log_id"],
            user_id=data["user_id"],
            action=data["action"],
            timestamp=_time(data["timestamp"]),
            details=data.get("details") or {},
            ip_address=data.get("ip_address", ""),
            request_id=data.get("request_id", ""),
            event_id=data.get("event_id"),
        )


@dataclass(frozen=True)
class AuditPage:
    audit_logs: list[AuditLog]
    next_cursor: str | None
    limit: int

    @property
    def has_more(self) -> bool:
        return self.next_cursor is not None

    @classmethod
    def from_json(cls, data: JSON) -> AuditPage:
        pagination = data.get("pagination") or {}
        return cls(
            audit_logs=[AuditLog.from_json(a) for a in data.get("audit_logs", [])],
            next_cursor=pagination.get("offset"),
            limit=int(pagination.get("limit", 0)),
        )


@dataclass(frozen=True)
class Subscription:
    """A REST Hook: events of ``event_types`` (empty: all) matching ``filter`` are POSTed to
    ``target_url``. ``health`` (attempts in the last 24 h, circuit state) is in get and list only."""

    subscription_id: str
    target_url: str
    event_types: list[str]
    filter: dict[str, Any] | None
    description: str
    metadata: dict[str, Any]
    status: str  # "active", "paused" or "disabled"
    created_at: datetime
    updated_at: datetime
    disabled_reason: str | None = None
    last_success_at: datetime | None = None
    failing_since: datetime | None = None
    health: dict[str, Any] | None = None
    raw: JSON = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: JSON) -> Subscription:
        return cls(**_subscription_fields(data))


@dataclass(frozen=True)
class CreatedSubscription(Subscription):
    signing_secret: str = field(default="", repr=False)  # whsec_...: in this answer only

    @classmethod
    def from_json(cls, data: JSON) -> CreatedSubscription:
        return cls(**_subscription_fields(data), signing_secret=data["signing_secret"])


def _subscription_fields(data: JSON) -> dict[str, Any]:
    return {
        "subscription_id": data["subscription_id"],
        "target_url": data["target_url"],
        "event_types": list(data.get("event_types") or []),
        "filter": data.get("filter"),
        "description": data.get("description", ""),
        "metadata": data.get("metadata") or {},
        "status": data["status"],
        "created_at": _time(data["created_at"]),
        "updated_at": _time(data["updated_at"]),
        "disabled_reason": data.get("disabled_reason"),
        "last_success_at": parse_time(data.get("last_success_at")),
        "failing_since": parse_time(data.get("failing_since")),
        "health": data.get("health"),
        "raw": data,
    }


@dataclass(frozen=True)
class SubscriptionTest:
    """The ``triggers.test`` event queued for one subscription only."""

    event_id: str
    message: str


@dataclass(frozen=True)
class EventType:
    """A type's registered JSON Schema (``schema`` None when only seen, never registered) and its
    activity (``events_last_24h``, ``last_seen_at``: zero/None in the answer to ``put``)."""

    event_type: str
    version: int | None
    schema: dict[str, Any] | None
    mode: str | None  # "enforce", "warn" or "off"
    description: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    events_last_24h: int = 0
    last_seen_at: datetime | None = None
    raw: JSON = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: JSON) -> EventType:
        version = data.get("version")
        return cls(
            event_type=data["event_type"],
            version=None if version is None else int(version),
            schema=data.get("schema"),
            mode=data.get("mode"),
            description=data.get("description"),
            created_at=parse_time(data.get("created_at")),
            updated_at=parse_time(data.get("updated_at")),
            events_last_24h=int(data.get("events_last_24h") or 0),
            last_seen_at=parse_time(data.get("last_seen_at")),
            raw=data,
        )


@dataclass(frozen=True)
class EventTypeVersion:
    version: int
    schema: dict[str, Any]
    mode: str
    created_at: datetime

    @classmethod
    def from_json(cls, data: JSON) -> EventTypeVersion:
        return cls(int(data["version"]), data["schema"], data["mode"], _time(data["created_at"]))


@dataclass(frozen=True)
class InferredSchema:
    """A schema inferred from the most recent events of a type (``sample_size`` of them)."""

    schema: dict[str, Any]
    sample_size: int


@dataclass(frozen=True)
class SchemaViolation:
    path: str  # JSON Pointer into the event, e.g. /payload/amount
    message: str


@dataclass(frozen=True)
class ValidationResult:
    """A dry run's verdict; ``version`` is the registered version checked (None for a draft)."""

    valid: bool
    errors: list[SchemaViolation]
    version: int | None = None

    @classmethod
    def from_json(cls, data: JSON) -> ValidationResult:
        version = data.get("version")
        return cls(
            valid=bool(data["valid"]),
            errors=[SchemaViolation(e["path"], e["message"]) for e in data.get("errors") or []],
            version=None if version is None else int(version),
        )
