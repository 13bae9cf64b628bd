"""Keys API (document section 9.4): a ``keys:manage`` key manages its own user's keys only."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, Path, Request, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from triggers_api.auth import DEFAULT_SCOPES
from triggers_api.edge import request_id_of
from triggers_api.errors import NotFound, ValidationFailed
from triggers_api.keys.service import create_key, key_json, revoke_key
from triggers_api.openapi import AUTHED, errors
from triggers_api.runtime import KeysManager, ServicesDep, client_ip

router = APIRouter(prefix="/v1", tags=["Keys"])

ScopeName = Literal[
    "events:write", "events:read", "keys:manage", "event_types:manage", "subscriptions:manage"
]


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        min_length=1,
        max_length=100,
        pattern=r"^[^\x00-\x1f\x7f]+$",
        description="Human-readable name (no control characters)",
    )
    scopes: list[ScopeName] | None = Field(
        None, min_length=1, max_length=4, description="Defaults to events:write + events:read"
    )
    rate_limit: int | None = Field(None, ge=1, le=1_000_000, description="Requests per minute (default 1000)")
    expires_at: AwareDatetime | None = Field(None, description="Optional expiry (must be in the future)")


class ApiKey(BaseModel):
    key_id: str = Field(json_schema_extra={"format": "uuid"})
    user_id: str
    name: str
    key_prefix: str
    created_at: str = Field(json_schema_extra={"format": "date-time"})
    last_used_at: str | None = Field(None, json_schema_extra={"format": "date-time"})
    expires_at: str | None = Field(None, json_schema_extra={"format": "date-time"})
    rate_limit: int
    is_active: bool
    scopes: list[str]
    revoked_at: str | None = Field(None, json_schema_extra={"format": "date-time"})


class CreatedApiKey(ApiKey):
    api_key: str = Field(description="The plaintext key: shown only in this response")


class KeyList(BaseModel):
    keys: list[ApiKey]


KeyId = Annotated[str, Path(description="The key's UUID", json_schema_extra={"format": "uuid"})]


@router.get("/keys", operation_id="listKeys", response_model=KeyList, responses=errors(*AUTHED))
async def list_keys(services: ServicesDep, principal: KeysManager) -> Response:
    records = await services.storage.list_keys(principal.user_id)
    return Response(orjson.dumps({"keys": [key_json(r) for r in records]}), media_type="application/json")


@router.post(
    "/keys",
    status_code=201,
    operation_id="createKey",
    response_model=CreatedApiKey,
    responses=errors(*AUTHED, 415),
)
async def create(
    body: KeyCreate, request: Request, services: ServicesDep, principal: KeysManager
) -> Response:
    expires_us = None
    if body.expires_at is not None:
        expires_us = int(
            (body.expires_at - datetime(1970, 1, 1, tzinfo=body.expires_at.tzinfo)).total_seconds() * 1e6
        )
    created = await create_key(
        services.storage,
        user_id=principal.user_id,
        name=body.name,
        scopes=list(body.scopes) if body.scopes else list(DEFAULT_SCOPES),
        rate_limit=body.rate_limit or services.settings.default_rate_limit,
        expires_us=expires_us,
        request_id=request_id_of(request.scope),
        ip_address=client_ip(request.scope) or "",
    )
    out = key_json(created.record) | {"api_key": created.api_key}
    return Response(orjson.dumps(out), status_code=201, media_type="application/json")


@router.delete("/keys/{key_id}", status_code=204, operation_id="revokeKey", responses=errors(*AUTHED))
async def revoke(key_id: KeyId, request: Request, services: ServicesDep, principal: KeysManager) -> Response:
    try:
        canonical = str(uuid.UUID(key_id))
    except ValueError:
        raise ValidationFailed("key_id must be a UUID", details={"key_id": "must be a UUID"}) from None
    record = await revoke_key(
        services.storage,
        canonical,
        user_id=principal.user_id,
        request_id=request_id_of(request.scope),
        ip_address=client_ip(request.scope) or "",
    )
    if record is None:
        raise NotFound("API key not found", details={"key_id": key_id})
    services.keys.forget(record.key_hash)
    return Response(status_code=204)
