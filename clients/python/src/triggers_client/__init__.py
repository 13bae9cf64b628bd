"""Python SDK for the Triggers API: ``TriggersClient``, ``AsyncTriggersClient``, ``webhooks``."""

from __future__ import annotations

from triggers_client import webhooks
from triggers_client._client import AsyncTriggersClient, TriggersClient
from triggers_client._core import __version__
from triggers_client._errors import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    ConflictError,
    GoneError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    TriggersError,
    ValidationError,
)
from triggers_client._models import (
    AckResult,
    ApiKey,
    AuditLog,
    AuditPage,
    BatchItemError,
    BatchResult,
    CreatedApiKey,
    CreatedEvent,
    Event,
    EventMetadata,
    EventPage,
    EventStatus,
    ReplayAccepted,
)
from triggers_client.webhooks import WebhookVerificationError

__all__ = [
    "APIConnectionError",
    "APIError",
    "AckResult",
    "ApiKey",
    "AsyncTriggersClient",
    "AuditLog",
    "AuditPage",
    "AuthenticationError",
    "BatchItemError",
    "BatchResult",
    "ConflictError",
    "CreatedApiKey",
    "CreatedEvent",
    "Event",
    "EventMetadata",
    "EventPage",
    "EventStatus",
    "GoneError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "ReplayAccepted",
    "TriggersClient",
    "TriggersError",
    "ValidationError",
    "WebhookVerificationError",
    "__version__",
    "webhooks",
]
