"""Wire models of events (document section 3.1 and 4): what the OpenAPI declares and the code enforces."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

EVENT_TYPE_PATTERN = r"^[A-Za-z0-9._:\-]{1,128}$"

EventType = Annotated[
    str,
    Field(
        min_length=1,
        max_length=128,
        pattern=EVENT_TYPE_PATTERN,
        description="Type/category of the event, e.g. `user.created`",
        examples=["user.created"],
    ),
]


class EventInput(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "event_type": "user.created",
                    "payload": {"user_id": "usr_12345", "email": "jane@example.com"},
                }
            ]
        },
    )

    event_type: EventType
    payload: dict[str, Any] = Field(description="Event data as a JSON object")


class BatchInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[Any] = Field(
        min_length=1,
        max_length=100,
        description=(
            "1-100 events, each an EventInput. Items are validated one by one: an invalid item is "
            "reported at its index in `results` and does not stop the valid ones from being stored."
        ),
    )


class EventResponse(BaseModel):
    event_id: str = Field(json_schema_extra={"format": "uuid"})
    status: Literal["received", "queued"]
    timestamp: str = Field(json_schema_extra={"format": "date-time"})
    message: str


class ItemError(BaseModel):
    code: str
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class BatchItemFailure(BaseModel):
    index: int
    error: ItemError


class BatchResponse(BaseModel):
    success_count: int
    failure_count: int
    results: list[EventResponse | BatchItemFailure]


class SchemaViolation(BaseModel):
    path: str = Field(description="JSON Pointer into the event, e.g. `/payload/amount`")
    message: str


class EventMetadata(BaseModel):
    source_ip: str | None = None
    api_version: str
    correlation_id: str
    user_agent: str | None = None
    schema_version: int | None = Field(
        None, description="The version of the type's schema the payload was checked against (absent: none)"
    )
    schema_violations: list[SchemaViolation] | None = Field(
        None, description="Stored in warn mode although the payload broke the schema: each violation"
    )
    traceparent: str | None = Field(
        None, description="W3C trace context the push continues (when the producer sent one or tracing is on)"
    )


EventStatusName = Literal["received", "queued", "delivered", "failed"]


class Event(BaseModel):
    event_id: str = Field(json_schema_extra={"format": "uuid"})
    user_id: str
    event_type: str
    payload: dict[str, Any]
    status: EventStatusName
    timestamp: str = Field(json_schema_extra={"format": "date-time"})
    ttl: int = Field(description="Unix time (seconds) after which the event is archived and deleted")
    retry_count: int
    last_retry_at: str | None = Field(None, json_schema_extra={"format": "date-time"})
    delivered_at: str | None = Field(None, json_schema_extra={"format": "date-time"})
    metadata: EventMetadata


class EventSummary(BaseModel):
    """An event in any status; ``payload`` is null once acknowledged (payloads are deleted then)."""

    event_id: str = Field(json_schema_extra={"format": "uuid"})
    user_id: str
    event_type: str
    payload: dict[str, Any] | None
    status: EventStatusName
    timestamp: str = Field(json_schema_extra={"format": "date-time"})
    ttl: int
    retry_count: int
    last_retry_at: str | None = Field(None, json_schema_extra={"format": "date-time"})
    delivered_at: str | None = Field(None, json_schema_extra={"format": "date-time"})
    acknowledged_at: str | None = Field(None, json_schema_extra={"format": "date-time"})
    metadata: EventMetadata


class Pagination(BaseModel):
    limit: int
    offset: str | None = Field(None, description="Cursor for the next page; null when there is none")
    has_more: bool


class EventList(BaseModel):
    events: list[EventSummary]
    pagination: Pagination


class DestinationDeliveryInfo(BaseModel):
    """One (event, destination) delivery (issue 10): the workflow URL or one subscription."""

    destination: str = Field(description="'workflow' or a subscription id")
    status: Literal["pending", "delivered", "failed", "cancelled"]
    retry_count: int
    delivered_at: str | None = Field(None, json_schema_extra={"format": "date-time"})
    next_attempt_at: str | None = Field(None, json_schema_extra={"format": "date-time"})
    attempts: list[dict[str, Any]] = Field(default_factory=list, description="Its attempts, oldest first")


class EventStatusResponse(BaseModel):
    event_id: str = Field(json_schema_extra={"format": "uuid"})
    status: EventStatusName
    retry_count: int
    last_retry_at: str | None = Field(None, json_schema_extra={"format": "date-time"})
    delivered_at: str | None = Field(None, json_schema_extra={"format": "date-time"})
    acknowledged_at: str | None = Field(None, json_schema_extra={"format": "date-time"})
    attempts: list[dict[str, Any]] = Field(
        default_factory=list, description="Delivery attempts, oldest first (empty until pushed)"
    )
    deliveries: list[DestinationDeliveryInfo] = Field(
        default_factory=list, description="One entry per destination, each with its own attempts"
    )
