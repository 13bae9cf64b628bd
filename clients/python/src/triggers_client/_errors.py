"""One exception hierarchy for every failure, keyed on the HTTP status of the API's error body."""

from __future__ import annotations

from typing import Any


class TriggersError(Exception):
    """Base class: ``status``, ``code``, ``message``, ``details`` and ``request_id`` of the answer."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        details: dict[str, Any] | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.details: dict[str, Any] = details or {}
        self.request_id = request_id

    def __str__(self) -> str:
        parts = [self.message]
        if self.status is not None:
            parts.append(f"(HTTP {self.status} {self.code or ''})".replace(" )", ")"))
        if self.request_id:
            parts.append(f"[request id {self.request_id}]")
        return " ".join(parts)


class AuthenticationError(TriggersError):
    """401: missing, unknown, revoked or expired API key."""


class PermissionDeniedError(TriggersError):
    """403: the key lacks the scope."""


class NotFoundError(TriggersError):
    """404: unknown id, or another user's (the API does not tell them apart)."""


class ValidationError(TriggersError):
    """400 or 422: the request is invalid (``details`` names the fields)."""


class ConflictError(TriggersError):
    """409: e.g. replaying an event that is not a dead letter."""


class GoneError(TriggersError):
    """410: e.g. acknowledging an event already acknowledged."""


class RateLimitError(TriggersError):
    """429: ``retry_after`` is the server's ``Retry-After`` in seconds, when it sent one."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class APIError(TriggersError):
    """5xx, or any other unexpected answer."""


class APIConnectionError(TriggersError):
    """The server could not be reached, or the connection broke before an answer (after retries)."""


_BY_STATUS: dict[int, type[TriggersError]] = {
    400: ValidationError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    410: GoneError,
    422: ValidationError,
}


def error_class(status: int) -> type[TriggersError]:
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if status == 429:
        return RateLimitError
    return APIError
