"""Event types API: ``/v1/event-types``, per user; reading needs ``events:read``, changing
``event_types:manage``. Handlers only translate HTTP to :class:`~.service.EventTypes` calls."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Request, Response

from triggers_api.auth import Principal, Scope
from triggers_api.edge import request_id_of
from triggers_api.event_types.schemas import (
    EventTypeList,
    EventTypeOut,
    EventTypePath,
    EventTypePut,
    InferResult,
    ValidateInput,
    ValidateResult,
    VersionList,
)
from triggers_api.event_types.service import EventTypes, render
from triggers_api.openapi import AUTHED, errors
from triggers_api.runtime import EventsReader, ServicesDep, client_ip, require

router = APIRouter(prefix="/v1", tags=["Event types"])

EventTypesManager = Annotated[Principal, require(Scope.EVENT_TYPES_MANAGE)]


def _service(services: Any) -> EventTypes:
    event_types: EventTypes = services.extras["event_types"]
    return event_types


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


@router.get(
    "/event-types",
    operation_id="listEventTypes",
    summary="Registered types, and types sent in the last 30 days without a schema",
    response_model=EventTypeList,
    responses=errors(*AUTHED),
)
async def list_event_types(services: ServicesDep, principal: EventsReader) -> Response:
    return _json({"event_types": await _service(services).list_all(principal.user_id)})


@router.put(
    "/event-types/{event_type}",
    operation_id="putEventType",
    summary="Register or update a type's JSON Schema (201 when new, 200 when updated)",
    response_model=EventTypeOut,
    responses={201: {"description": "Registered", "model": EventTypeOut}, **errors(*AUTHED, 415)},
)
async def put_event_type(
    event_type: EventTypePath,
    body: EventTypePut,
    request: Request,
    services: ServicesDep,
    principal: EventTypesManager,
) -> Response:
    stored, outcome = await _service(services).put(
        principal.user_id,
        event_type,
        body.schema_,
        body.mode,
        body.description,
        request_id=request_id_of(request.scope),
        ip=client_ip(request.scope),
    )
    out = render(stored, None, event_type)
    del out["events_last_24h"], out["last_seen_at"]
    return _json(out, 201 if outcome == "created" else 200)


@router.get(
    "/event-types/{event_type}",
    operation_id="getEventType",
    summary="One type: its schema (if registered) and activity (404 when neither registered nor seen)",
    response_model=EventTypeOut,
    responses=errors(*AUTHED),
)
async def get_event_type(
    event_type: EventTypePath, services: ServicesDep, principal: EventsReader
) -> Response:
    return _json(await _service(services).get(principal.user_id, event_type))


@router.get(
    "/event-types/{event_type}/versions",
    operation_id="listEventTypeVersions",
    summary="Every schema version the type had, oldest first",
    response_model=VersionList,
    responses=errors(*AUTHED),
)
async def list_versions(
    event_type: EventTypePath, services: ServicesDep, principal: EventsReader
) -> Response:
    return _json({"versions": await _service(services).versions(principal.user_id, event_type)})


@router.delete(
    "/event-types/{event_type}",
    status_code=204,
    operation_id="deleteEventType",
    summary="Unregister the type: validation stops (versions and audit records are kept)",
    responses=errors(*AUTHED),
)
async def delete_event_type(
    event_type: EventTypePath, request: Request, services: ServicesDep, principal: EventTypesManager
) -> Response:
    await _service(services).delete(
        principal.user_id, event_type, request_id=request_id_of(request.scope), ip=client_ip(request.scope)
    )
    return Response(status_code=204)


@router.post(
    "/event-types/{event_type}/infer",
    operation_id="inferEventTypeSchema",
    summary="A schema inferred from the user's most recent events of the type (up to 1,000)",
    response_model=InferResult,
    responses=errors(*AUTHED),
)
async def infer(event_type: EventTypePath, services: ServicesDep, principal: EventsReader) -> Response:
    return _json(await _service(services).infer(principal.user_id, event_type))


@router.post(
    "/event-types/{event_type}/validate",
    operation_id="validateEventTypePayload",
    summary="Dry run: check a payload against the current schema (or a draft one); stores nothing",
    response_model=ValidateResult,
    responses=errors(*AUTHED, 415),
)
async def validate(
    event_type: EventTypePath, body: ValidateInput, services: ServicesDep, principal: EventsReader
) -> Response:
    return _json(await _service(services).validate(principal.user_id, event_type, body.payload, body.schema_))
