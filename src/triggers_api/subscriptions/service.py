"""Subscription rules: secrets, validation of types and filters, the SSRF check, audit records,
and the JSON the API answers with. Routes call these; storage stores what they decide."""

from __future__ import annotations

import base64
import secrets
from typing import Any

import orjson

from triggers_api.errors import NotFound, ValidationFailed
from triggers_api.events.service import new_event_id, new_log_id, us_to_iso
from triggers_api.storage.base import (
    AuditRecord,
    EventRecord,
    EventStatus,
    Storage,
    SubscriptionRecord,
    SubscriptionStatus,
    now_us,
)
from triggers_api.subscriptions.filters import FilterError, validate

#: How long a rotated-out secret keeps signing beside the new one.
ROTATION_OVERLAP_US = 24 * 3600 * 1_000_000
TEST_EVENT_TYPE = "triggers.test"


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode("ascii")


def check_filter(spec: Any) -> bytes | None:
    """The filter as stored JSON, or a 400 listing every problem."""
    if spec is None:
        return None
    try:
        validate(spec)
    except FilterError as exc:
        raise ValidationFailed(
            "The filter is invalid", details={p["loc"]: p["msg"] for p in exc.problems}
        ) from None
    return orjson.dumps(spec)


def subscription_json(record: SubscriptionRecord, *, secret: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "subscription_id": record.subscription_id,
        "target_url": record.target_url,
        "event_types": list(record.event_types),
        "filter": orjson.Fragment(record.filter) if record.filter is not None else None,
        "description": record.description,
        "metadata": orjson.Fragment(record.metadata),
        "status": record.status,
        "disabled_reason": record.disabled_reason,
        "created_at": us_to_iso(record.created_us),
        "updated_at": us_to_iso(record.updated_us),
        "last_success_at": us_to_iso(record.last_success_us),
        "failing_since": us_to_iso(record.failing_since_us),
    }
    if secret is not None:
        out["signing_secret"] = secret
    return out


def audit_record(
    record: SubscriptionRecord, action: str, *, request_id: str, ip_address: str, **details: Any
) -> AuditRecord:
    return AuditRecord(
        log_id=new_log_id(),
        user_id=record.user_id,
        action=action,
        ts_us=now_us(),
        event_id=None,
        details=orjson.dumps({"subscription_id": record.subscription_id, **details}),
        ip_address=ip_address,
        request_id=request_id,
    )


async def get_owned(storage: Storage, user_id: str, subscription_id: str) -> SubscriptionRecord:
    """The user's subscription, or 404 (another user's id answers exactly like an unknown one)."""
    record = await storage.get_subscription(user_id, subscription_id)
    if record is None:
        raise NotFound("Subscription not found", details={"subscription_id": subscription_id})
    return record


def new_subscription(
    user_id: str,
    target_url: str,
    event_types: list[str],
    filter_json: bytes | None,
    description: str,
    metadata: dict[str, Any],
) -> SubscriptionRecord:
    at = now_us()
    return SubscriptionRecord(
        subscription_id=new_event_id(),
        user_id=user_id,
        target_url=target_url,
        event_types=tuple(dict.fromkeys(event_types)),
        filter=filter_json,
        description=description,
        metadata=orjson.dumps(metadata),
        status=SubscriptionStatus.ACTIVE.value,
        disabled_reason=None,
        secret=new_secret(),
        previous_secret=None,
        previous_secret_until_us=None,
        created_us=at,
        updated_us=at,
    )


def rotate(record: SubscriptionRecord) -> str:
    """A new secret; the old one signs too for ``ROTATION_OVERLAP_US``."""
    at = now_us()
    record.previous_secret, record.previous_secret_until_us = record.secret, at + ROTATION_OVERLAP_US
    record.secret = new_secret()
    record.updated_us = at
    return record.secret


def test_event(user_id: str, subscription_id: str, expires_s: int) -> EventRecord:
    at = now_us()
    return EventRecord(
        event_id=new_event_id(),
        user_id=user_id,
        event_type=TEST_EVENT_TYPE,
        payload=orjson.dumps(
            {"message": "A test event from Triggers API", "subscription_id": subscription_id}
        ),
        status=EventStatus.RECEIVED.value,
        ts_us=at,
        expires_at=expires_s,
        metadata=orjson.dumps({"test": True}),
    )
