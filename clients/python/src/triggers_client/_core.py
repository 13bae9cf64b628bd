"""What the sync and async clients share: settings, request specs, retry rules, errors, SSE parsing.

Every API call is first described as a :class:`Call` (method, path, query, body, whether a retry
is safe, how to read the answer) by a function of this module; the two clients only differ in how
they send it. Adding a resource (``subscriptions``, ``event_types``) is one group of ``Call``
builders here plus a thin class per client in ``_resources.py``.
"""

from __future__ import annotations

import email.utils
import json
import os
import random
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Generic, TypeVar, Union
from urllib.parse import quote

import httpx

from triggers_client._errors import RateLimitError, TriggersError, error_class
from triggers_client._models import (
    AckResult,
    ApiKey,
    AuditPage,
    BatchResult,
    CreatedApiKey,
    CreatedEvent,
    CreatedSubscription,
    Event,
    EventPage,
    EventStatus,
    EventType,
    EventTypeVersion,
    InferredSchema,
    ReplayAccepted,
    Subscription,
    SubscriptionTest,
    ValidationResult,
    format_time,
)

__version__ = "0.1.0"

T = TypeVar("T")
Timestamp = Union[datetime, str, None]

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
MAX_BACKOFF = 8.0  # seconds: the longest wait between two attempts (unless Retry-After says more)
MAX_RETRY_AFTER = 60.0  # a longer Retry-After is not honoured by sleeping: the error is raised
ACK_BATCH = 100  # the API's largest acknowledgement batch


@dataclass(frozen=True)
class ClientConfig:
    base_url: str
    api_key: str
    timeout: float
    max_retries: int
    retry_backoff: float

    @classmethod
    def resolve(
        cls,
        base_url: str | None,
        api_key: str | None,
        timeout: float,
        max_retries: int,
        retry_backoff: float,
    ) -> ClientConfig:
        """Arguments first, then ``TRIGGERS_BASE_URL`` / ``TRIGGERS_API_KEY``."""
        url = base_url or os.environ.get("TRIGGERS_BASE_URL") or DEFAULT_BASE_URL
        key = api_key or os.environ.get("TRIGGERS_API_KEY")
        if not key:
            raise TriggersError("No API key: pass api_key=... or set TRIGGERS_API_KEY")
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        return cls(url.rstrip("/"), key, timeout, max_retries, retry_backoff)

    def headers(self) -> dict[str, str]:
        return {
            "X-API-Key": self.api_key,
            "Accept": "application/json",
            "User-Agent": f"triggers-client/{__version__} (python-httpx/{httpx.__version__})",
        }


@dataclass(frozen=True)
class Call(Generic[T]):
    """One API request and how to read its answer."""

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    params: Mapping[str, Any] = field(default_factory=dict)
    json: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    retry_safe: bool = False  # GET/DELETE, or a POST that carries an idempotency key
    # 410 on a retry means an earlier attempt did it (its answer was lost): success, not an error
    gone_on_retry_is_success: bool = False

    def query(self) -> dict[str, Any]:
        return {k: v for k, v in self.params.items() if v is not None}


# -- retries --------------------------------------------------------------------------------------
def backoff_delay(attempt: int, base: float) -> float:
    """Exponential backoff with jitter: base * 2**attempt (capped), scaled by a random 0.5-1."""
    ceiling = min(MAX_BACKOFF, base * (2.0**attempt))
    return ceiling * random.uniform(0.5, 1.0)


def retry_after_seconds(response: httpx.Response) -> float | None:
    """``Retry-After`` as seconds (delta-seconds or an HTTP date), None when absent or unreadable."""
    value: str | None = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def succeeded_earlier(call: Call[Any], attempt: int, response: httpx.Response) -> bool:
    return attempt > 0 and response.status_code == 410 and call.gone_on_retry_is_success


def retry_delay(call: Call[Any], attempt: int, base: float, response: httpx.Response | None) -> float | None:
    """Seconds to wait before attempt ``attempt + 1``, or None when this failure is final."""
    if response is not None:
        if response.status_code not in RETRY_STATUSES or not call.retry_safe:
            return None
        after = retry_after_seconds(response)
        if after is not None:
            return None if after > MAX_RETRY_AFTER else after
    return backoff_delay(attempt, base)


def transport_retry_safe(call: Call[Any], exc: httpx.TransportError) -> bool:
    """A request that never left (connect failed) is safe to resend whatever it is."""
    return call.retry_safe or isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))


def error_from_response(response: httpx.Response) -> TriggersError:
    """The API's error body ``{"error": {code, message, details, request_id}}`` as an exception."""
    status = response.status_code
    code: str | None = None
    message = f"HTTP {status}"
    details: dict[str, Any] = {}
    request_id = response.headers.get("X-Request-ID")
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        code = error.get("code")
        message = error.get("message") or message
        details = error.get("details") or {}
        request_id = error.get("request_id") or request_id
    elif response.text:
        message = f"{message}: {response.text[:200]}"
    kind = error_class(status)
    kwargs: dict[str, Any] = {"status": status, "code": code, "details": details, "request_id": request_id}
    if kind is RateLimitError:
        return RateLimitError(message, retry_after=retry_after_seconds(response), **kwargs)
    return kind(message, **kwargs)


# -- Server-Sent Events ---------------------------------------------------------------------------
@dataclass(frozen=True)
class SSEMessage:
    id: str | None
    data: str
    event: str = "message"


class SSEDecoder:
    """Line-by-line SSE parser (WHATWG rules for the fields the API sends)."""

    def __init__(self) -> None:
        self._data: list[str] = []
        self._event = ""
        self._id: str | None = None
        self.retry_ms: int | None = None

    def feed(self, line: str) -> SSEMessage | None:
        line = line.rstrip("\r\n")
        if not line:
            if not self._data:
                self._event = ""
                return None
            message = SSEMessage(self._id, "\n".join(self._data), self._event or "message")
            self._data, self._event = [], ""
            return message
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "id" and "\0" not in value:
            self._id = value
        elif name == "event":
            self._event = value
        elif name == "retry" and value.isdigit():
            self.retry_ms = int(value)
        return None


def stream_request(
    event_type: str | None, last_event_id: str | None
) -> tuple[dict[str, str], dict[str, str]]:
    params = {"event_type": event_type} if event_type else {}
    headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
    if last_event_id:
        headers["Last-Event-ID"] = last_event_id
    return params, headers


def stream_failure_is_final(response: httpx.Response) -> bool:
    """Reconnecting cannot fix a 4xx other than 408/429 (bad key, bad Last-Event-ID, ...)."""
    return response.status_code not in RETRY_STATUSES


# -- calls ----------------------------------------------------------------------------------------
def _path_id(value: str) -> str:
    return quote(str(value), safe="")


def _json(response: httpx.Response) -> Any:
    return response.json()


def _none(response: httpx.Response) -> None:
    return None


def _replayed(response: httpx.Response) -> bool:
    value: str = response.headers.get("Idempotent-Replayed", "")
    return value.lower() == "true"


def create_event(
    event_type: str, payload: Mapping[str, Any], idempotency_key: str | None
) -> Call[CreatedEvent]:
    key = idempotency_key or str(uuid.uuid4())  # so that a retry can never store twice
    return Call(
        "POST",
        "/v1/events",
        lambda r: CreatedEvent.from_json(r.json(), _replayed(r)),
        json={"event_type": event_type, "payload": dict(payload)},
        headers={"Idempotency-Key": key},
        retry_safe=True,
    )


def create_batch(events: Iterable[Mapping[str, Any]], idempotency_key: str | None) -> Call[BatchResult]:
    key = idempotency_key or str(uuid.uuid4())
    items = [{"event_type": e["event_type"], "payload": dict(e.get("payload") or {})} for e in events]
    return Call(
        "POST",
        "/v1/events/batch",
        lambda r: BatchResult.from_json(r.json(), _replayed(r)),
        json={"events": items},
        headers={"Idempotency-Key": key},
        retry_safe=True,
    )


def get_event(event_id: str) -> Call[Event]:
    return Call(
        "GET", f"/v1/events/{_path_id(event_id)}", lambda r: Event.from_json(r.json()), retry_safe=True
    )


def event_status(event_id: str) -> Call[EventStatus]:
    return Call(
        "GET",
        f"/v1/events/{_path_id(event_id)}/status",
        lambda r: EventStatus.from_json(r.json()),
        retry_safe=True,
    )


def acknowledge(event_id: str) -> Call[None]:
    return Call(
        "DELETE", f"/v1/events/{_path_id(event_id)}", _none, retry_safe=True, gone_on_retry_is_success=True
    )


def acknowledge_batch(event_ids: Sequence[str]) -> Call[list[AckResult]]:
    """Acknowledging is idempotent (a repeat answers ``already_acknowledged``): safe to retry."""
    return Call(
        "POST",
        "/v1/events/acknowledge/batch",
        lambda r: [AckResult(i["event_id"], i["result"]) for i in r.json()["results"]],
        json={"event_ids": list(event_ids)},
        retry_safe=True,
    )


def chunks(items: Sequence[str], size: int = ACK_BATCH) -> list[Sequence[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def replay(event_id: str) -> Call[ReplayAccepted]:
    def parse(r: httpx.Response) -> ReplayAccepted:
        body = r.json()
        return ReplayAccepted(body["event_id"], body["status"], body.get("message", ""))

    return Call("POST", f"/v1/events/{_path_id(event_id)}/replay", parse)


def replay_failed(event_type: str | None, from_timestamp: Timestamp, to_timestamp: Timestamp) -> Call[int]:
    body = {
        "event_type": event_type,
        "from_timestamp": format_time(from_timestamp),
        "to_timestamp": format_time(to_timestamp),
    }
    return Call(
        "POST",
        "/v1/events/replay",
        lambda r: int(r.json()["replayed"]),
        json={k: v for k, v in body.items() if v is not None},
    )


def list_events(
    path: str,
    event_type: str | None,
    status: str | None,
    from_timestamp: Timestamp,
    to_timestamp: Timestamp,
    limit: int,
    cursor: str | None,
    wait: int | None = None,
) -> Call[EventPage]:
    params = {
        "event_type": event_type,
        "status": status,
        "from_timestamp": format_time(from_timestamp),
        "to_timestamp": format_time(to_timestamp),
        "limit": limit,
        "offset": cursor,
        "wait": wait or None,
    }
    return Call("GET", path, lambda r: EventPage.from_json(r.json()), params=params, retry_safe=True)


def list_keys() -> Call[list[ApiKey]]:
    return Call("GET", "/v1/keys", lambda r: [ApiKey.from_json(k) for k in r.json()["keys"]], retry_safe=True)


def create_key(
    name: str, scopes: Sequence[str] | None, rate_limit: int | None, expires_at: Timestamp
) -> Call[CreatedApiKey]:
    body: dict[str, Any] = {"name": name}
    if scopes is not None:
        body["scopes"] = list(scopes)
    if rate_limit is not None:
        body["rate_limit"] = rate_limit
    if expires_at is not None:
        body["expires_at"] = format_time(expires_at)
    return Call("POST", "/v1/keys", lambda r: CreatedApiKey.from_json(r.json()), json=body)


def revoke_key(key_id: str) -> Call[None]:
    return Call("DELETE", f"/v1/keys/{_path_id(key_id)}", _none, retry_safe=True)


def list_audit_logs(
    event_id: str | None, action: str | None, limit: int, cursor: str | None
) -> Call[AuditPage]:
    params = {"event_id": event_id, "action": action, "limit": limit, "offset": cursor}
    return Call(
        "GET", "/v1/audit-logs", lambda r: AuditPage.from_json(r.json()), params=params, retry_safe=True
    )


# -- subscriptions -------------------------------------------------------------------------------
def _subscription_path(subscription_id: str, action: str = "") -> str:
    return f"/v1/subscriptions/{_path_id(subscription_id)}{action}"


def create_subscription(
    target_url: str,
    event_types: Sequence[str] | None,
    filter: Mapping[str, Any] | None,
    description: str | None,
    metadata: Mapping[str, Any] | None,
) -> Call[CreatedSubscription]:
    """Not retried: a repeat would subscribe twice (the API takes no idempotency key here)."""
    body: dict[str, Any] = {"target_url": target_url}
    if event_types is not None:
        body["event_types"] = list(event_types)
    if filter is not None:
        body["filter"] = dict(filter)
    if description is not None:
        body["description"] = description
    if metadata is not None:
        body["metadata"] = dict(metadata)
    return Call("POST", "/v1/subscriptions", lambda r: CreatedSubscription.from_json(r.json()), json=body)


def list_subscriptions() -> Call[list[Subscription]]:
    return Call(
        "GET",
        "/v1/subscriptions",
        lambda r: [Subscription.from_json(s) for s in r.json()["subscriptions"]],
        retry_safe=True,
    )


def get_subscription(subscription_id: str) -> Call[Subscription]:
    return Call(
        "GET",
        _subscription_path(subscription_id),
        lambda r: Subscription.from_json(r.json()),
        retry_safe=True,
    )


def update_subscription(
    subscription_id: str,
    target_url: str | None,
    event_types: Sequence[str] | None,
    filter: Mapping[str, Any] | None,
    clear_filter: bool,
    description: str | None,
    status: str | None,
) -> Call[Subscription]:
    """Only the fields given are sent; ``clear_filter`` sends ``"filter": null`` (match all).
    Setting fields is idempotent, so a retry is safe."""
    body: dict[str, Any] = {}
    if target_url is not None:
        body["target_url"] = target_url
    if event_types is not None:
        body["event_types"] = list(event_types)
    if clear_filter:
        body["filter"] = None
    elif filter is not None:
        body["filter"] = dict(filter)
    if description is not None:
        body["description"] = description
    if status is not None:
        body["status"] = status
    return Call(
        "PATCH",
        _subscription_path(subscription_id),
        lambda r: Subscription.from_json(r.json()),
        json=body,
        retry_safe=True,
    )


def delete_subscription(subscription_id: str) -> Call[None]:
    return Call("DELETE", _subscription_path(subscription_id), _none, retry_safe=True)


def rotate_subscription_secret(subscription_id: str) -> Call[str]:
    """Not retried: each call makes a new secret (the old one keeps signing for 24 h)."""
    return Call(
        "POST",
        _subscription_path(subscription_id, "/rotate-secret"),
        lambda r: str(r.json()["signing_secret"]),
    )


def send_subscription_test(subscription_id: str) -> Call[SubscriptionTest]:
    def parse(r: httpx.Response) -> SubscriptionTest:
        body = r.json()
        return SubscriptionTest(body["event_id"], body.get("message", ""))

    return Call("POST", _subscription_path(subscription_id, "/test"), parse)


# -- event types ----------------------------------------------------------------------------------
def _event_type_path(event_type: str, action: str = "") -> str:
    return f"/v1/event-types/{_path_id(event_type)}{action}"


def put_event_type(
    event_type: str, schema: Mapping[str, Any], mode: str | None, description: str | None
) -> Call[EventType]:
    """A PUT of the same schema is idempotent (no new version), so it is safe to retry."""
    body: dict[str, Any] = {"schema": dict(schema)}
    if mode is not None:
        body["mode"] = mode
    if description is not None:
        body["description"] = description
    return Call(
        "PUT",
        _event_type_path(event_type),
        lambda r: EventType.from_json(r.json()),
        json=body,
        retry_safe=True,
    )


def list_event_types() -> Call[list[EventType]]:
    return Call(
        "GET",
        "/v1/event-types",
        lambda r: [EventType.from_json(t) for t in r.json()["event_types"]],
        retry_safe=True,
    )


def get_event_type(event_type: str) -> Call[EventType]:
    return Call("GET", _event_type_path(event_type), lambda r: EventType.from_json(r.json()), retry_safe=True)


def event_type_versions(event_type: str) -> Call[list[EventTypeVersion]]:
    return Call(
        "GET",
        _event_type_path(event_type, "/versions"),
        lambda r: [EventTypeVersion.from_json(v) for v in r.json()["versions"]],
        retry_safe=True,
    )


def delete_event_type(event_type: str) -> Call[None]:
    return Call("DELETE", _event_type_path(event_type), _none, retry_safe=True)


def infer_event_type(event_type: str) -> Call[InferredSchema]:
    """Reads only: safe to retry."""

    def parse(r: httpx.Response) -> InferredSchema:
        body = r.json()
        return InferredSchema(body["schema"], int(body["sample_size"]))

    return Call("POST", _event_type_path(event_type, "/infer"), parse, retry_safe=True)


def validate_payload(
    event_type: str, payload: Mapping[str, Any], schema: Mapping[str, Any] | None
) -> Call[ValidationResult]:
    """A dry run that stores nothing: safe to retry."""
    body: dict[str, Any] = {"payload": dict(payload)}
    if schema is not None:
        body["schema"] = dict(schema)
    return Call(
        "POST",
        _event_type_path(event_type, "/validate"),
        lambda r: ValidationResult.from_json(r.json()),
        json=body,
        retry_safe=True,
    )


def parse_event_data(message: SSEMessage) -> Event:
    return Event.from_json(json.loads(message.data))
