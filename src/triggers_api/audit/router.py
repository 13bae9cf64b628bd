"""The audit log (document section 3.3): append-only, readable by ``keys:manage`` for its own user."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from triggers_api.events.service import parse_uuid, us_to_iso
from triggers_api.openapi import AUTHED, errors
from triggers_api.runtime import KeysManager, ServicesDep
from triggers_api.storage.base import AuditQuery, AuditRecord

router = APIRouter(prefix="/v1", tags=["Audit"])


class AuditLog(BaseModel):
    log_id: str
    event_id: str | None
    user_id: str
    action: str
    timestamp: str = Field(json_schema_extra={"format": "date-time"})
    details: dict[str, Any]
    ip_address: str
    request_id: str


class AuditPage(BaseModel):
    audit_logs: list[AuditLog]
    pagination: dict[str, int | str | bool | None]


def audit_json(record: AuditRecord) -> dict[str, Any]:
    return {
        "log_id": record.log_id,
        "event_id": record.event_id,
        "user_id": record.user_id,
        "action": record.action,
        "timestamp": us_to_iso(record.ts_us),
        "details": orjson.Fragment(record.details),
        "ip_address": record.ip_address,
        "request_id": record.request_id,
    }


@router.get(
    "/audit-logs",
    operation_id="listAuditLogs",
    summary="The user's audit records, newest first",
    response_model=AuditPage,
    responses=errors(*AUTHED),
)
async def list_audit_logs(
    services: ServicesDep,
    principal: KeysManager,
    event_id: Annotated[str | None, Query(json_schema_extra={"format": "uuid"})] = None,
    action: Annotated[str | None, Query(min_length=1, max_length=64, pattern=r"^[a-z_.]+$")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[str | None, Query(description="Opaque cursor from the previous page")] = None,
) -> Response:
    query = AuditQuery(
        user_id=principal.user_id,
        event_id=parse_uuid(event_id) if event_id is not None else None,
        action=action,
        before=services.cursors.decode("a", principal.user_id, offset),
        limit=limit + 1,
    )
    rows = await services.storage.list_audit(query)
    has_more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if has_more and rows else None
    cursor = services.cursors.encode("a", principal.user_id, last.ts_us, last.log_id) if last else None
    body = {
        "audit_logs": [audit_json(r) for r in rows],
        "pagination": {"limit": limit, "offset": cursor, "has_more": cursor is not None},
    }
    return Response(orjson.dumps(body), media_type="application/json")
