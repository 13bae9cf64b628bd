"""API keys, scopes, tenancy and per-key rate limits."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3

import httpx
from fastapi import FastAPI

from tests.conftest import new_key, services_of
from tests.integration.test_ingestion import assert_error
from triggers_api.storage.base import now_us

EVENT = {"event_type": "user.created", "payload": {"id": 1}}


async def test_missing_and_unknown_keys_are_401(client: httpx.AsyncClient) -> None:
    assert_error(await client.post("/v1/events", json=EVENT), 401, "UNAUTHORIZED")
    assert_error(await client.get("/v1/inbox", headers={"X-API-Key": "tk_" + "x" * 43}), 401, "UNAUTHORIZED")
    assert_error(await client.get("/v1/inbox", headers={"X-API-Key": ""}), 401, "UNAUTHORIZED")


async def test_keys_are_prefixed_random_and_stored_only_as_sha256(app: FastAPI, settings: object) -> None:
    first, second = await new_key(app), await new_key(app)
    assert first.startswith("tk_") and len(first) >= 3 + 43 and first != second
    path = services_of(app).settings.sqlite_path()
    with sqlite3.connect(path) as conn:
        hashes = {row[0] for row in conn.execute("SELECT key_hash FROM api_keys")}
        dump = "\n".join(conn.iterdump())
    assert hashlib.sha256(first.encode()).hexdigest() in hashes
    assert first not in dump and second not in dump


async def test_revoked_key_is_refused_from_the_next_request(app: FastAPI, client: httpx.AsyncClient) -> None:
    admin = {"X-API-Key": await new_key(app)}
    victim = await new_key(app, scopes=("events:write",))
    assert (await client.post("/v1/events", json=EVENT, headers={"X-API-Key": victim})).status_code == 201
    keys = (await client.get("/v1/keys", headers=admin)).json()["keys"]
    victim_id = next(k["key_id"] for k in keys if k["scopes"] == ["events:write"])
    assert (await client.delete(f"/v1/keys/{victim_id}", headers=admin)).status_code == 204
    response = await client.post("/v1/events", json=EVENT, headers={"X-API-Key": victim})
    assert_error(response, 401, "UNAUTHORIZED")


async def test_revoke_from_another_process_is_seen_within_a_second(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    key = await new_key(app)
    assert (await client.get("/v1/inbox", headers={"X-API-Key": key})).status_code == 200
    # Revoke behind the service's back, as a CLI or another API process would.
    path = services_of(app).settings.sqlite_path()
    with sqlite3.connect(path) as conn:
        conn.execute(
            "UPDATE api_keys SET is_active = 0 WHERE key_hash = ?",
            (hashlib.sha256(key.encode()).hexdigest(),),
        )
    await asyncio.sleep(1.05)
    assert_error(await client.get("/v1/inbox", headers={"X-API-Key": key}), 401, "UNAUTHORIZED")


async def test_expired_key_is_refused_like_an_unknown_one(app: FastAPI, client: httpx.AsyncClient) -> None:
    # Two seconds of life: enough for the first request on a loaded CI machine (300 ms was not).
    expires_us = now_us() + 2_000_000
    key = await new_key(app, expires_us=expires_us)
    assert (await client.get("/v1/inbox", headers={"X-API-Key": key})).status_code == 200
    await asyncio.sleep(max(0.0, (expires_us - now_us()) / 1_000_000) + 0.1)
    error = assert_error(await client.get("/v1/inbox", headers={"X-API-Key": key}), 401, "UNAUTHORIZED")
    unknown = assert_error(
        await client.get("/v1/inbox", headers={"X-API-Key": "tk_nope"}), 401, "UNAUTHORIZED"
    )
    assert error["message"] == unknown["message"]


async def test_missing_scope_is_403(app: FastAPI, client: httpx.AsyncClient) -> None:
    writer = {"X-API-Key": await new_key(app, scopes=("events:write",))}
    reader = {"X-API-Key": await new_key(app, scopes=("events:read",))}
    assert_error(await client.get("/v1/inbox", headers=writer), 403, "FORBIDDEN")
    assert_error(await client.post("/v1/events", json=EVENT, headers=reader), 403, "FORBIDDEN")
    assert_error(await client.get("/v1/keys", headers=reader), 403, "FORBIDDEN")
    assert_error(await client.get("/v1/audit-logs", headers=writer), 403, "FORBIDDEN")


async def test_another_users_event_is_404_like_an_unknown_one(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    alice = {"X-API-Key": await new_key(app, user_id="alice")}
    bob = {"X-API-Key": await new_key(app, user_id="bob")}
    event_id = (await client.post("/v1/events", json=EVENT, headers=alice)).json()["event_id"]
    unknown = "01a220b8-386f-7717-9025-a6db3f5991bb"
    for path in (f"/v1/events/{event_id}", f"/v1/events/{event_id}/status"):
        theirs = await client.get(path, headers=bob)
        missing = await client.get(path.replace(event_id, unknown), headers=bob)
        assert theirs.status_code == missing.status_code == 404
        assert theirs.json()["error"]["code"] == missing.json()["error"]["code"] == "NOT_FOUND"
    assert (await client.delete(f"/v1/events/{event_id}", headers=bob)).status_code == 404
    batch = await client.post("/v1/events/acknowledge/batch", json={"event_ids": [event_id]}, headers=bob)
    assert batch.json()["results"] == [{"event_id": event_id, "result": "not_found"}]
    assert (await client.get("/v1/inbox", headers=bob)).json()["events"] == []
    assert (await client.get("/v1/events", headers=bob)).json()["events"] == []
    # alice's event survived bob's attempts
    assert (await client.get(f"/v1/events/{event_id}", headers=alice)).status_code == 200


async def test_keys_api_is_scoped_to_the_callers_user(app: FastAPI, client: httpx.AsyncClient) -> None:
    alice = {"X-API-Key": await new_key(app, user_id="alice")}
    bob = {"X-API-Key": await new_key(app, user_id="bob")}
    created = await client.post("/v1/keys", json={"name": "ci"}, headers=alice)
    assert created.status_code == 201
    body = created.json()
    assert body["api_key"].startswith("tk_") and "key_hash" not in body
    assert body["scopes"] == ["events:write", "events:read"] and body["rate_limit"] == 1000
    assert body["user_id"] == "alice"
    bob_keys = (await client.get("/v1/keys", headers=bob)).json()["keys"]
    assert all(k["user_id"] == "bob" for k in bob_keys) and len(bob_keys) == 1
    assert "api_key" not in bob_keys[0] and "key_hash" not in bob_keys[0]
    assert_error(await client.delete(f"/v1/keys/{body['key_id']}", headers=bob), 404, "NOT_FOUND")
    assert (await client.get("/v1/inbox", headers={"X-API-Key": body["api_key"]})).status_code == 200
    assert_error(await client.delete("/v1/keys/not-a-uuid", headers=alice), 400, "VALIDATION_ERROR")


async def test_create_key_validates_its_input(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    for body in (
        {},
        {"name": ""},
        {"name": "x", "scopes": ["admin"]},
        {"name": "x", "scopes": []},
        {"name": "x", "rate_limit": 0},
        {"name": "x", "expires_at": "2001-01-01T00:00:00Z"},
        {"name": "x", "expires_at": "not a date"},
        {"name": "x", "key_hash": "abc"},
        {"name": "nul\u0000byte"},
        {"name": "x" * 101},
    ):
        assert_error(await client.post("/v1/keys", json=body, headers=auth), 400, "VALIDATION_ERROR")
    ok = await client.post(
        "/v1/keys",
        json={"name": "x", "scopes": ["events:read"], "rate_limit": 5, "expires_at": "2099-01-01T00:00:00Z"},
        headers=auth,
    )
    assert ok.status_code == 201
    assert ok.json()["expires_at"].startswith("2099-01-01T00:00:00")


async def test_every_authenticated_response_carries_ratelimit_headers(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    first = await client.get("/v1/inbox", headers=auth)
    second = await client.get("/v1/events/not-a-uuid", headers=auth)
    assert first.headers["ratelimit-policy"] == '"per-key";q=1000;w=60'
    assert first.headers["ratelimit"].startswith('"per-key";r=999;t=')
    assert second.status_code == 400
    assert second.headers["ratelimit"].startswith('"per-key";r=998;t=')


async def test_limit_exceeded_is_429_with_retry_after_and_other_keys_unaffected(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    limited = {"X-API-Key": await new_key(app, rate_limit=3)}
    other = {"X-API-Key": await new_key(app, rate_limit=3)}
    for _ in range(3):
        assert (await client.post("/v1/events", json=EVENT, headers=limited)).status_code == 201
    refused = await client.post("/v1/events", json=EVENT, headers=limited)
    error = assert_error(refused, 429, "RATE_LIMIT_EXCEEDED")
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["ratelimit"].startswith('"per-key";r=0;')
    assert refused.headers["ratelimit-policy"] == '"per-key";q=3;w=60'
    assert error["details"]["limit"] == 3  # type: ignore[index]
    assert (await client.get("/v1/inbox", headers=other)).status_code == 200
    # the refused request stored nothing
    assert len((await client.get("/v1/inbox", headers=other)).json()["events"]) == 3


async def test_last_used_at_is_kept_without_a_write_per_request(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    key = {"X-API-Key": await new_key(app)}
    before = (await client.get("/v1/keys", headers=key)).json()["keys"][0]
    for _ in range(5):
        await client.get("/v1/inbox", headers=key)
    path = services_of(app).settings.sqlite_path()
    with sqlite3.connect(path) as conn:
        (stored,) = conn.execute("SELECT last_used_us FROM api_keys").fetchone()
    assert before["last_used_at"] is None and stored is None  # nothing written per request
    await services_of(app).keys.flush_last_used()  # what the periodic job does
    after = (await client.get("/v1/keys", headers=key)).json()["keys"][0]
    assert after["last_used_at"] is not None


async def test_json_routes_accept_curl_default_content_types(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    for content_type in ("application/x-www-form-urlencoded", "text/plain", None):
        headers = {**auth, **({"Content-Type": content_type} if content_type else {})}
        created = await client.post("/v1/keys", content=b'{"name": "curl"}', headers=headers)
        assert created.status_code == 201, (content_type, created.text)
        acked = await client.post(
            "/v1/events/acknowledge/batch",
            content=b'{"event_ids": ["01a220b8-386f-7717-9025-a6db3f5991bb"]}',
            headers=headers,
        )
        assert acked.status_code == 200, (content_type, acked.text)
    refused = await client.post(
        "/v1/keys", content=b"<key/>", headers={**auth, "Content-Type": "application/xml"}
    )
    assert refused.status_code in (400, 415)
    assert refused.json()["error"]["code"] in ("VALIDATION_ERROR", "UNSUPPORTED_MEDIA_TYPE")
