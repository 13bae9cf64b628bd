"""Inbox queries and acknowledgements.

Pages are keyset-paginated on (timestamp, event_id), never by offset: an opaque cursor names the
last row a client saw, so inserts and acknowledgements between two pages cannot make an event
that was present throughout appear twice or be skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import orjson

from triggers_api.errors import ValidationFailed
from triggers_api.events.service import new_log_id, parse_uuid
from triggers_api.inbox.cursors import CursorCodec
from triggers_api.storage.base import (
    AckResult,
    AuditRecord,
    EventQuery,
    EventRecord,
    Storage,
    now_us,
)


def parse_timestamp(value: str | None, field: str) -> int | None:
    """ISO 8601 -> microseconds since the epoch (naive means UTC); impossible dates are a 400."""
    if value is None:
        return None
    text = value.strip()
    if text.endswith(("z", "Z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationFailed(
            f"{field} must be an ISO 8601 date-time", details={field: "not a valid ISO 8601 date-time"}
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        micros = (moment - datetime(1970, 1, 1, tzinfo=UTC)) // _ONE_US
    except OverflowError:
        raise ValidationFailed(f"{field} is out of range", details={field: "out of range"}) from None
    return int(micros)


_ONE_US = datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)


async def page(
    storage: Storage, query: EventQuery, kind: str, cursors: CursorCodec
) -> tuple[list[EventRecord], str | None]:
    """One page plus the cursor of the next (None when this was the last)."""
    probe = EventQuery(
        user_id=query.user_id,
        statuses=query.statuses,
        event_type=query.event_type,
        from_us=query.from_us,
        to_us=query.to_us,
        after=query.after,
        limit=query.limit + 1,
        newest_first=query.newest_first,
    )
    rows = await storage.list_events(probe)
    has_more = len(rows) > query.limit
    rows = rows[: query.limit]
    last = rows[-1] if has_more and rows else None
    cursor = cursors.encode(kind, query.user_id, last.ts_us, last.event_id) if last else None
    return rows, cursor


async def page_json(
    storage: Storage, query: EventQuery, kind: str, cursors: CursorCodec, *, with_ack: bool = False
) -> bytes | None:
    """The whole response body of one page, the events encoded by the database (no Python
    object per row); None when the storage cannot encode it (then :func:`page` and render)."""
    encoded = await storage.list_events_json(query, with_ack=with_ack)
    if encoded is None:
        return None
    last = encoded.last if encoded.has_more else None
    cursor = cursors.encode(kind, query.user_id, *last) if last else None
    return (
        b'{"events":'
        + encoded.events
        + b',"pagination":'
        + orjson.dumps({"limit": query.limit, "offset": cursor, "has_more": cursor is not None})
        + b"}"
    )


def fold_event_ids(raw_ids: Sequence[str]) -> list[str]:
    """Canonicalise ids, drop duplicates, keep request order."""
    seen: dict[str, None] = {}
    for index, raw in enumerate(raw_ids):
        try:
            seen.setdefault(parse_uuid(raw), None)
        except ValidationFailed:
            raise ValidationFailed(
                "event_ids must be UUIDs", details={f"event_ids.{index}": "must be a UUID"}
            ) from None
    return list(seen)


async def acknowledge(
    storage: Storage,
    user_id: str,
    event_ids: Sequence[str],
    *,
    request_id: str,
    ip_address: str | None,
    via: str,
) -> list[AckResult]:
    at = now_us()
    details = orjson.dumps({"via": via})
    audit = {
        event_id: AuditRecord(
            log_id=new_log_id(),
            user_id=user_id,
            action="event.acknowledged",
            ts_us=at,
            event_id=event_id,
            details=details,
            ip_address=ip_address or "",
            request_id=request_id,
        )
        for event_id in event_ids
    }
    return await storage.acknowledge(user_id, event_ids, at, audit)
