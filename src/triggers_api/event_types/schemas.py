"""Wire models of the event-type catalog: what the OpenAPI declares and the routes accept."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field

from triggers_api.events.schemas import EVENT_TYPE_PATTERN

Mode = Literal["enforce", "warn", "off"]

EventTypePath = Annotated[
    str,
    Path(
        min_length=1,
        max_length=128,
        pattern=EVENT_TYPE_PATTERN,
        description="The event type, e.g. `order.completed`",
    ),
]


class EventTypePut(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "order_id": {"type": "string"},
                            "amount": {"type": "number", "minimum": 0},
                        },
                        "required": ["order_id", "amount"],
                    },
                    "mode": "enforce",
                }
            ]
        },
    )

    schema_: dict[str, Any] = Field(
        alias="schema", description="A JSON Schema (draft 2020-12 unless `$schema` names 2019-09 or 7)"
    )
    mode: Mode = Field("enforce", description="enforce: refuse; warn: store and flag; off: no validation")
    description: str | None = Field(None, max_length=1000, pattern=r"^[^\x00]*$")


class EventTypeOut(BaseModel):
    event_type: str
    version: int | None
    schema_: dict[str, Any] | None = Field(alias="schema")
    mode: Mode | None
    description: str | None = None
    created_at: str | None = Field(None, json_schema_extra={"format": "date-time"})
    updated_at: str | None = Field(None, json_schema_extra={"format": "date-time"})
    events_last_24h: int = 0
    last_seen_at: str | None = Field(None, json_schema_extra={"format": "date-time"})


class EventTypeList(BaseModel):
    event_types: list[EventTypeOut]


class VersionOut(BaseModel):
    version: int
    schema_: dict[str, Any] = Field(alias="schema")
    mode: Mode
    created_at: str = Field(json_schema_extra={"format": "date-time"})


class VersionList(BaseModel):
    versions: list[VersionOut]


class InferResult(BaseModel):
    schema_: dict[str, Any] = Field(alias="schema")
    sample_size: int


class ValidateInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    payload: dict[str, Any] = Field(description="The payload to check (nothing is stored)")
    schema_: dict[str, Any] | None = Field(
        None, alias="schema", description="Check against this draft schema instead of the registered one"
    )


class Violation(BaseModel):
    path: str = Field(description="JSON Pointer into the event, e.g. `/payload/amount`")
    message: str


class ValidateResult(BaseModel):
    valid: bool
    errors: list[Violation]
    version: int | None = Field(None, description="The registered version checked (null for a draft)")
