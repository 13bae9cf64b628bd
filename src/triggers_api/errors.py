"""One error hierarchy and one error body (architecture document, section 17.2).

Every failure the service answers, from validation to an unexpected crash, leaves through
:func:`error_body`, so clients need to parse exactly one shape.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson


def utc_iso(moment: datetime | None = None) -> str:
    """ISO 8601 UTC with microseconds and a ``Z``, the one timestamp format of the API."""
    moment = moment or datetime.now(UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class ApiError(Exception):
    """Base class: carries the HTTP status and the machine-readable code."""

    status_code = 500
    code = "INTERNAL_ERROR"
    default_message = "An internal error occurred"

    def __init__(
        self,
        message: str | None = None,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.details = details or {}
        self.headers = headers or {}
        super().__init__(self.message)


class ValidationFailed(ApiError):
    status_code, code, default_message = 400, "VALIDATION_ERROR", "The request is invalid"


class Unauthorized(ApiError):
    status_code, code, default_message = 401, "UNAUTHORIZED", "Missing or invalid credentials"


class Forbidden(ApiError):
    status_code, code, default_message = 403, "FORBIDDEN", "The API key lacks the required scope"


class NotFound(ApiError):
    status_code, code, default_message = 404, "NOT_FOUND", "The requested resource was not found"


class MethodNotAllowed(ApiError):
    status_code, code, default_message = 405, "METHOD_NOT_ALLOWED", "Method not allowed on this resource"


class IdempotencyKeyInUse(ApiError):
    status_code, code = 409, "IDEMPOTENCY_KEY_IN_USE"
    default_message = "A request with this Idempotency-Key is still being processed"


class EventGone(ApiError):
    status_code, code, default_message = 410, "EVENT_GONE", "The event was already acknowledged"


class PayloadTooLarge(ApiError):
    status_code, code, default_message = 413, "PAYLOAD_TOO_LARGE", "The request body is too large"


class UnsupportedMediaType(ApiError):
    status_code, code, default_message = (
        415,
        "UNSUPPORTED_MEDIA_TYPE",
        "Content-Type must be application/json",
    )


class IdempotencyKeyReused(ApiError):
    status_code, code = 422, "IDEMPOTENCY_KEY_REUSED"
    default_message = "This Idempotency-Key was used with a different request"


class RateLimitExceeded(ApiError):
    status_code, code, default_message = 429, "RATE_LIMIT_EXCEEDED", "Rate limit exceeded"


class DestinationNotAllowed(ApiError):
    status_code, code = 400, "DESTINATION_NOT_ALLOWED"
    default_message = "The target URL is not allowed (it must be http(s) and resolve to public addresses)"


class ServiceUnavailable(ApiError):
    status_code, code, default_message = 503, "SERVICE_UNAVAILABLE", "The service is temporarily unavailable"


class StorageUnavailable(ApiError):
    """The database cannot take writes (disk full, I/O error) or cannot be reached (restart).

    Nothing was committed: the client may send the same request again after ``Retry-After``.
    """

    status_code, code = 503, "STORAGE_UNAVAILABLE"
    default_message = "Storage is temporarily unavailable: nothing was stored, retry later"


class StorageError(Exception):
    """Raised by storage backends in place of driver errors, so nothing above sees sqlite3/asyncpg."""


class StorageUnavailableError(StorageError):
    """A StorageError that is the environment's fault, not the request's: a full disk, an I/O
    error, a lost or refused database connection. Answered 503 ``STORAGE_UNAVAILABLE``."""


def storage_unavailable(retry_after: int) -> StorageUnavailable:
    return StorageUnavailable(
        details={"retry_after_seconds": retry_after}, headers={"Retry-After": str(retry_after)}
    )


def error_body(code: str, message: str, request_id: str, details: dict[str, Any] | None = None) -> bytes:
    return orjson.dumps(
        {
            "error": {
                "code": code,
                "message": message,
                "details": details or {},
                "timestamp": utc_iso(),
                "request_id": request_id,
            }
        }
    )


def api_error_body(error: ApiError, request_id: str) -> bytes:
    return error_body(error.code, error.message, request_id, error.details)


def pydantic_details(errors: list[Any], prefix: tuple[Any, ...] = ()) -> dict[str, Any]:
    """Turn Pydantic's error list into ``{"field.path": "message"}``, naming each bad field."""
    details: dict[str, Any] = {}
    for err in errors:
        loc = tuple(prefix) + tuple(err.get("loc", ()))
        # FastAPI prefixes locations with "body"/"query"/"path"/"header": keep them out of names.
        if loc and loc[0] in ("body", "query", "path", "header", "cookie"):
            loc = loc[1:]
        name = ".".join(str(part) for part in loc) or "body"
        details.setdefault(name, err.get("msg", "invalid value"))
    return details
