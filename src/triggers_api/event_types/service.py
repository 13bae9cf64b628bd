"""The catalog's operations: register, read, delete, infer and dry-run, per user.

Handlers stay thin: they call these, which talk to storage only through the Protocol and keep
this process's validator cache in step (the other processes follow through the stamps).
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from genson import SchemaBuilder

from triggers_api.errors import NotFound, ValidationFailed
from triggers_api.event_types.validators import (
    SchemaCache,
    compile_schema,
    load_schema,
    violations,
)
from triggers_api.events.service import new_log_id, us_to_iso
from triggers_api.storage.base import (
    AuditRecord,
    EventTypeActivity,
    EventTypeRecord,
    PutOutcome,
    Storage,
    now_us,
)

SEEN_WINDOW_US = 30 * 86_400 * 1_000_000
RECENT_WINDOW_US = 86_400 * 1_000_000
INFER_SAMPLE = 1000
DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"


def canonical(schema: dict[str, Any]) -> bytes:
    """Compact JSON with sorted keys: two spellings of one schema compare equal."""
    try:
        return orjson.dumps(schema, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # integers beyond 64 bits
        return json.dumps(schema, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def render(record: EventTypeRecord | None, activity: EventTypeActivity | None, name: str) -> dict[str, Any]:
    return {
        "event_type": name,
        "version": record.version if record else None,
        "schema": orjson.Fragment(record.schema) if record else None,
        "mode": record.mode if record else None,
        "description": record.description if record else None,
        "created_at": us_to_iso(record.created_us) if record else None,
        "updated_at": us_to_iso(record.updated_us) if record else None,
        "events_last_24h": activity.events_last_24h if activity else 0,
        "last_seen_at": us_to_iso(activity.last_seen_us) if activity else None,
    }


class EventTypes:
    """One per app: the storage and this process's :class:`SchemaCache`."""

    def __init__(self, storage: Storage, cache: SchemaCache) -> None:
        self.storage = storage
        self.cache = cache

    async def put(
        self,
        user_id: str,
        event_type: str,
        schema: dict[str, Any],
        mode: str,
        description: str | None,
        *,
        request_id: str,
        ip: str | None,
    ) -> tuple[EventTypeRecord, PutOutcome]:
        body = canonical(schema)
        compile_schema(schema, size=len(body))
        if description is not None:
            try:
                description.encode("utf-8")
            except UnicodeEncodeError:
                raise ValidationFailed(
                    "Invalid description", details={"description": "must be valid Unicode"}
                ) from None
        at = now_us()
        record = EventTypeRecord(user_id, event_type, 0, body, mode, description, at, at)

        def audit(action: str, stored: EventTypeRecord) -> AuditRecord:
            details = {"event_type": event_type, "version": stored.version, "mode": stored.mode}
            return AuditRecord(
                log_id=new_log_id(),
                user_id=user_id,
                action=action,
                ts_us=at,
                details=orjson.dumps(details)[:-1] + b',"schema":' + stored.schema + b"}",
                ip_address=ip or "",
                request_id=request_id,
            )

        stored, outcome = await self.storage.put_event_type(record, audit)
        if outcome is not PutOutcome.UNCHANGED:
            self.cache.forget(user_id)
        return stored, outcome

    async def get(self, user_id: str, event_type: str) -> dict[str, Any]:
        record = await self.storage.get_event_type(user_id, event_type)
        at = now_us()
        seen = await self.storage.event_type_activity(
            user_id, at - SEEN_WINDOW_US, at - RECENT_WINDOW_US, event_type
        )
        if record is None and not seen:
            raise NotFound("Event type not found", details={"event_type": event_type})
        return render(record, seen[0] if seen else None, event_type)

    async def list_all(self, user_id: str) -> list[dict[str, Any]]:
        at = now_us()
        records = {r.event_type: r for r in await self.storage.list_event_types(user_id)}
        activity = {
            a.event_type: a
            for a in await self.storage.event_type_activity(
                user_id, at - SEEN_WINDOW_US, at - RECENT_WINDOW_US
            )
        }
        return [render(records.get(n), activity.get(n), n) for n in sorted(set(records) | set(activity))]

    async def versions(self, user_id: str, event_type: str) -> list[dict[str, Any]]:
        found = await self.storage.event_type_versions(user_id, event_type)
        if not found:
            raise NotFound("Event type not found", details={"event_type": event_type})
        return [
            {
                "version": v.version,
                "schema": orjson.Fragment(v.schema),
                "mode": v.mode,
                "created_at": us_to_iso(v.created_us),
            }
            for v in found
        ]

    async def delete(self, user_id: str, event_type: str, *, request_id: str, ip: str | None) -> None:
        audit = AuditRecord(
            log_id=new_log_id(),
            user_id=user_id,
            action="event_type.deleted",
            ts_us=now_us(),
            details=orjson.dumps({"event_type": event_type}),
            ip_address=ip or "",
            request_id=request_id,
        )
        if not await self.storage.delete_event_type(user_id, event_type, audit):
            raise NotFound("Event type not found", details={"event_type": event_type})
        self.cache.forget(user_id)

    async def infer(self, user_id: str, event_type: str) -> dict[str, Any]:
        """genson merges the samples into one schema (types, properties, required-in-all)."""
        payloads = await self.storage.recent_payloads(user_id, event_type, INFER_SAMPLE)
        if not payloads:
            raise NotFound("No stored events of this type to infer from", details={"event_type": event_type})
        builder = SchemaBuilder(schema_uri=DRAFT_2020_12)
        for raw in payloads:  # the stdlib parser: an integer wider than 64 bits stays an integer
            builder.add_object(json.loads(raw))
        return {"schema": builder.to_schema(), "sample_size": len(payloads)}

    async def validate(
        self, user_id: str, event_type: str, payload: dict[str, Any], draft: dict[str, Any] | None
    ) -> dict[str, Any]:
        if draft is not None:
            validator, version = compile_schema(draft, size=len(canonical(draft))), None
        else:
            record = await self.storage.get_event_type(user_id, event_type)
            if record is None:
                raise NotFound("Event type has no schema", details={"event_type": event_type})
            validator, version = compile_schema(load_schema(record.schema)), record.version
        found = violations(validator, payload)
        return {
            "valid": not found,
            "errors": [{"path": p, "message": m} for p, m in found],
            "version": version,
        }
