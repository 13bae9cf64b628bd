"""Compiled JSON Schema validators, and the per-process cache ingestion asks.

Schemas are compiled once per (user, type, version) with jsonschema-rs (Rust: a 10-property
object validates in about a microsecond) and asserted formats (``date-time``, ``email``,
``uuid``...). The cache holds each user's catalog in memory, so an event whose type has no
schema costs a dict look-up. Other processes' changes arrive through per-user *stamps* in the
database (they grow with every change): at most once per ``ttl`` seconds a process reads them
and drops the catalogs whose stamp moved, so a change applies everywhere within ``ttl`` (<= 1 s)
without a database read per request; the process that made the change forgets at once.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

import jsonschema_rs

from triggers_api.errors import ValidationFailed
from triggers_api.storage.base import EventTypeMode, EventTypeRecord, Storage

#: Largest schema accepted, as compact JSON.
MAX_SCHEMA_BYTES = 64 * 1024
#: Violations reported per event (details of a 400, ``metadata.schema_violations``, /validate).
MAX_VIOLATIONS = 20
#: ``$schema`` values honoured; absent means draft 2020-12.
DRAFTS: dict[str, Any] = {
    "https://json-schema.org/draft/2020-12/schema": jsonschema_rs.Draft202012Validator,
    "https://json-schema.org/draft/2019-09/schema": jsonschema_rs.Draft201909Validator,
    "http://json-schema.org/draft-07/schema": jsonschema_rs.Draft7Validator,
}
_REF_KEYWORDS = ("$ref", "$dynamicRef", "$recursiveRef")


def _refuse_remote(uri: str) -> Any:
    """The retriever: nothing is ever fetched (a schema must be self-contained)."""
    raise ValueError(f"remote reference {uri} refused: schemas must be self-contained")


def pointer(parts: list[str | int] | tuple[str | int, ...], prefix: str = "") -> str:
    """RFC 6901 JSON Pointer of a path (``~`` and ``/`` escaped)."""
    return prefix + "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def _draft_of(schema: dict[str, Any]) -> Any:
    declared = schema.get("$schema")
    if declared is None:
        return jsonschema_rs.Draft202012Validator
    if not isinstance(declared, str):
        raise ValidationFailed("Invalid JSON Schema", details={"/schema/$schema": "must be a string"})
    cls = DRAFTS.get(
        declared.rstrip("#").replace("http://json-schema.org/draft/", "https://json-schema.org/draft/")
    )
    if cls is None:
        raise ValidationFailed(
            "Unsupported JSON Schema draft",
            details={"/schema/$schema": "must name draft 2020-12 (the default), 2019-09 or 7"},
        )
    return cls


def _remote_refs(node: Any, path: list[str | int], found: dict[str, str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _REF_KEYWORDS and isinstance(value, str) and not value.startswith("#"):
                found[pointer([*path, key], "/schema")] = "remote references are not allowed"
            _remote_refs(value, [*path, key], found)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            _remote_refs(value, [*path, index], found)


def compile_schema(schema: Any, size: int | None = None) -> Any:
    """A validator for a schema the user sent, or a 400 naming what is wrong with it."""
    if not isinstance(schema, dict):
        raise ValidationFailed("Invalid JSON Schema", details={"/schema": "must be a JSON object"})
    if size is not None and size > MAX_SCHEMA_BYTES:
        raise ValidationFailed(
            "Schema too large", details={"/schema": f"is {size} bytes; at most {MAX_SCHEMA_BYTES}"}
        )
    cls = _draft_of(schema)
    remote: dict[str, str] = {}
    _remote_refs(schema, [], remote)
    if remote:
        raise ValidationFailed("Remote $ref is not allowed", details=remote)
    try:
        jsonschema_rs.meta.validate(schema)
    except jsonschema_rs.ValidationError as exc:
        raise ValidationFailed(
            "Invalid JSON Schema", details={pointer(list(exc.instance_path), "/schema"): exc.message}
        ) from None
    except (ValueError, TypeError) as exc:
        raise ValidationFailed("Invalid JSON Schema", details={"/schema": str(exc)[:500]}) from None
    try:
        return cls(schema, validate_formats=True, retriever=_refuse_remote)
    except (jsonschema_rs.ValidationError, jsonschema_rs.ReferencingError) as exc:
        message = getattr(exc, "message", None) or str(exc)
        raise ValidationFailed(
            "Invalid JSON Schema", details={"/schema": message.split("\n")[0][:500]}
        ) from None
    except (ValueError, TypeError) as exc:
        raise ValidationFailed("Invalid JSON Schema", details={"/schema": str(exc)[:500]}) from None


def load_schema(raw: bytes) -> Any:
    """A stored schema: the stdlib parser keeps integers wider than 64 bits exact (orjson would
    make them floats); schemas are parsed only when compiled, so its speed does not matter."""
    return json.loads(raw)


def violations(validator: Any, payload: Any) -> list[tuple[str, str]]:
    """``(JSON Pointer under /payload, message)`` of each violation, at most MAX_VIOLATIONS."""
    if validator.is_valid(payload):
        return []
    found: list[tuple[str, str]] = []
    for error in validator.iter_errors(payload):
        found.append((pointer(list(error.instance_path), "/payload"), error.message))
        if len(found) >= MAX_VIOLATIONS:
            break
    return found


def as_details(found: list[tuple[str, str]]) -> dict[str, str]:
    """``{"/payload/amount": "-5 is less than the minimum of 0"}``; two at one place are joined."""
    details: dict[str, str] = {}
    for path, message in found:
        details[path] = f"{details[path]}; {message}" if path in details else message
    return details


@dataclass(slots=True, frozen=True)
class ActiveSchema:
    """What ingestion needs of a registered type: its version, mode and compiled validator."""

    version: int
    mode: str
    validator: Any  # None when mode is off


class SchemaCache:
    """Each user's catalog in memory, refreshed from the per-user stamps at most once per ``ttl``."""

    def __init__(self, storage: Storage, ttl: float = 1.0, max_users: int = 10_000) -> None:
        self._storage = storage
        self._ttl = ttl
        self._max_users = max_users
        self._catalogs: dict[str, dict[str, ActiveSchema]] = {}
        self._compiled: dict[tuple[str, str, int], Any] = {}
        self._stamps: dict[str, int] = {}
        self._next_check = 0.0
        self._checks = 0
        self._checking: asyncio.Future[None] | None = None

    def peek(self, user_id: str) -> dict[str, ActiveSchema] | None:
        """The hot path: the user's cached catalog, or None when it must be (re)loaded first."""
        if time.monotonic() >= self._next_check:
            return None
        return self._catalogs.get(user_id)

    async def catalog(self, user_id: str) -> dict[str, ActiveSchema]:
        if time.monotonic() >= self._next_check:
            await self._check_stamps()
        cached = self._catalogs.get(user_id)
        if cached is not None:
            return cached
        checks = self._checks
        records = await self._storage.list_event_types(user_id)
        loaded = {r.event_type: self._active(r) for r in records}
        if checks == self._checks:  # no stamp check ran meanwhile: nothing newer was missed
            if len(self._catalogs) >= self._max_users:
                self._catalogs.clear()
            self._catalogs[user_id] = loaded
        return loaded

    def forget(self, user_id: str) -> None:
        """This process changed the user's catalog: reload it on the next request."""
        self._catalogs.pop(user_id, None)

    def _active(self, record: EventTypeRecord) -> ActiveSchema:
        if record.mode == EventTypeMode.OFF:
            return ActiveSchema(record.version, record.mode, None)
        key = (record.user_id, record.event_type, record.version)
        validator = self._compiled.get(key)
        if validator is None:
            validator = compile_schema(load_schema(record.schema))
            if len(self._compiled) >= 10 * self._max_users:
                self._compiled.clear()
            self._compiled[key] = validator
        return ActiveSchema(record.version, record.mode, validator)

    async def _check_stamps(self) -> None:
        if self._checking is not None:  # one read at a time; the others wait for it
            await asyncio.shield(self._checking)
            return
        self._checking = asyncio.get_running_loop().create_future()
        started = time.monotonic()
        try:
            stamps = await self._storage.event_type_stamps()
            for user_id in set(stamps) | set(self._stamps):
                if stamps.get(user_id) != self._stamps.get(user_id):
                    self._catalogs.pop(user_id, None)
            self._stamps = stamps
            self._checks += 1
            self._next_check = started + self._ttl
        finally:
            checking, self._checking = self._checking, None
            checking.set_result(None)
