"""Inbox queries and acknowledgements.

Pages are keyset-paginated on (timestamp, event_id), never by offset: an opaque cursor names the
last row a client saw, so inserts and acknowledgements between two pages cannot make an event
that was present throughout appear twice or be skipped.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from datetime import UTC, datetime

import orjson

from triggers_api.errors import ValidationFailed
from triggers_api.events.service import new_log_id, parse_uuid
from triggers_api.storage.base import (
    AckResult,
    AuditRecord,
    EventQuery,
    EventRecord,
    Storage,
    now_us,
)

_CURSOR = re.compile(r"^(?P<kind>[a-z])1:(?P<ts>\d{1,19}):(?P<id>[0-9a-f-]{36})$")


def encode_cursor(kind: str, ts_us: int, row_id: str) -> str:
    raw = f"{kind}1:{ts_us}:{row_id}".encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(kind: str, cursor: str | None, field: str = "offset") -> tuple[int, str] | None:
    """Parse a cursor this listing issued; anything else (tampered, foreign) is a 400."""
    if cursor is None or cursor == "":
        return None
    bad = ValidationFailed(
        "Invalid pagination cursor", details={field: "not a cursor issued by this listing"}
    )
    if len(cursor) > 200:
        raise bad
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise bad from None
    match = _CURSOR.match(raw)
    if match is None or match["kind"] != kind:
        raise bad
    ts = int(match["ts"])
    if ts >= 2**63:  # larger than any stored time, and than a 64-bit database integer
        raise bad
    return ts, match["id"]


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


async def page(storage: Storage, query: EventQuery, kind: str) -> tuple[list[EventRecord], str | None]:
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
    cursor = encode_cursor(kind, rows[-1].ts_us, rows[-1].event_id) if has_more and rows else None
    return rows, cursor


async def page_json(
    storage: Storage, query: EventQuery, kind: str, *, with_ack: bool = False
) -> bytes | None:
    """The whole response body of one page, the events encoded by the database (no Python
    object per row); None when the storage cannot encode it (then :func:`page` and render)."""
    encoded = await storage.list_events_json(query, with_ack=with_ack)
    if encoded is None:
        return None
    cursor = encode_cursor(kind, *encoded.last) if encoded.has_more and encoded.last else None
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
