"""The event-type catalog over HTTP: every endpoint and error, and validation at ingest
(enforce / warn / off, single and batch, JSON Pointer details, 2020-12 features, formats)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import new_key

ALL = ("events:write", "events:read", "keys:manage", "event_types:manage")
ORDER = {
    "type": "object",
    "properties": {
        "order_id": {"type": "string"},
        "amount": {"type": "number", "minimum": 0},
        "email": {"type": "string", "format": "email"},
    },
    "required": ["order_id", "amount"],
}


@pytest.fixture
async def h(app: FastAPI) -> dict[str, str]:
    return {"X-API-Key": await new_key(app, scopes=ALL)}


async def put(
    client: httpx.AsyncClient,
    h: dict[str, str],
    schema: Any,
    mode: str | None = None,
    name: str = "order.completed",
) -> httpx.Response:
    body: dict[str, Any] = {"schema": schema}
    if mode is not None:
        body["mode"] = mode
    return await client.put(f"/v1/event-types/{name}", json=body, headers=h)


async def send(
    client: httpx.AsyncClient, h: dict[str, str], payload: Any, name: str = "order.completed"
) -> httpx.Response:
    return await client.post("/v1/events", json={"event_type": name, "payload": payload}, headers=h)


async def stored_metadata(client: httpx.AsyncClient, h: dict[str, str], event_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/events/{event_id}", headers=h)
    assert response.status_code == 200
    metadata: dict[str, Any] = response.json()["metadata"]
    return metadata


# -- the catalog ----------------------------------------------------------------------------------
async def test_put_creates_then_updates_and_identical_put_changes_nothing(
    client: httpx.AsyncClient, h: dict[str, str]
) -> None:
    created = await put(client, h, ORDER)
    assert created.status_code == 201
    body = created.json()
    assert set(body) == {"event_type", "version", "schema", "mode", "description", "created_at", "updated_at"}
    assert (body["event_type"], body["version"], body["mode"], body["schema"]) == (
        "order.completed",
        1,
        "enforce",
        ORDER,
    )
    again = await put(client, h, ORDER, "enforce")
    assert again.status_code == 200 and again.json() == body
    moded = await put(client, h, ORDER, "warn")
    assert (moded.status_code, moded.json()["version"], moded.json()["mode"]) == (200, 1, "warn")
    changed = await put(client, h, {**ORDER, "required": ["order_id"]}, "warn")
    assert (changed.status_code, changed.json()["version"]) == (200, 2)
    versions = (await client.get("/v1/event-types/order.completed/versions", headers=h)).json()["versions"]
    assert [(v["version"], v["schema"]["required"]) for v in versions] == [
        (1, ["order_id", "amount"]),
        (2, ["order_id"]),
    ]
    audit = (await client.get("/v1/audit-logs", headers=h)).json()["audit_logs"]
    assert [a["action"] for a in audit if a["action"].startswith("event_type.")] == [
        "event_type.updated",
        "event_type.updated",
        "event_type.created",
    ]


async def test_catalog_lists_registered_and_seen_types_with_volume(
    client: httpx.AsyncClient, h: dict[str, str]
) -> None:
    await put(client, h, ORDER)
    for _ in range(2):
        assert (await send(client, h, {"order_id": "o1", "amount": 3})).status_code == 201
    assert (await send(client, h, {"anything": True}, name="user.signed_up")).status_code == 201
    listing = (await client.get("/v1/event-types", headers=h)).json()["event_types"]
    by_name = {t["event_type"]: t for t in listing}
    assert set(by_name) == {"order.completed", "user.signed_up"}
    assert by_name["order.completed"]["events_last_24h"] == 2 and by_name["order.completed"]["version"] == 1
    seen = by_name["user.signed_up"]
    assert (seen["version"], seen["schema"], seen["mode"], seen["events_last_24h"]) == (None, None, None, 1)
    assert seen["last_seen_at"].endswith("Z")
    one = (await client.get("/v1/event-types/user.signed_up", headers=h)).json()
    assert one == seen
    missing = await client.get("/v1/event-types/never.seen", headers=h)
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "NOT_FOUND")


async def test_delete_stops_validation_and_keeps_history_in_the_audit_log(
    client: httpx.AsyncClient, h: dict[str, str]
) -> None:
    await put(client, h, ORDER)
    assert (await send(client, h, {"amount": -1})).status_code == 400
    deleted = await client.delete("/v1/event-types/order.completed", headers=h)
    assert deleted.status_code == 204
    assert (await send(client, h, {"amount": -1})).status_code == 201
    assert (await client.delete("/v1/event-types/order.completed", headers=h)).status_code == 404
    audit = (await client.get("/v1/audit-logs?action=event_type.created", headers=h)).json()["audit_logs"]
    assert audit[0]["details"]["schema"] == ORDER  # the deleted schema stays on record
    assert (await client.get("/v1/audit-logs?action=event_type.deleted", headers=h)).json()["audit_logs"]


@pytest.mark.parametrize(
    ("schema", "pointer", "fragment"),
    [
        ({"type": "bogus"}, "/schema/type", "anyOf"),
        ({"properties": {"a": {"minimum": "zero"}}}, "/schema/properties/a/minimum", "number"),
        ({"$ref": "https://example.com/order.json"}, "/schema/$ref", "remote"),
        ({"$defs": {"a": {"$ref": "other.json#/x"}}}, "/schema/$defs/a/$ref", "remote"),
        ({"$schema": "http://json-schema.org/draft-04/schema#"}, "/schema/$schema", "2020-12"),
        ([1, 2], "schema", "valid dictionary"),
    ],
)
async def test_invalid_schemas_are_400_with_details(
    client: httpx.AsyncClient, h: dict[str, str], schema: Any, pointer: str, fragment: str
) -> None:
    response = await put(client, h, schema)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert fragment in error["details"][pointer]


async def test_oversize_schema_is_400(client: httpx.AsyncClient, h: dict[str, str]) -> None:
    big = {"type": "object", "description": "x" * (64 * 1024)}
    response = await put(client, h, big)
    assert response.status_code == 400
    assert "at most 65536" in response.json()["error"]["details"]["/schema"]


async def test_another_users_type_is_invisible(
    app: FastAPI, client: httpx.AsyncClient, h: dict[str, str]
) -> None:
    await put(client, h, ORDER)
    bob = {"X-API-Key": await new_key(app, user_id="bob", scopes=ALL)}
    for path in ("/v1/event-types/order.completed", "/v1/event-types/order.completed/versions"):
        assert (await client.get(path, headers=bob)).status_code == 404
    assert (await client.delete("/v1/event-types/order.completed", headers=bob)).status_code == 404
    assert (await client.get("/v1/event-types", headers=bob)).json() == {"event_types": []}
    validate = await client.post(
        "/v1/event-types/order.completed/validate", json={"payload": {}}, headers=bob
    )
    assert validate.status_code == 404
    assert (await send(client, bob, {"amount": -1})).status_code == 201  # bob has no schema


async def test_scopes_reading_needs_events_read_changing_needs_event_types_manage(
    app: FastAPI, client: httpx.AsyncClient, h: dict[str, str]
) -> None:
    await put(client, h, ORDER)
    reader = {"X-API-Key": await new_key(app, scopes=("events:read",))}
    writer = {"X-API-Key": await new_key(app, scopes=("events:write",))}
    assert (await client.get("/v1/event-types", headers=reader)).status_code == 200
    for response in (
        await put(client, reader, ORDER),
        await client.delete("/v1/event-types/order.completed", headers=reader),
        await client.get("/v1/event-types", headers=writer),
    ):
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "FORBIDDEN"
    assert (await put(client, reader, ORDER)).json()["error"]["details"] == {
        "required_scope": "event_types:manage"
    }


async def test_infer_builds_a_schema_from_stored_events(client: httpx.AsyncClient, h: dict[str, str]) -> None:
    samples = [
        {"order_id": "o1", "amount": 5, "note": "gift"},
        {"order_id": "o2", "amount": 7.5},
        {"order_id": "o3", "amount": 1, "tags": ["a"]},
    ]
    for payload in samples:
        assert (await send(client, h, payload)).status_code == 201
    response = await client.post("/v1/event-types/order.completed/infer", headers=h)
    assert response.status_code == 200
    body = response.json()
    assert body["sample_size"] == 3
    schema = body["schema"]
    assert schema["type"] == "object" and sorted(schema["required"]) == ["amount", "order_id"]
    assert schema["properties"]["order_id"] == {"type": "string"}
    assert schema["properties"]["tags"] == {"type": "array", "items": {"type": "string"}}
    # what it inferred is a schema the catalog accepts and every sample passes
    assert (await put(client, h, schema)).status_code == 201
    for payload in samples:
        assert (await send(client, h, payload)).status_code == 201
    assert (await send(client, h, {"amount": 1})).status_code == 400
    nothing = await client.post("/v1/event-types/never.sent/infer", headers=h)
    assert nothing.status_code == 404


async def test_validate_is_a_dry_run(client: httpx.AsyncClient, h: dict[str, str]) -> None:
    await put(client, h, ORDER)
    bad = await client.post(
        "/v1/event-types/order.completed/validate", json={"payload": {"order_id": 1, "amount": -5}}, headers=h
    )
    assert bad.status_code == 200
    assert bad.json() == {
        "valid": False,
        "errors": [
            {"path": "/payload/order_id", "message": '1 is not of type "string"'},
            {"path": "/payload/amount", "message": "-5 is less than the minimum of 0"},
        ],
        "version": 1,
    }
    good = await client.post(
        "/v1/event-types/order.completed/validate",
        json={"payload": {"order_id": "a", "amount": 0}},
        headers=h,
    )
    assert good.json() == {"valid": True, "errors": [], "version": 1}
    draft = await client.post(
        "/v1/event-types/order.completed/validate",
        json={"payload": {"x": 1}, "schema": {"type": "object", "required": ["y"]}},
        headers=h,
    )
    assert draft.json()["valid"] is False and draft.json()["version"] is None
    broken = await client.post(
        "/v1/event-types/order.completed/validate", json={"payload": {}, "schema": {"type": 5}}, headers=h
    )
    assert broken.status_code == 400
    listing = (await client.get("/v1/event-types/order.completed", headers=h)).json()
    assert listing["events_last_24h"] == 0  # nothing was stored


# -- ingestion --------------------------------------------------------------------------------------
async def test_enforce_refuses_with_a_json_pointer_per_violation(
    client: httpx.AsyncClient, h: dict[str, str]
) -> None:
    await put(client, h, ORDER)
    refused = await send(client, h, {"order_id": "o1", "amount": -5, "email": "not-an-email"})
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert error["details"] == {
        "/payload/amount": "-5 is less than the minimum of 0",
        "/payload/email": '"not-an-email" is not a "email"',
    }
    accepted = await send(client, h, {"order_id": "o1", "amount": 5})
    assert accepted.status_code == 201
    metadata = await stored_metadata(client, h, accepted.json()["event_id"])
    assert metadata["schema_version"] == 1 and "schema_violations" not in metadata


async def test_enforce_in_a_batch_fails_only_the_bad_item(
    client: httpx.AsyncClient, h: dict[str, str]
) -> None:
    await put(client, h, ORDER)
    response = await client.post(
        "/v1/events/batch",
        json={
            "events": [
                {"event_type": "order.completed", "payload": {"order_id": "o1", "amount": 1}},
                {"event_type": "order.completed", "payload": {"amount": -2}},
                {"event_type": "free.form", "payload": {"anything": 1}},
            ]
        },
        headers=h,
    )
    assert response.status_code == 201
    body = response.json()
    assert (body["success_count"], body["failure_count"]) == (2, 1)
    failure = body["results"][1]
    assert failure["index"] == 1 and failure["error"]["code"] == "VALIDATION_ERROR"
    assert failure["error"]["details"] == {
        "/payload": '"order_id" is a required property',
        "/payload/amount": "-2 is less than the minimum of 0",
    }
    first = await stored_metadata(client, h, body["results"][0]["event_id"])
    untyped = await stored_metadata(client, h, body["results"][2]["event_id"])
    assert first["schema_version"] == 1 and "schema_version" not in untyped


async def test_warn_stores_with_violations_and_counts_them(
    app: FastAPI, client: httpx.AsyncClient, h: dict[str, str]
) -> None:
    await put(client, h, ORDER, "warn")
    single = await send(client, h, {"order_id": "o1", "amount": -5})
    assert single.status_code == 201
    metadata = await stored_metadata(client, h, single.json()["event_id"])
    assert metadata["schema_version"] == 1
    assert metadata["schema_violations"] == [
        {"path": "/payload/amount", "message": "-5 is less than the minimum of 0"}
    ]
    batch = await client.post(
        "/v1/events/batch",
        json={
            "events": [
                {"event_type": "order.completed", "payload": {}},
                {"event_type": "order.completed", "payload": {"order_id": "x", "amount": 1}},
            ]
        },
        headers=h,
    )
    assert batch.json()["success_count"] == 2
    flagged = await stored_metadata(client, h, batch.json()["results"][0]["event_id"])
    clean = await stored_metadata(client, h, batch.json()["results"][1]["event_id"])
    assert len(flagged["schema_violations"]) == 2 and "schema_violations" not in clean
    exposition = (await client.get("/metrics")).text
    assert 'triggers_schema_violations_total{event_type="order.completed"} 2.0' in exposition


async def test_off_registers_without_validating(client: httpx.AsyncClient, h: dict[str, str]) -> None:
    await put(client, h, ORDER, "off")
    response = await send(client, h, {"amount": -5})
    assert response.status_code == 201
    metadata = await stored_metadata(client, h, response.json()["event_id"])
    assert "schema_version" not in metadata and "schema_violations" not in metadata
    batch = await client.post(
        "/v1/events/batch",
        json={"events": [{"event_type": "order.completed", "payload": {"amount": -1}}]},
        headers=h,
    )
    assert batch.json()["success_count"] == 1
    stored = await stored_metadata(client, h, batch.json()["results"][0]["event_id"])
    assert "schema_version" not in stored


async def test_draft_2019_09_is_honoured_when_named(client: httpx.AsyncClient, h: dict[str, str]) -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2019-09/schema",
        "type": "object",
        "properties": {"p": {"items": [{"type": "string"}], "additionalItems": False}},
    }
    assert (await put(client, h, schema)).status_code == 201
    assert (await send(client, h, {"p": ["a"]})).status_code == 201
    details = (await send(client, h, {"p": ["a", "b"]})).json()["error"]["details"]
    assert list(details) == ["/payload/p"]  # additionalItems: a 2019-09 keyword (gone in 2020-12)


async def test_violations_are_capped_at_twenty(client: httpx.AsyncClient, h: dict[str, str]) -> None:
    schema = {"type": "object", "additionalProperties": {"type": "string"}}
    await put(client, h, schema)
    refused = await send(client, h, {f"k{i}": i for i in range(30)})
    assert refused.status_code == 400
    assert len(refused.json()["error"]["details"]) == 20
    await put(client, h, schema, "warn")
    stored = await send(client, h, {f"k{i}": i for i in range(30)})
    assert len((await stored_metadata(client, h, stored.json()["event_id"]))["schema_violations"]) == 20


async def test_draft_2020_12_features(client: httpx.AsyncClient, h: dict[str, str]) -> None:
    schema = {
        "$defs": {
            "money": {
                "type": "object",
                "properties": {"cents": {"type": "integer", "minimum": 0}},
                "required": ["cents"],
            }
        },
        "type": "object",
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "at": {"type": "string", "format": "date-time"},
            "contact": {"type": "string", "format": "email"},
            "total": {"$ref": "#/$defs/money"},
            "point": {
                "type": "array",
                "prefixItems": [{"type": "number"}, {"type": "number"}],
                "items": False,
            },
        },
        "unevaluatedProperties": False,
    }
    assert (await put(client, h, schema)).status_code == 201
    good = {
        "id": "0f8fad5b-d9cb-469f-a165-70867728950e",
        "at": "2026-12-02T10:00:00Z",
        "contact": "jane@example.com",
        "total": {"cents": 100},
        "point": [1.5, 2],
    }
    assert (await send(client, h, good)).status_code == 201
    bad = {
        "id": "not-a-uuid",
        "at": "yesterday",
        "contact": "jane",
        "total": {"cents": -1},
        "point": [1, 2, 3],
        "extra": True,
    }
    details = (await send(client, h, bad)).json()["error"]["details"]
    assert details["/payload/id"] == '"not-a-uuid" is not a "uuid"'
    assert details["/payload/at"] == '"yesterday" is not a "date-time"'
    assert details["/payload/contact"] == '"jane" is not a "email"'
    assert details["/payload/total/cents"] == "-1 is less than the minimum of 0"
    assert details["/payload/point/2"] == "False schema does not allow 3"  # prefixItems + items
    assert "extra" in details["/payload"]  # unevaluatedProperties


async def test_draft_7_is_honoured_when_named(client: httpx.AsyncClient, h: dict[str, str]) -> None:
    # In draft 7, "items" as an array is the tuple form (2020-12 calls it prefixItems).
    schema = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "properties": {"p": {"items": [{"type": "string"}]}},
    }
    assert (await put(client, h, schema)).status_code == 201
    assert (await send(client, h, {"p": ["a", 1]})).status_code == 201
    assert (await send(client, h, {"p": [1]})).json()["error"]["details"] == {
        "/payload/p/0": '1 is not of type "string"'
    }


async def test_integers_wider_than_64_bits_stay_exact(client: httpx.AsyncClient, h: dict[str, str]) -> None:
    big = 2**70
    schema = {"type": "object", "properties": {"n": {"type": "integer", "maximum": big}}}
    assert (await put(client, h, schema)).status_code == 201
    ok = await client.post(
        "/v1/events", content=b'{"event_type":"order.completed","payload":{"n":%d}}' % big, headers=h
    )
    assert ok.status_code == 201
    refused = await client.post(
        "/v1/events", content=b'{"event_type":"order.completed","payload":{"n":%d}}' % (big + 1), headers=h
    )
    assert refused.json()["error"]["details"] == {
        "/payload/n": f"{big + 1} is greater than the maximum of {big}"
    }
    inferred = (await client.post("/v1/event-types/order.completed/infer", headers=h)).json()["schema"]
    assert inferred["properties"]["n"] == {"type": "integer"}


async def test_keys_api_grants_the_event_types_scope(client: httpx.AsyncClient, h: dict[str, str]) -> None:
    created = await client.post(
        "/v1/keys", json={"name": "schemas", "scopes": ["events:read", "event_types:manage"]}, headers=h
    )
    assert created.status_code == 201 and created.json()["scopes"] == ["events:read", "event_types:manage"]
    manager = {"X-API-Key": created.json()["api_key"]}
    assert (await put(client, manager, ORDER)).status_code == 201
