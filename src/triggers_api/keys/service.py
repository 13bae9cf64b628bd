"""API key lifecycle shared by the CLI and the keys API: create (plaintext shown once), list, revoke."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import orjson

from triggers_api.auth import ALL_SCOPES, KEY_DISPLAY_CHARS, generate_api_key, hash_api_key
from triggers_api.errors import ValidationFailed
from triggers_api.events.service import new_log_id, us_to_iso
from triggers_api.storage.base import ApiKeyRecord, AuditRecord, Storage, now_us


@dataclass(slots=True)
class CreatedKey:
    record: ApiKeyRecord
    api_key: str  # the plaintext: returned once, never stored


def key_json(record: ApiKeyRecord) -> dict[str, Any]:
    """A key's public fields (document section 3.2), never its hash."""
    return {
        "key_id": record.key_id,
        "user_id": record.user_id,
        "name": record.name,
        "key_prefix": record.key_prefix,
        "created_at": us_to_iso(record.created_us),
        "last_used_at": us_to_iso(record.last_used_us),
        "expires_at": us_to_iso(record.expires_us),
        "rate_limit": record.rate_limit,
        "is_active": record.is_active,
        "scopes": list(record.scopes),
        "revoked_at": us_to_iso(record.revoked_us),
    }


async def create_key(
    storage: Storage,
    *,
    user_id: str,
    name: str,
    scopes: list[str] | tuple[str, ...],
    rate_limit: int,
    expires_us: int | None,
    request_id: str = "",
    ip_address: str = "",
) -> CreatedKey:
    unknown = [s for s in scopes if s not in ALL_SCOPES]
    if unknown:
        raise ValidationFailed("Unknown scope", details={"scopes": f"unknown: {', '.join(unknown)}"})
    if not scopes:
        raise ValidationFailed("At least one scope is required", details={"scopes": "must not be empty"})
    if expires_us is not None and expires_us <= now_us():
        raise ValidationFailed(
            "expires_at must be in the future", details={"expires_at": "must be in the future"}
        )
    plaintext = generate_api_key()
    created = now_us()
    record = ApiKeyRecord(
        key_id=str(uuid.uuid4()),
        user_id=user_id,
        key_hash=hash_api_key(plaintext),
        key_prefix=plaintext[:KEY_DISPLAY_CHARS],
        name=name,
        created_us=created,
        rate_limit=rate_limit,
        scopes=tuple(dict.fromkeys(scopes)),
        expires_us=expires_us,
    )
    audit = AuditRecord(
        log_id=new_log_id(),
        user_id=user_id,
        action="key.created",
        ts_us=created,
        details=orjson.dumps({"key_id": record.key_id, "name": name, "scopes": list(record.scopes)}),
        ip_address=ip_address,
        request_id=request_id,
    )
    await storage.insert_key(record, audit)
    return CreatedKey(record, plaintext)


async def revoke_key(
    storage: Storage, key_id: str, *, user_id: str | None, request_id: str = "", ip_address: str = ""
) -> ApiKeyRecord | None:
    at = now_us()
    audit = AuditRecord(
        log_id=new_log_id(),
        user_id=user_id or "",
        action="key.revoked",
        ts_us=at,
        details=orjson.dumps({"key_id": key_id}),
        ip_address=ip_address,
        request_id=request_id,
    )
    return await storage.revoke_key(key_id, user_id, at, audit)
