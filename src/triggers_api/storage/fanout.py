"""Fan-out rules shared by every backend: which destinations an event goes to, what one attempt
does to its delivery, and how the event's status follows from its deliveries.

Each backend reads the rows, applies these functions, and writes the result inside one
transaction, so the rules exist once (the subscriptions' matching lives in
``triggers_api/subscriptions/filters.py``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import orjson

from triggers_api.storage.base import (
    WORKFLOW_DESTINATION,
    AttemptOutcome,
    DeliveryStatus,
    EventRecord,
    EventStatus,
    SubscriptionRecord,
)
from triggers_api.subscriptions.filters import matches, type_matches

#: Columns of ``subscriptions``, in :class:`SubscriptionRecord` field order.
SUBSCRIPTION_COLUMNS = (
    "subscription_id, user_id, target_url, event_types, filter, description, metadata, status, "
    "disabled_reason, secret, previous_secret, previous_secret_until_us, created_us, updated_us, "
    "last_success_us, failing_since_us"
)
DELIVERY_COLUMNS = (
    "event_id, destination, user_id, status, attempts, round_attempts, next_attempt_us, delivered_us, "
    "last_attempt_us"
)


def subscription_row(s: SubscriptionRecord) -> tuple[Any, ...]:
    return (
        s.subscription_id,
        s.user_id,
        s.target_url,
        orjson.dumps(list(s.event_types)).decode(),
        s.filter,
        s.description,
        s.metadata,
        s.status,
        s.disabled_reason,
        s.secret,
        s.previous_secret,
        s.previous_secret_until_us,
        s.created_us,
        s.updated_us,
        s.last_success_us,
        s.failing_since_us,
    )


def subscription_from_row(row: Iterable[Any]) -> SubscriptionRecord:
    values = list(row)
    values[3] = tuple(orjson.loads(values[3]))
    values[4] = None if values[4] is None else bytes(values[4])
    values[6] = bytes(values[6])
    return SubscriptionRecord(*values)


def event_document(event: EventRecord) -> dict[str, Any]:
    """The event JSON as pushed (the fields a filter may look at)."""
    return {
        "event_id": event.event_id,
        "user_id": event.user_id,
        "event_type": event.event_type,
        "payload": orjson.loads(event.payload) if event.payload is not None else None,
        "metadata": orjson.loads(event.metadata),
        "timestamp": datetime.fromtimestamp(event.ts_us / 1_000_000, UTC).isoformat().replace("+00:00", "Z"),
        "ttl": event.expires_at,
    }


def subscription_matches(sub: SubscriptionRecord, event: EventRecord) -> bool:
    if sub.user_id != event.user_id or not type_matches(sub.event_types, event.event_type):
        return False
    if sub.filter is None:
        return True
    try:
        return matches(orjson.loads(sub.filter), event_document(event))
    except (ValueError, TypeError, RecursionError):
        return False


def plan_fanout(
    events: Iterable[EventRecord], subscriptions: Iterable[SubscriptionRecord], workflow: bool
) -> list[tuple[str, str, str, int]]:
    """(event_id, destination, user_id, due_us) of every delivery to create: one per matching
    active subscription, plus the workflow's when it is a destination, for events that match at
    least one subscription (the others stay on the single-destination path)."""
    by_user: dict[str, list[SubscriptionRecord]] = {}
    for s in subscriptions:
        if s.status == "active":
            by_user.setdefault(s.user_id, []).append(s)
    rows: list[tuple[str, str, str, int]] = []
    for e in events:
        subs = by_user.get(e.user_id)
        if not subs or e.acknowledged_us is not None:
            continue
        matched = [s.subscription_id for s in subs if subscription_matches(s, e)]
        if not matched:
            continue
        if workflow:
            rows.append((e.event_id, WORKFLOW_DESTINATION, e.user_id, e.ts_us))
        rows += [(e.event_id, sid, e.user_id, e.ts_us) for sid in matched]
    return rows


def derive_status(current: str, acknowledged: bool, deliveries: Iterable[tuple[str, int, bool]]) -> str:
    """The event status from its deliveries' (status, attempts, leased) (see Storage)."""
    if acknowledged:
        return EventStatus.DELIVERED.value
    pending = started = failed = delivered = False
    for status, attempts, leased in deliveries:
        if status == DeliveryStatus.PENDING:
            pending = True
            started = started or attempts > 0 or leased
        elif status == DeliveryStatus.FAILED:
            failed = True
        elif status == DeliveryStatus.DELIVERED:
            delivered = True
    if pending:
        return (
            EventStatus.QUEUED.value
            if started or current == EventStatus.QUEUED
            else EventStatus.RECEIVED.value
        )
    if failed:
        return EventStatus.FAILED.value
    if delivered:
        return EventStatus.DELIVERED.value
    return EventStatus.RECEIVED.value


def apply_delivery_attempt(
    row: dict[str, Any],
    outcome: str,
    lease_token: str,
    next_attempt_us: int | None,
    ended_us: int,
    started_us: int,
) -> bool:
    """Apply one attempt to a delivery row (keys: status, attempts, round_attempts, lease_token,
    lease_until_us, next_attempt_us, delivered_us, last_attempt_us), in place; whether the outcome
    applied (the attempt is counted either way)."""
    row["attempts"] += 1
    row["last_attempt_us"] = started_us
    applied = False
    if row["status"] == DeliveryStatus.PENDING:
        if outcome == AttemptOutcome.DELIVERED:
            row["status"] = DeliveryStatus.DELIVERED.value
            row["delivered_us"] = row["delivered_us"] or ended_us
            applied = True
        elif row["lease_token"] == lease_token:
            if outcome == AttemptOutcome.RETRY:
                row["next_attempt_us"] = next_attempt_us if next_attempt_us is not None else ended_us
                applied = True
            elif outcome == AttemptOutcome.FAILED:
                row["status"] = DeliveryStatus.FAILED.value
                applied = True
        if applied:
            row["lease_token"] = row["lease_until_us"] = None
            row["round_attempts"] += 1
    return applied
