"""Replay routes: one dead letter, or every dead letter matching a filter."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from triggers_api.delivery.replay import replay
from triggers_api.edge import request_id_of
from triggers_api.errors import ApiError, EventGone, NotFound, ValidationFailed
from triggers_api.events.schemas import EventType
from triggers_api.events.service import parse_event_id
from triggers_api.inbox.service import parse_timestamp
from triggers_api.openapi import AUTHED, ErrorResponse, EventIdPath, errors
from triggers_api.runtime import EventsWriter, ServicesDep, client_ip
from triggers_api.storage.base import WORKFLOW_DESTINATION, EventStatus, ReplaySelector

router = APIRouter(prefix="/v1", tags=["Delivery"])


class NotReplayable(ApiError):
    status_code, code = 409, "EVENT_NOT_REPLAYABLE"
    default_message = "Only dead-lettered (failed) events can be replayed"


NOT_A_DEAD_LETTER: dict[int | str, dict[str, Any]] = {
    409: {"description": "The event is not a dead letter (status is not failed)", "model": ErrorResponse}
}


class ReplayAccepted(BaseModel):
    event_id: str = Field(json_schema_extra={"format": "uuid"})
    status: str
    message: str


class ReplayFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event_type: EventType | None = None
    subscription_id: str | None = Field(
        None, description="Only deliveries to this subscription ('workflow' too)"
    )
    from_timestamp: str | None = Field(None, json_schema_extra={"format": "date-time"})
    to_timestamp: str | None = Field(None, json_schema_extra={"format": "date-time"})


class ReplayCount(BaseModel):
    replayed: int


def _destination(subscription_id: str | None) -> str | None:
    """A subscription id (canonical UUID) or ``workflow``; anything else is a 400."""
    if subscription_id is None or subscription_id == WORKFLOW_DESTINATION:
        return subscription_id
    try:
        return str(uuid.UUID(subscription_id))
    except ValueError:
        raise ValidationFailed(
            "subscription_id must be a UUID or 'workflow'", details={"subscription_id": "must be a UUID"}
        ) from None


def _wake(request: Request) -> None:
    wake = request.app.state.services.extras.get("delivery_wake")
    if wake is not None:
        wake()


@router.post(
    "/events/{event_id}/replay",
    status_code=202,
    operation_id="replayEvent",
    summary="Put a dead-lettered event back into delivery with a fresh retry schedule",
    response_model=ReplayAccepted,
    responses={**errors(*AUTHED, 410), **NOT_A_DEAD_LETTER},
)
async def replay_event(
    event_id: EventIdPath,
    request: Request,
    services: ServicesDep,
    principal: EventsWriter,
    subscription_id: Annotated[
        str | None, Query(description="Replay only the dead-lettered delivery to this subscription")
    ] = None,
) -> Response:
    canonical = parse_event_id(event_id)
    record = await services.storage.get_event(principal.user_id, canonical)
    if record is None:
        raise NotFound("Event not found", details={"event_id": event_id})
    if record.acknowledged_us is not None:
        raise EventGone("The event was already acknowledged", details={"event_id": canonical})
    destination = _destination(subscription_id)
    selector = ReplaySelector(user_id=principal.user_id, event_ids=(canonical,), destination=destination)
    replayed = []
    fanned_out = bool(await services.storage.list_deliveries(principal.user_id, canonical))
    if record.status == EventStatus.FAILED or fanned_out:
        replayed = await replay(
            services.storage,
            selector,
            via="single",
            request_id=request_id_of(request.scope),
            ip_address=client_ip(request.scope),
        )
    if not replayed:
        raise NotReplayable(details={"event_id": canonical, "status": record.status})
    _wake(request)
    body = {"event_id": canonical, "status": EventStatus.QUEUED.value, "message": "Event queued for delivery"}
    return Response(orjson.dumps(body), status_code=202, media_type="application/json")


@router.post(
    "/events/replay",
    status_code=202,
    operation_id="replayEvents",
    summary="Replay every dead letter of yours matching the filters; returns how many",
    response_model=ReplayCount,
    responses=errors(*AUTHED, 415),
)
async def replay_events(
    body: ReplayFilter, request: Request, services: ServicesDep, principal: EventsWriter
) -> Response:
    selector = ReplaySelector(
        user_id=principal.user_id,
        event_type=body.event_type,
        from_us=parse_timestamp(body.from_timestamp, "from_timestamp"),
        to_us=parse_timestamp(body.to_timestamp, "to_timestamp"),
        destination=_destination(body.subscription_id),
    )
    replayed = await replay(
        services.storage,
        selector,
        via="bulk",
        request_id=request_id_of(request.scope),
        ip_address=client_ip(request.scope),
    )
    if replayed:
        _wake(request)
    return Response(orjson.dumps({"replayed": len(replayed)}), status_code=202, media_type="application/json")
