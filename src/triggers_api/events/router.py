"""Events routes: ingestion (documented here, served by ``fastpath``), look-up and status."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Request, Response

from triggers_api.edge import read_body, request_id_of
from triggers_api.errors import NotFound, UnsupportedMediaType
from triggers_api.events.fastpath import content_type_ok
from triggers_api.events.schemas import BatchResponse, Event, EventResponse, EventStatusResponse
from triggers_api.events.service import (
    IngestContext,
    check_idempotency_key,
    parse_event_id,
    render_event,
    us_to_iso,
)
from triggers_api.openapi import AUTHED, EventIdPath, errors
from triggers_api.runtime import EventsReader, EventsWriter, ServicesDep, client_ip
from triggers_api.tracing import valid_traceparent

router = APIRouter(prefix="/v1", tags=["Events"])

EventId = EventIdPath
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Makes retries safe for 24 h: same key + same body replays the first response",
        min_length=1,
        max_length=255,
        pattern=r"^[\x20-\x7e]+$",
    ),
]


def _json_body(ref: str) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}},
        }
    }


async def _ingest(
    request: Request, services: ServicesDep, principal: Any, key: str | None, batch: bool
) -> Response:
    """Reached only when the edge's fast path is bypassed; same service, same contract."""
    if not content_type_ok(request.headers.get("content-type", "").encode("latin-1") or None):
        raise UnsupportedMediaType()
    ctx = IngestContext(
        principal=principal,
        request_id=request_id_of(request.scope),
        source_ip=client_ip(request.scope),
        user_agent=request.headers.get("user-agent"),
        idempotency_key=check_idempotency_key(key),
        path=request.url.path,
        traceparent=valid_traceparent(request.headers.get("traceparent")),
    )
    result = await services.ingestor.ingest(ctx, await read_body(request.receive), batch)
    headers = {"Idempotent-Replayed": "true"} if result.replayed else None
    return Response(result.body, result.status, headers=headers, media_type="application/json")


@router.post(
    "/events",
    status_code=201,
    operation_id="createEvent",
    summary="Ingest a new event",
    response_model=EventResponse,
    responses=errors(*AUTHED, 409, 415, 422),
    openapi_extra=_json_body("EventInput"),
)
async def create_event(
    request: Request, services: ServicesDep, principal: EventsWriter, idempotency_key: IdempotencyKey = None
) -> Response:
    return await _ingest(request, services, principal, idempotency_key, batch=False)


@router.post(
    "/events/batch",
    status_code=201,
    operation_id="createBatchEvents",
    summary="Ingest up to 100 events; each is validated on its own",
    response_model=BatchResponse,
    responses=errors(*AUTHED, 409, 415, 422),
    openapi_extra=_json_body("BatchInput"),
)
async def create_batch(
    request: Request, services: ServicesDep, principal: EventsWriter, idempotency_key: IdempotencyKey = None
) -> Response:
    return await _ingest(request, services, principal, idempotency_key, batch=True)


@router.get(
    "/events/{event_id}",
    operation_id="getEvent",
    summary="Get an event (404 once acknowledged)",
    response_model=Event,
    responses=errors(*AUTHED),
)
async def get_event(event_id: EventId, services: ServicesDep, principal: EventsReader) -> Response:
    record = await services.storage.get_event(principal.user_id, parse_event_id(event_id))
    if record is None or record.acknowledged_us is not None or record.payload is None:
        raise NotFound("Event not found", details={"event_id": event_id})
    return Response(orjson.dumps(render_event(record)), media_type="application/json")


@router.get(
    "/events/{event_id}/status",
    operation_id="getEventStatus",
    summary="Get an event's delivery status (kept until the TTL, also after acknowledgement)",
    response_model=EventStatusResponse,
    responses=errors(*AUTHED),
)
async def get_event_status(event_id: EventId, services: ServicesDep, principal: EventsReader) -> Response:
    record = await services.storage.get_event(principal.user_id, parse_event_id(event_id))
    if record is None:
        raise NotFound("Event not found", details={"event_id": event_id})
    attempts_of = services.extras.get("attempts_of")
    attempts = await attempts_of(principal.user_id, record.event_id) if attempts_of else []
    body = {
        "event_id": record.event_id,
        "status": record.status,
        "retry_count": record.retry_count,
        "last_retry_at": us_to_iso(record.last_retry_us),
        "delivered_at": us_to_iso(record.delivered_us),
        "acknowledged_at": us_to_iso(record.acknowledged_us),
        "attempts": attempts,
    }
    deliveries_of = services.extras.get("deliveries_of")  # fan-out (issue 10): one row per destination
    if deliveries_of is not None:
        workflow = services.settings.workflow_url is not None
        body["deliveries"] = await deliveries_of(principal.user_id, record, attempts, workflow)
    return Response(orjson.dumps(body), media_type="application/json")
