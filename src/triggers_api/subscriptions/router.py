"""Subscriptions API (REST Hooks): ``/v1/subscriptions``, scope ``subscriptions:manage``.

Zapier's pattern: POST a target URL to subscribe, DELETE to unsubscribe; a target answering
410 Gone is disabled by the worker. Another user's subscription id answers 404 like an unknown one.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, FastAPI, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from triggers_api.edge import request_id_of
from triggers_api.errors import ValidationFailed
from triggers_api.openapi import AUTHED, errors
from triggers_api.runtime import Services, ServicesDep, SubscriptionsManager, client_ip
from triggers_api.storage.base import AttemptCounts, SubscriptionStatus, now_us
from triggers_api.subscriptions.guard import DestinationGuard
from triggers_api.subscriptions.service import (
    audit_record,
    check_filter,
    get_owned,
    new_subscription,
    rotate,
    subscription_json,
    test_event,
)

router = APIRouter(prefix="/v1", tags=["Subscriptions"])

TypePattern = Annotated[
    str,
    Field(
        min_length=1,
        max_length=100,
        pattern=r"^(\*|[A-Za-z0-9_][A-Za-z0-9_.:-]*\*?)$",
        description="An exact event type, or a prefix ending in * (order.*)",
    ),
]
TargetUrl = Annotated[
    str, Field(min_length=8, max_length=2048, description="http(s) URL events are POSTed to")
]
Description = Annotated[str, Field(max_length=500, pattern=r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$")]


class SubscriptionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target_url: TargetUrl
    event_types: list[TypePattern] = Field(
        default_factory=list, max_length=50, description="Empty: every type"
    )
    filter: dict[str, Any] | None = Field(
        None, description="Conditions on the event JSON ($eq, $in, $or, ...)"
    )
    description: Description = ""
    metadata: dict[str, Any] = Field(default_factory=dict)


class SubscriptionUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target_url: TargetUrl | None = None
    event_types: list[TypePattern] | None = Field(None, max_length=50)
    filter: dict[str, Any] | None = None
    description: Description | None = None
    status: Literal["active", "paused"] | None = None


class Subscription(BaseModel):
    subscription_id: str = Field(json_schema_extra={"format": "uuid"})
    target_url: str
    event_types: list[str]
    filter: dict[str, Any] | None
    description: str
    metadata: dict[str, Any]
    status: Literal["active", "paused", "disabled"]
    disabled_reason: str | None
    created_at: str = Field(json_schema_extra={"format": "date-time"})
    updated_at: str = Field(json_schema_extra={"format": "date-time"})
    last_success_at: str | None = None
    failing_since: str | None = None
    health: dict[str, Any] | None = Field(None, description="Attempts in the last 24 h and circuit state")


class CreatedSubscription(Subscription):
    signing_secret: str = Field(description="whsec_...: shown only in this response")


class SubscriptionList(BaseModel):
    subscriptions: list[Subscription]


class RotatedSecret(BaseModel):
    signing_secret: str


class TestSent(BaseModel):
    event_id: str = Field(json_schema_extra={"format": "uuid"})
    message: str


SubscriptionId = Annotated[
    str, Path(description="The subscription's UUID", json_schema_extra={"format": "uuid"})
]
NOT_ALLOWED: dict[int | str, dict[str, Any]] = {
    400: {"description": "Invalid body, filter, or a target that is not allowed (DESTINATION_NOT_ALLOWED)"}
}


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _canonical(subscription_id: str) -> str:
    try:
        return str(uuid.UUID(subscription_id))
    except ValueError:
        raise ValidationFailed(
            "subscription_id must be a UUID", details={"subscription_id": "must be a UUID"}
        ) from None


def _guard(services: Services) -> DestinationGuard:
    guard = services.extras.get("destination_guard")
    if guard is None:
        guard = services.extras["destination_guard"] = DestinationGuard.from_settings(services.settings)
    assert isinstance(guard, DestinationGuard)
    return guard


def _who(request: Request) -> dict[str, str]:
    return {"request_id": request_id_of(request.scope), "ip_address": client_ip(request.scope) or ""}


def _wake(services: Services) -> None:
    wake = services.extras.get("fanout_wake")
    if wake is not None:
        wake()


def _health(services: Services, counts: dict[str, AttemptCounts], subscription_id: str) -> dict[str, Any]:
    c = counts.get(subscription_id, AttemptCounts(0, 0))
    circuit_of = services.extras.get("destination_circuit")
    return {
        "attempts_24h": c.total,
        "failures_24h": c.total - c.delivered,
        "failure_rate_24h": round((c.total - c.delivered) / c.total, 4) if c.total else None,
        "circuit": circuit_of(subscription_id) if circuit_of is not None else None,
    }


@router.post(
    "/subscriptions",
    status_code=201,
    operation_id="createSubscription",
    summary="Subscribe a target URL to events (REST Hooks)",
    response_model=CreatedSubscription,
    responses={**errors(*AUTHED, 415), **NOT_ALLOWED},
)
async def create_subscription(
    body: SubscriptionCreate, request: Request, services: ServicesDep, principal: SubscriptionsManager
) -> Response:
    filter_json = check_filter(body.filter)
    await _guard(services).check_url(body.target_url)
    record = new_subscription(
        principal.user_id,
        body.target_url,
        list(body.event_types),
        filter_json,
        body.description,
        body.metadata,
    )
    audit = audit_record(record, "subscription.created", target_url=record.target_url, **_who(request))
    await services.storage.insert_subscription(record, audit)
    return _json(subscription_json(record, secret=record.secret), 201)


@router.get(
    "/subscriptions",
    operation_id="listSubscriptions",
    response_model=SubscriptionList,
    responses=errors(*AUTHED),
)
async def list_subscriptions(services: ServicesDep, principal: SubscriptionsManager) -> Response:
    records = await services.storage.list_subscriptions(principal.user_id)
    counts = await services.storage.count_destination_attempts(principal.user_id, now_us() - 86_400_000_000)
    out = [subscription_json(r) | {"health": _health(services, counts, r.subscription_id)} for r in records]
    return _json({"subscriptions": out})


@router.get(
    "/subscriptions/{subscription_id}",
    operation_id="getSubscription",
    response_model=Subscription,
    responses=errors(*AUTHED),
)
async def get_subscription(
    subscription_id: SubscriptionId, services: ServicesDep, principal: SubscriptionsManager
) -> Response:
    record = await get_owned(services.storage, principal.user_id, _canonical(subscription_id))
    counts = await services.storage.count_destination_attempts(principal.user_id, now_us() - 86_400_000_000)
    return _json(subscription_json(record) | {"health": _health(services, counts, record.subscription_id)})


@router.patch(
    "/subscriptions/{subscription_id}",
    operation_id="updateSubscription",
    response_model=Subscription,
    responses={**errors(*AUTHED, 415), **NOT_ALLOWED},
)
async def update_subscription(
    subscription_id: SubscriptionId,
    body: SubscriptionUpdate,
    request: Request,
    services: ServicesDep,
    principal: SubscriptionsManager,
) -> Response:
    record = await get_owned(services.storage, principal.user_id, _canonical(subscription_id))
    given = body.model_fields_set
    changed: list[str] = []
    if "target_url" in given and body.target_url is not None and body.target_url != record.target_url:
        await _guard(services).check_url(body.target_url)
        record.target_url = body.target_url
        changed.append("target_url")
    if "event_types" in given and body.event_types is not None:
        record.event_types = tuple(dict.fromkeys(body.event_types))
        changed.append("event_types")
    if "filter" in given:
        record.filter = check_filter(body.filter)
        changed.append("filter")
    if "description" in given and body.description is not None:
        record.description = body.description
        changed.append("description")
    if "status" in given and body.status is not None and body.status != record.status:
        record.status = body.status
        if body.status == "active":
            record.disabled_reason = None  # re-activating a disabled one clears why
            record.failing_since_us = None
        changed.append("status")
    if not given:
        raise ValidationFailed("Nothing to update", details={"body": "give at least one field"})
    record.updated_us = now_us()
    audit = audit_record(
        record, "subscription.updated", changed=changed, status=record.status, **_who(request)
    )
    if not await services.storage.update_subscription(record, audit):
        raise ValidationFailed(
            "Subscription vanished while updating", details={"subscription_id": subscription_id}
        )
    if "status" in changed and record.status == SubscriptionStatus.ACTIVE:
        _wake(services)
    return _json(subscription_json(record))


@router.delete(
    "/subscriptions/{subscription_id}",
    status_code=204,
    operation_id="deleteSubscription",
    summary="Unsubscribe: pending deliveries to it are cancelled",
    responses=errors(*AUTHED),
)
async def delete_subscription(
    subscription_id: SubscriptionId, request: Request, services: ServicesDep, principal: SubscriptionsManager
) -> Response:
    record = await get_owned(services.storage, principal.user_id, _canonical(subscription_id))
    audit = audit_record(record, "subscription.deleted", target_url=record.target_url, **_who(request))
    if not await services.storage.delete_subscription(
        principal.user_id, record.subscription_id, now_us(), audit
    ):
        await get_owned(services.storage, principal.user_id, "00000000-0000-0000-0000-000000000000")  # 404
    return Response(status_code=204)


@router.post(
    "/subscriptions/{subscription_id}/rotate-secret",
    operation_id="rotateSubscriptionSecret",
    summary="New signing secret; the old one keeps signing alongside it for 24 h",
    response_model=RotatedSecret,
    responses=errors(*AUTHED),
)
async def rotate_secret(
    subscription_id: SubscriptionId, request: Request, services: ServicesDep, principal: SubscriptionsManager
) -> Response:
    record = await get_owned(services.storage, principal.user_id, _canonical(subscription_id))
    secret = rotate(record)
    audit = audit_record(record, "subscription.secret_rotated", **_who(request))
    await services.storage.update_subscription(record, audit)
    return _json({"signing_secret": secret})


@router.post(
    "/subscriptions/{subscription_id}/test",
    status_code=202,
    operation_id="testSubscription",
    summary="Send a triggers.test event to this subscription only",
    response_model=TestSent,
    responses=errors(*AUTHED),
)
async def send_test(
    subscription_id: SubscriptionId, request: Request, services: ServicesDep, principal: SubscriptionsManager
) -> Response:
    record = await get_owned(services.storage, principal.user_id, _canonical(subscription_id))
    ttl_s = int(services.settings.event_ttl_days * 86_400)
    event = test_event(principal.user_id, record.subscription_id, now_us() // 1_000_000 + ttl_s)
    audit = audit_record(record, "subscription.tested", event_id=event.event_id, **_who(request))
    await services.storage.insert_directed_event(event, [record.subscription_id], audit)
    _wake(services)
    return _json({"event_id": event.event_id, "message": "Test event queued for this subscription"}, 202)


def install(app: FastAPI, services: Services) -> None:
    """Join the API to the app (the delivery side is started by ``delivery.install``)."""
    app.include_router(router)
    services.extras["destination_guard"] = DestinationGuard.from_settings(services.settings)
