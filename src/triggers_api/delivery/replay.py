"""Replay: put dead letters back into delivery with a fresh retry schedule (history kept)."""

from __future__ import annotations

import orjson

from triggers_api.events.service import new_log_id, us_to_iso
from triggers_api.storage.base import (
    WORKFLOW_DESTINATION,
    AuditRecord,
    DeliveryAttempt,
    EventRecord,
    ReplaySelector,
    Storage,
    now_us,
)

CHUNK = 500  # events replayed per transaction


async def replay(
    storage: Storage, selector: ReplaySelector, *, via: str, request_id: str, ip_address: str | None
) -> list[str]:
    """Replay every dead letter the selector matches, in bounded transactions; returns their ids."""
    at = now_us()
    details = orjson.dumps({"via": via})

    def audit(event_id: str) -> AuditRecord:
        return AuditRecord(
            log_id=new_log_id(),
            user_id=selector.user_id,
            action="event.replayed",
            ts_us=at,
            event_id=event_id,
            details=details,
            ip_address=ip_address or "",
            request_id=request_id,
        )

    replayed: list[str] = []
    while True:
        chunk = await storage.replay_events(selector, at, CHUNK, audit)
        replayed += chunk
        if len(chunk) < CHUNK:
            return replayed


def attempt_json(number: int, attempt: DeliveryAttempt) -> dict[str, object]:
    return {
        "attempt": number,
        "started_at": us_to_iso(attempt.started_us),
        "duration_ms": round(attempt.duration_us / 1000, 3),
        "outcome": attempt.outcome,
        "response_status": attempt.response_status,
        "error": attempt.error,
        "response_body": attempt.response_body.decode("utf-8", "replace"),
        "destination": attempt.destination,
    }


async def attempts_json(storage: Storage, user_id: str, event_id: str) -> list[dict[str, object]]:
    """The ``attempts`` of ``GET /v1/events/{id}/status``: oldest first."""
    return [attempt_json(n, a) for n, a in enumerate(await storage.list_attempts(user_id, event_id), 1)]


_LEGACY_STATUS = {"received": "pending", "queued": "pending", "delivered": "delivered", "failed": "failed"}


async def deliveries_json(
    storage: Storage, user_id: str, event: EventRecord, attempts: list[dict[str, object]], workflow: bool
) -> list[dict[str, object]]:
    """The ``deliveries`` of ``GET /v1/events/{id}/status``: one entry per destination with its
    own attempts. An event that was not fanned out has at most the workflow's, read off the event."""
    rows = await storage.list_deliveries(user_id, event.event_id)
    if not rows:
        if not workflow and not attempts:
            return []
        status = _LEGACY_STATUS.get(event.status, event.status)
        if event.acknowledged_us is not None and not attempts:
            status = "cancelled"
        return [
            {
                "destination": WORKFLOW_DESTINATION,
                "status": status,
                "retry_count": max(0, len(attempts) - 1),
                "delivered_at": us_to_iso(event.delivered_us) if attempts else None,
                "attempts": attempts,
            }
        ]
    return [
        {
            "destination": d.destination,
            "status": d.status,
            "retry_count": max(0, d.attempts - 1),
            "delivered_at": us_to_iso(d.delivered_us),
            "next_attempt_at": us_to_iso(d.next_attempt_us) if d.status == "pending" else None,
            "attempts": [a for a in attempts if a["destination"] == d.destination],
        }
        for d in rows
    ]
