"""Inbox routes: list undelivered events, list all events, acknowledge one or many."""

from __future__ import annotations

from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from triggers_api.edge import request_id_of
from triggers_api.errors import EventGone, NotFound
from triggers_api.events.schemas import EVENT_TYPE_PATTERN, Event, EventList
from triggers_api.events.service import parse_event_id, render_event
from triggers_api.inbox import service
from triggers_api.inbox.stream import page_or_wait
from triggers_api.openapi import AUTHED, EventIdPath, errors
from triggers_api.runtime import EventsReader, ServicesDep, client_ip
from triggers_api.storage.base import INBOX_STATUSES, AckResult, EventQuery

router = APIRouter(prefix="/v1", tags=["Inbox"])

EventTypeFilter = Annotated[
    str | None,
    Query(description="Only events of this type", min_length=1, max_length=128, pattern=EVENT_TYPE_PATTERN),
]
Limit = Annotated[int, Query(ge=1, le=200, description="Page size (1-200)")]
Cursor = Annotated[str | None, Query(description="Opaque cursor from the previous page's pagination.offset")]
FromTs = Annotated[
    str | None,
    Query(
        description="Only events at or after this time (inclusive)", json_schema_extra={"format": "date-time"}
    ),
]
ToTs = Annotated[
    str | None,
    Query(
        description="Only events at or before this time (inclusive)",
        json_schema_extra={"format": "date-time"},
    ),
]


class InboxPage(BaseModel):
    events: list[Event]
    pagination: dict[str, int | str | bool | None] = Field(
        description="{limit, offset: next cursor or null, has_more}"
    )


def _page_body(rows_json: list[object], limit: int, cursor: str | None) -> bytes:
    return orjson.dumps(
        {
            "events": rows_json,
            "pagination": {"limit": limit, "offset": cursor, "has_more": cursor is not None},
        }
    )


@router.get(
    "/inbox",
    operation_id="listInboxEvents",
    summary="Undelivered events (received, queued, failed), oldest first",
    response_model=InboxPage,
    responses=errors(*AUTHED),
)
async def list_inbox(
    services: ServicesDep,
    principal: EventsReader,
    event_type: EventTypeFilter = None,
    status: Annotated[Literal["received", "queued", "failed"] | None, Query()] = None,
    limit: Limit = 50,
    offset: Cursor = None,
    from_timestamp: FromTs = None,
    to_timestamp: ToTs = None,
    wait: Annotated[
        int,
        Query(ge=0, le=30, description="Long poll: hold up to N seconds until matching events exist"),
    ] = 0,
) -> Response:
    query = EventQuery(
        user_id=principal.user_id,
        statuses=(status,) if status else tuple(s.value for s in INBOX_STATUSES),
        event_type=event_type,
        from_us=service.parse_timestamp(from_timestamp, "from_timestamp"),
        to_us=service.parse_timestamp(to_timestamp, "to_timestamp"),
        after=services.cursors.decode("i", principal.user_id, offset),
        limit=limit,
    )
    if wait <= 0:  # the usual read: encoded by the database, no Python object per event
        body = await service.page_json(services.storage, query, "i", services.cursors)
        if body is not None:
            return Response(body, media_type="application/json")
    rows, cursor = await page_or_wait(services, query, "i", wait)
    return Response(_page_body([render_event(r) for r in rows], limit, cursor), media_type="application/json")


@router.get(
    "/events",
    operation_id="listEvents",
    summary="All of the user's events in any status, newest first (payload null once acknowledged)",
    response_model=EventList,
    responses=errors(*AUTHED),
)
async def list_events(
    services: ServicesDep,
    principal: EventsReader,
    event_type: EventTypeFilter = None,
    status: Annotated[Literal["received", "queued", "delivered", "failed"] | None, Query()] = None,
    limit: Limit = 50,
    offset: Cursor = None,
    from_timestamp: FromTs = None,
    to_timestamp: ToTs = None,
) -> Response:
    query = EventQuery(
        user_id=principal.user_id,
        statuses=(status,) if status else (),
        event_type=event_type,
        from_us=service.parse_timestamp(from_timestamp, "from_timestamp"),
        to_us=service.parse_timestamp(to_timestamp, "to_timestamp"),
        after=services.cursors.decode("e", principal.user_id, offset),
        limit=limit,
        newest_first=True,
    )
    encoded = await service.page_json(services.storage, query, "e", services.cursors, with_ack=True)
    if encoded is not None:
        return Response(encoded, media_type="application/json")
    rows, cursor = await service.page(services.storage, query, "e", services.cursors)
    body = _page_body([render_event(r, with_ack=True) for r in rows], limit, cursor)
    return Response(body, media_type="application/json")


@router.delete(
    "/events/{event_id}",
    status_code=204,
    operation_id="acknowledgeEvent",
    summary="Acknowledge an event: mark it delivered, remove it from the inbox, delete its payload",
    responses=errors(*AUTHED, 410),
)
async def acknowledge_event(
    event_id: EventIdPath, request: Request, services: ServicesDep, principal: EventsReader
) -> Response:
    canonical = parse_event_id(event_id)
    (result,) = await service.acknowledge(
        services.storage,
        principal.user_id,
        [canonical],
        request_id=request_id_of(request.scope),
        ip_address=client_ip(request.scope),
        via="delete",
    )
    if result is AckResult.NOT_FOUND:
        raise NotFound("Event not found", details={"event_id": event_id})
    if result is AckResult.ALREADY_ACKNOWLEDGED:
        raise EventGone("The event was already acknowledged", details={"event_id": canonical})
    return Response(status_code=204)


class AckBatchInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event_ids: list[Annotated[str, Field(json_schema_extra={"format": "uuid"})]] = Field(
        min_length=1, max_length=100, description="1-100 event ids; duplicates are folded"
    )


class AckItem(BaseModel):
    event_id: str
    result: Literal["acknowledged", "already_acknowledged", "not_found"]


class AckBatchResponse(BaseModel):
    results: list[AckItem]


@router.post(
    "/events/acknowledge/batch",
    operation_id="acknowledgeEventsBatch",
    summary="Acknowledge up to 100 events",
    response_model=AckBatchResponse,
    responses=errors(*AUTHED, 415),
)
async def acknowledge_batch(
    body: AckBatchInput, request: Request, services: ServicesDep, principal: EventsReader
) -> Response:
    ids = service.fold_event_ids(body.event_ids)
    results = await service.acknowledge(
        services.storage,
        principal.user_id,
        ids,
        request_id=request_id_of(request.scope),
        ip_address=client_ip(request.scope),
        via="batch",
    )
    payload = {"results": [{"event_id": i, "result": r.value} for i, r in zip(ids, results, strict=True)]}
    return Response(orjson.dumps(payload), media_type="application/json")
