"""The dashboard's server side: session cookies, CSRF, refresh, logout, the secret, and /dashboard."""

from __future__ import annotations

import stat
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import make_settings, new_key
from triggers_api.app import create_app
from triggers_api.config import Settings
from triggers_api.dashboard.session import CSRF_COOKIE, REFRESH_COOKIE, SESSION_COOKIE, SessionManager
from triggers_api.dashboard.static import CONTENT_SECURITY_POLICY
from triggers_api.dashboard.tokens import Claims, TokenSigner, load_secret

JSON = {"Content-Type": "application/json"}


@asynccontextmanager
async def running(
    settings: Settings, base_url: str = "http://testserver"
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 5151))
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
            yield app, client


@pytest.fixture
def fast_settings(tmp_path: Path) -> Settings:
    # No key cache: a revoke must end the session at the very next request.
    return make_settings(tmp_path, key_cache_ttl=0.0)


async def login(client: httpx.AsyncClient, api_key: str) -> httpx.Response:
    response = await client.post("/v1/auth/session", json={"api_key": api_key})
    assert response.status_code == 200, response.text
    return response


def set_cookies(response: httpx.Response) -> dict[str, str]:
    """Set-Cookie headers by cookie name (the whole header value)."""
    return {value.split("=", 1)[0]: value for value in response.headers.get_list("set-cookie")}


def csrf(client: httpx.AsyncClient) -> dict[str, str]:
    return {"X-CSRF-Token": client.cookies[CSRF_COOKIE]}


async def test_login_sets_httponly_strict_cookies_and_never_returns_the_key(
    fast_settings: Settings,
) -> None:
    async with running(fast_settings) as (app, client):
        api_key = await new_key(app, "alice")
        response = await login(client, api_key)
        body = response.json()
        assert body["user_id"] == "alice"
        assert "keys:manage" in body["scopes"]
        assert api_key not in response.text
        cookies = set_cookies(response)
        session = cookies[SESSION_COOKIE]
        assert "HttpOnly" in session and "SameSite=Strict" in session and "Path=/;" in session + ";"
        assert "Max-Age=3600" in session
        assert "Secure" not in session  # plain HTTP: a Secure cookie would never come back
        assert "Path=/v1/auth" in cookies[REFRESH_COOKIE] and "HttpOnly" in cookies[REFRESH_COOKIE]
        assert f"Max-Age={7 * 86400}" in cookies[REFRESH_COOKIE]
        assert "HttpOnly" not in cookies[CSRF_COOKIE]  # the page must read it to echo it
        assert body["csrf_token"] == client.cookies[CSRF_COOKIE]
        assert response.headers["cache-control"] == "no-store"


async def test_cookies_are_secure_over_https(fast_settings: Settings) -> None:
    async with running(fast_settings, base_url="https://testserver") as (app, client):
        response = await login(client, await new_key(app, "alice"))
        for value in set_cookies(response).values():
            assert "Secure" in value


async def test_login_refuses_bad_keys_missing_scope_and_non_json(fast_settings: Settings) -> None:
    async with running(fast_settings) as (app, client):
        reader = await new_key(app, "alice", scopes=("events:read",))
        assert (await client.post("/v1/auth/session", json={"api_key": "tk_nope"})).status_code == 401
        forbidden = await client.post("/v1/auth/session", json={"api_key": reader})
        assert forbidden.status_code == 403
        assert forbidden.json()["error"]["code"] == "FORBIDDEN"
        form = await client.post(
            "/v1/auth/session",
            content=f"api_key={reader}",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert form.status_code in (400, 415)
        assert form.json()["error"]["request_id"]
        extra = await client.post("/v1/auth/session", json={"api_key": reader, "admin": True})
        assert extra.status_code == 400
        assert (await client.post("/v1/auth/session", content=b"{", headers=JSON)).status_code == 400
        assert SESSION_COOKIE not in client.cookies


async def test_session_cookie_authenticates_reads_of_its_own_user_only(fast_settings: Settings) -> None:
    async with running(fast_settings) as (app, client):
        await new_key(app, "bob")
        await login(client, await new_key(app, "alice"))
        keys = await client.get("/v1/keys")
        assert keys.status_code == 200
        assert {k["user_id"] for k in keys.json()["keys"]} == {"alice"}
        assert "ratelimit" in keys.headers  # sessions count against their key's rate limit
        assert (await client.get("/v1/events")).status_code == 200
        assert (await client.get("/v1/auth/session")).json()["user_id"] == "alice"


async def test_mutations_need_the_csrf_token_of_the_session(fast_settings: Settings) -> None:
    async with running(fast_settings) as (app, client):
        await login(client, await new_key(app, "alice"))
        no_token = await client.post("/v1/keys", json={"name": "ci"})
        assert no_token.status_code == 403
        assert "csrf" in no_token.json()["error"]["details"]
        wrong = await client.post("/v1/keys", json={"name": "ci"}, headers={"X-CSRF-Token": "forged"})
        assert wrong.status_code == 403
        # The ingestion fast path consults the same resolver.
        ingest = await client.post("/v1/events", json={"event_type": "a.b", "payload": {}})
        assert ingest.status_code == 403
        cross = await client.post(
            "/v1/keys", json={"name": "ci"}, headers={**csrf(client), "Origin": "https://evil.example"}
        )
        assert cross.status_code == 403
        created = await client.post("/v1/keys", json={"name": "ci"}, headers=csrf(client))
        assert created.status_code == 201, created.text
        same_origin = await client.post(
            "/v1/keys", json={"name": "ci2"}, headers={**csrf(client), "Origin": "http://testserver"}
        )
        assert same_origin.status_code == 201


async def test_an_api_key_header_wins_over_the_cookie(fast_settings: Settings) -> None:
    async with running(fast_settings) as (app, client):
        await login(client, await new_key(app, "alice"))
        bob = await new_key(app, "bob")
        response = await client.post("/v1/keys", json={"name": "no-csrf-needed"}, headers={"X-API-Key": bob})
        assert response.status_code == 201
        assert response.json()["user_id"] == "bob"


async def test_tampered_foreign_and_expired_tokens_are_refused(
    fast_settings: Settings, tmp_path: Path
) -> None:
    async with running(fast_settings) as (app, client):
        await login(client, await new_key(app, "alice"))
        token = client.cookies[SESSION_COOKIE]
        head, body, mac = token.split(".")
        client.cookies.set(SESSION_COOKIE, f"{head}.{body}x.{mac}")
        assert (await client.get("/v1/keys")).status_code == 401
        claims = app.state.services.extras["sessions"].signer.verify(token, "access", int(time.time()))
        foreign = TokenSigner(b"another-secret-of-at-least-32-bytes!!").sign(claims)
        client.cookies.set(SESSION_COOKIE, foreign)
        assert (await client.get("/v1/keys")).status_code == 401
        signer: TokenSigner = app.state.services.extras["sessions"].signer
        client.cookies.set(SESSION_COOKIE, signer.sign(_replace(claims, exp=int(time.time()) - 1)))
        refused = await client.get("/v1/keys")
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "UNAUTHORIZED"
        # A refresh token is not an access token.
        client.cookies.set(SESSION_COOKIE, signer.sign(_replace(claims, kind="refresh")))
        assert (await client.get("/v1/keys")).status_code == 401


def _as_dict(claims: Claims) -> dict[str, object]:
    return {name: getattr(claims, name) for name in Claims.__dataclass_fields__}


def _replace(claims: Claims, **changes: object) -> Claims:
    return Claims(**{**_as_dict(claims), **changes})  # type: ignore[arg-type]


async def test_refresh_issues_a_new_session_token_until_the_max_age(fast_settings: Settings) -> None:
    async with running(fast_settings) as (app, client):
        await login(client, await new_key(app, "alice"))
        client.cookies.delete(SESSION_COOKIE)
        assert (await client.get("/v1/keys")).status_code == 401
        assert (await client.post("/v1/auth/refresh")).status_code == 403  # CSRF applies
        refreshed = await client.post("/v1/auth/refresh", headers=csrf(client))
        assert refreshed.status_code == 200, refreshed.text
        assert SESSION_COOKIE in set_cookies(refreshed)
        assert REFRESH_COOKIE not in set_cookies(refreshed)  # the 7-day limit is not extended
        assert (await client.get("/v1/keys")).status_code == 200
        # A refresh token whose login is older than the max age is refused.
        signer: TokenSigner = app.state.services.extras["sessions"].signer
        old = signer.verify(client.cookies[REFRESH_COOKIE], "refresh", int(time.time()))
        stale = _replace(old, auth_time=int(time.time()) - 8 * 86_400)
        client.cookies.set(REFRESH_COOKIE, signer.sign(stale), path="/v1/auth")
        assert (await client.post("/v1/auth/refresh", headers=csrf(client))).status_code == 401


async def test_revoking_the_key_ends_its_sessions(fast_settings: Settings) -> None:
    async with running(fast_settings) as (app, client):
        await login(client, await new_key(app, "alice"))
        me = (await client.get("/v1/auth/session")).json()
        assert (await client.delete(f"/v1/keys/{me['key_id']}", headers=csrf(client))).status_code == 204
        after = await client.get("/v1/keys")
        assert after.status_code == 401
        assert (await client.post("/v1/auth/refresh", headers=csrf(client))).status_code == 401


async def test_logout_clears_the_cookies_and_ends_the_session(fast_settings: Settings) -> None:
    async with running(fast_settings) as (app, client):
        await login(client, await new_key(app, "alice"))
        stolen = client.cookies[SESSION_COOKIE]
        out = await client.post("/v1/auth/logout")
        assert out.status_code == 204
        cleared = set_cookies(out)
        assert all("Max-Age=0" in cleared[name] for name in (SESSION_COOKIE, REFRESH_COOKIE, CSRF_COOKIE))
        assert SESSION_COOKIE not in client.cookies
        assert (await client.get("/v1/keys")).status_code == 401
        client.cookies.set(SESSION_COOKIE, stolen)  # a copy taken before logout
        assert (await client.get("/v1/keys")).status_code == 401
        assert (await client.post("/v1/auth/logout")).status_code == 204  # idempotent


async def test_generated_secret_is_persisted_so_sessions_survive_a_restart(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    async with running(settings) as (app, client):
        await login(client, await new_key(app, "alice"))
        token = client.cookies[SESSION_COOKIE]
    secret_file = settings.session_secret_path()
    assert secret_file.parent == tmp_path
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert len(secret_file.read_bytes()) >= 32
    async with running(settings) as (_app, client):
        client.cookies.set(SESSION_COOKIE, token)
        again = await client.get("/v1/auth/session")
        assert again.status_code == 200, again.text
        assert again.json()["user_id"] == "alice"


async def test_configured_secret_is_used_and_nothing_is_written(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, session_secret="s" * 40)
    assert load_secret(settings) == b"s" * 40
    manager = SessionManager(settings, storage=None)  # type: ignore[arg-type]
    assert manager.signer is manager.signer
    assert not settings.session_secret_path().exists()


async def test_session_routes_without_a_session(client: httpx.AsyncClient) -> None:
    me = await client.get("/v1/auth/session")
    assert me.status_code == 401
    assert me.json()["error"]["code"] == "UNAUTHORIZED"
    assert (await client.post("/v1/auth/refresh")).status_code == 401
    assert (await client.post("/v1/auth/logout")).status_code == 204
    # Without key and cookie the API answers as before.
    assert (await client.get("/v1/keys")).json()["error"]["message"] == "Missing or invalid API key"


# -- serving the built app -----------------------------------------------------------------------


@pytest.fixture
def built(tmp_path: Path) -> Path:
    root = tmp_path / "built"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text("<!doctype html><div id=root></div>")
    (root / "assets" / "index-abc123.js").write_text("console.log(1)")
    (root / "favicon.svg").write_text("<svg/>")
    (tmp_path / "secret.txt").write_text("not for you")
    return root


async def test_dashboard_serves_deep_links_assets_and_strict_headers(tmp_path: Path, built: Path) -> None:
    async with running(make_settings(tmp_path, dashboard_dir=built)) as (_app, client):
        for path in ("/dashboard", "/dashboard/", "/dashboard/events/0190f3a0-aaaa", "/dashboard/keys"):
            page = await client.get(path)
            assert page.status_code == 200, path
            assert page.text.startswith("<!doctype html>")
            assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
            assert page.headers["x-frame-options"] == "DENY"
            assert page.headers["x-content-type-options"] == "nosniff"
            assert page.headers["cache-control"] == "no-cache"
            assert "strict-transport-security" not in page.headers
        asset = await client.get("/dashboard/assets/index-abc123.js")
        assert asset.status_code == 200
        assert "javascript" in asset.headers["content-type"]
        assert "immutable" in asset.headers["cache-control"]
        assert asset.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert (await client.get("/dashboard/favicon.svg")).headers["content-type"].startswith("image/svg")
        missing = await client.get("/dashboard/assets/gone-123.js")
        assert missing.status_code == 404
        assert "content-security-policy" in missing.headers
        escape = await client.get("/dashboard/%2e%2e/secret.txt")
        assert "not for you" not in escape.text
        assert (await client.head("/dashboard/keys")).status_code == 200


async def test_dashboard_over_https_adds_hsts(tmp_path: Path, built: Path) -> None:
    async with running(make_settings(tmp_path, dashboard_dir=built), base_url="https://testserver") as (
        _a,
        c,
    ):
        assert "max-age" in (await c.get("/dashboard/")).headers["strict-transport-security"]


async def test_dashboard_not_built_says_how_to_build_it(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path, dashboard_dir=tmp_path / "nothing")) as (_app, client):
        page = await client.get("/dashboard/")
        assert page.status_code == 503
        assert "npm run build" in page.text
        assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY


async def test_dashboard_can_be_disabled(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path, dashboard_enabled=False)) as (app, client):
        assert (await client.get("/dashboard/")).status_code == 404
        assert (await client.post("/v1/auth/session", json={"api_key": "x"})).status_code == 404
        assert "session_resolver" not in app.state.services.extras
