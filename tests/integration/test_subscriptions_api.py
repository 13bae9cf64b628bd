"""The subscriptions API over HTTP: CRUD, scopes, foreign ids, bad filters, the SSRF guard, the
audit trail, secret rotation. The target used where a public address is needed is an IP
literal (no DNS needed); the refused ones are the OWASP API7 classics."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import new_key, services_of

PUBLIC = "https://93.184.215.14/hooks/triggers"
ALL = ("events:write", "events:read", "keys:manage", "subscriptions:manage")


@pytest.fixture
async def manager(app: FastAPI) -> dict[str, str]:
    return {"X-API-Key": await new_key(app, scopes=ALL)}


async def create(client: httpx.AsyncClient, headers: dict[str, str], **body: Any) -> httpx.Response:
    return await client.post("/v1/subscriptions", json={"target_url": PUBLIC, **body}, headers=headers)


async def test_create_returns_the_subscription_and_its_secret_once(
    client: httpx.AsyncClient, manager: dict[str, str]
) -> None:
    response = await create(
        client,
        manager,
        event_types=["order.*", "user.created"],
        filter={"payload.amount": {"$gte": 100}},
        description="billing",
        metadata={"team": "finance"},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["signing_secret"].startswith("whsec_")
    assert body["event_types"] == ["order.*", "user.created"]
    assert body["filter"] == {"payload.amount": {"$gte": 100}}
    assert body["status"] == "active" and body["disabled_reason"] is None
    assert body["description"] == "billing" and body["metadata"] == {"team": "finance"}
    listed = (await client.get("/v1/subscriptions", headers=manager)).json()["subscriptions"]
    assert [s["subscription_id"] for s in listed] == [body["subscription_id"]]
    assert "signing_secret" not in listed[0]
    assert listed[0]["health"]["attempts_24h"] == 0
    one = await client.get(f"/v1/subscriptions/{body['subscription_id']}", headers=manager)
    assert one.status_code == 200 and "signing_secret" not in one.json()


async def test_the_scope_is_required(app: FastAPI, client: httpx.AsyncClient) -> None:
    plain = {"X-API-Key": await new_key(app, scopes=("events:write", "events:read", "keys:manage"))}
    response = await create(client, plain)
    assert response.status_code == 403
    assert response.json()["error"]["details"] == {"required_scope": "subscriptions:manage"}


async def test_another_users_subscription_answers_404_like_an_unknown_one(
    app: FastAPI, client: httpx.AsyncClient, manager: dict[str, str]
) -> None:
    mine = (await create(client, manager)).json()["subscription_id"]
    bob = {"X-API-Key": await new_key(app, user_id="bob", scopes=ALL)}
    unknown = "0190a5b2-0000-7000-8000-000000000000"
    for sid in (mine, unknown):
        for method, path, json in (
            ("GET", f"/v1/subscriptions/{sid}", None),
            ("PATCH", f"/v1/subscriptions/{sid}", {"description": "x"}),
            ("DELETE", f"/v1/subscriptions/{sid}", None),
            ("POST", f"/v1/subscriptions/{sid}/rotate-secret", None),
            ("POST", f"/v1/subscriptions/{sid}/test", None),
        ):
            response = await client.request(method, path, json=json, headers=bob)
            assert response.status_code == 404, (method, path, response.text)
            assert response.json()["error"]["code"] == "NOT_FOUND"
    assert (await client.get("/v1/subscriptions", headers=bob)).json() == {"subscriptions": []}
    assert (await client.get("/v1/subscriptions/not-a-uuid", headers=manager)).status_code == 400


@pytest.mark.parametrize(
    ("spec", "where"),
    [
        ({"payload.amount": {"$gte": "a", "$between": [1, 2]}}, "filter.payload.amount.$between"),
        ({"$or": {"event_type": "a"}}, "filter.$or"),
        ({"$and": []}, "filter.$and"),
        ({"body.amount": 1}, "filter.body.amount"),
        ({"payload.tags": {"$in": "x"}}, "filter.payload.tags.$in"),
        ({"payload.x": {"$exists": "yes"}}, "filter.payload.x.$exists"),
        ({"$not": 3}, "filter.$not"),
        ({"$where": "1"}, "filter.$where"),
    ],
)
async def test_invalid_filters_are_400_with_details(
    client: httpx.AsyncClient, manager: dict[str, str], spec: dict[str, Any], where: str
) -> None:
    response = await create(client, manager, filter=spec)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert where in error["details"], error["details"]


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.1:9000/hook",
        "http://10.0.0.1/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:8080/hook",
        "http://localhost:8080/hook",  # a DNS name that resolves to loopback
        "http://[::ffff:10.0.0.1]/hook",
        "http://224.0.0.1/hook",
        "http://192.168.1.10/hook",
        "ftp://93.184.215.14/hook",
        "http://user:pass@93.184.215.14/hook",
    ],
)
async def test_targets_that_are_not_public_are_refused(
    client: httpx.AsyncClient, manager: dict[str, str], target: str
) -> None:
    response = await client.post("/v1/subscriptions", json={"target_url": target}, headers=manager)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "DESTINATION_NOT_ALLOWED"


async def test_the_allowlist_and_allow_private_let_local_targets_in(tmp_path: Any) -> None:
    from tests.conftest import make_settings
    from triggers_api.app import create_app

    for overrides in (
        {"destination_allowlist": "127.0.0.0/8, localhost"},
        {"destination_allow_private": True},
    ):
        app = create_app(make_settings(tmp_path, **overrides))
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                headers = {"X-API-Key": await new_key(app, scopes=ALL)}
                ok = await client.post(
                    "/v1/subscriptions", json={"target_url": "http://127.0.0.1:9/x"}, headers=headers
                )
                assert ok.status_code == 201, ok.text
                metadata = await client.post(
                    "/v1/subscriptions", json={"target_url": "http://169.254.169.254/"}, headers=headers
                )
                assert metadata.status_code == 400  # the metadata address never


async def test_patch_pause_resume_and_reactivating_clears_the_reason(
    app: FastAPI, client: httpx.AsyncClient, manager: dict[str, str]
) -> None:
    sid = (await create(client, manager)).json()["subscription_id"]
    paused = await client.patch(f"/v1/subscriptions/{sid}", json={"status": "paused"}, headers=manager)
    assert paused.status_code == 200 and paused.json()["status"] == "paused"
    storage = services_of(app).storage
    from triggers_api.events.service import new_log_id
    from triggers_api.storage.base import AuditRecord

    def audit(record: Any) -> AuditRecord:
        return AuditRecord(new_log_id(), record.user_id, "subscription.disabled", 1, None, b"{}", "", "t")

    assert await storage.disable_subscription(sid, "target answered 410 Gone", 1, audit)
    disabled = (await client.get(f"/v1/subscriptions/{sid}", headers=manager)).json()
    assert disabled["status"] == "disabled" and disabled["disabled_reason"] == "target answered 410 Gone"
    again = await client.patch(f"/v1/subscriptions/{sid}", json={"status": "active"}, headers=manager)
    assert again.json()["status"] == "active" and again.json()["disabled_reason"] is None
    bad = await client.patch(f"/v1/subscriptions/{sid}", json={"status": "disabled"}, headers=manager)
    assert bad.status_code == 400
    cleared = await client.patch(
        f"/v1/subscriptions/{sid}", json={"filter": None, "event_types": ["a.*"]}, headers=manager
    )
    assert cleared.json()["filter"] is None and cleared.json()["event_types"] == ["a.*"]
    refused = await client.patch(
        f"/v1/subscriptions/{sid}", json={"target_url": "http://10.1.2.3/"}, headers=manager
    )
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "DESTINATION_NOT_ALLOWED"


async def test_rotation_delete_and_the_audit_trail(
    client: httpx.AsyncClient, manager: dict[str, str]
) -> None:
    created = (await create(client, manager)).json()
    sid = created["subscription_id"]
    rotated = await client.post(f"/v1/subscriptions/{sid}/rotate-secret", headers=manager)
    assert rotated.status_code == 200
    assert rotated.json()["signing_secret"].startswith("whsec_")
    assert rotated.json()["signing_secret"] != created["signing_secret"]
    await client.patch(f"/v1/subscriptions/{sid}", json={"description": "new"}, headers=manager)
    assert (await client.delete(f"/v1/subscriptions/{sid}", headers=manager)).status_code == 204
    assert (await client.get(f"/v1/subscriptions/{sid}", headers=manager)).status_code == 404
    assert (await client.delete(f"/v1/subscriptions/{sid}", headers=manager)).status_code == 404
    logs = (await client.get("/v1/audit-logs", headers=manager)).json()["audit_logs"]
    actions = [log["action"] for log in logs]
    for action in (
        "subscription.created",
        "subscription.secret_rotated",
        "subscription.updated",
        "subscription.deleted",
    ):
        assert action in actions, actions


async def test_bad_bodies_are_400_never_500(client: httpx.AsyncClient, manager: dict[str, str]) -> None:
    for body in (
        {},
        {"target_url": PUBLIC, "event_types": ["bad type!"]},
        {"target_url": PUBLIC, "unknown": 1},
        {"target_url": PUBLIC, "filter": "payload.x == 1"},
        {"target_url": "not a url"},
    ):
        response = await client.post("/v1/subscriptions", json=body, headers=manager)
        assert response.status_code == 400, (body, response.text)
    sid = (await create(client, manager)).json()["subscription_id"]
    empty = await client.patch(f"/v1/subscriptions/{sid}", json={}, headers=manager)
    assert empty.status_code == 400


async def test_a_dashboard_session_manages_subscriptions_with_a_keys_manage_key(tmp_path: Any) -> None:
    """Keys made before the scope existed (keys:manage only) still drive the whole dashboard."""
    from tests.conftest import make_settings
    from triggers_api.app import create_app
    from triggers_api.dashboard.session import CSRF_COOKIE

    app = create_app(make_settings(tmp_path))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            key = await new_key(app, scopes=("events:read", "keys:manage"))
            assert (await create(client, {"X-API-Key": key})).status_code == 403  # the key itself: no
            login = await client.post("/v1/auth/session", json={"api_key": key})
            assert login.status_code == 200
            created = await client.post(
                "/v1/subscriptions",
                json={"target_url": PUBLIC},
                headers={"X-CSRF-Token": client.cookies[CSRF_COOKIE]},
            )
            assert created.status_code == 201, created.text
            assert len((await client.get("/v1/subscriptions")).json()["subscriptions"]) == 1
