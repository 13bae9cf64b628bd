"""The API function (``aws/lambda_api.py``) and the authorizer (``aws/lambda_authorizer.py``),
driven with real-shaped API Gateway REST proxy and REQUEST authorizer events.

The storage is whatever ``make_settings`` builds (``TRIGGERS_TEST_BACKEND``: SQLite by default,
PostgreSQL, and DynamoDB once that backend lands): the handlers hold no backend-specific code.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mangum import Mangum
from pydantic import SecretStr

from tests.aws.conftest import REGION, Migrated
from tests.aws.lambda_events import (
    API_ID,
    STAGE,
    LambdaContext,
    authorizer_event,
    header,
    response_json,
    rest_event,
)
from tests.conftest import make_settings
from triggers_api.app import create_app
from triggers_api.auth import generate_api_key, hash_api_key
from triggers_api.aws import lambda_api
from triggers_api.aws.lambda_api import LONG_POLL_MAX_S, ApiFunction
from triggers_api.aws.lambda_authorizer import Authorizer
from triggers_api.config import Settings
from triggers_api.keys.service import create_key, revoke_key
from triggers_api.storage.base import ApiKeyRecord, now_us

SCOPES = ("events:write", "events:read", "keys:manage")


@pytest.fixture
def settings(tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    """The test backend's settings; ``dynamodb`` (by indirect parametrisation) puts the app on the
    emulator's session-wide tables, the store the API function has on AWS."""
    if getattr(request, "param", None) == "dynamodb":
        endpoint = request.getfixturevalue("aws_endpoint")
        migrated: Migrated = request.getfixturevalue("migrated")
        url = f"dynamodb://{migrated.prefix}?region={REGION}&endpoint_url={endpoint}"
        return make_settings(tmp_path, key_cache_ttl=0.3, database_url=url)
    return make_settings(tmp_path, key_cache_ttl=0.3)


@pytest.fixture
def api(settings: Settings) -> Iterator[ApiFunction]:
    function = ApiFunction(settings)
    function.container.run(function.app.start())
    try:
        yield function
    finally:
        function.close()


@pytest.fixture
def authorizer(settings: Settings, api: ApiFunction) -> Iterator[Authorizer]:
    function = Authorizer(settings, index_retry_s=0)
    try:
        yield function
    finally:
        function.close()


def new_key(api: ApiFunction, user_id: str = "alice", scopes: tuple[str, ...] = SCOPES) -> tuple[str, str]:
    created = api.container.run(
        create_key(
            api.app.services.storage,
            user_id=user_id,
            name=f"lambda-{user_id}",
            scopes=list(scopes),
            rate_limit=1000,
            expires_us=None,
        )
    )
    return created.api_key, created.record.key_id


def allow(
    authorizer: Authorizer, api_key: str, method: str = "POST", path: str = "/v1/events"
) -> dict[str, Any]:
    """The authorizer's answer for a key; its context is what API Gateway hands the API function."""
    return authorizer(authorizer_event(method, path, {"X-API-Key": api_key}), LambdaContext())


def call(
    api: ApiFunction, method: str, path: str, *, key: str, context: dict[str, Any], **kw: Any
) -> dict[str, Any]:
    headers = {"X-API-Key": key, **kw.pop("headers", {})}
    return api(rest_event(method, path, headers=headers, authorizer=context, **kw), LambdaContext())


def test_authorizer_allows_every_route_of_the_stage_with_the_context(
    api: ApiFunction, authorizer: Authorizer
) -> None:
    api_key, key_id = new_key(api)
    answer = allow(authorizer, api_key)
    assert answer["principalId"] == "alice"
    assert answer["context"] == {
        "user_id": "alice",
        "key_id": key_id,
        "scopes": " ".join(SCOPES),
        "rate_limit": 1000,
    }
    (statement,) = answer["policyDocument"]["Statement"]
    assert statement["Effect"] == "Allow"
    # The whole stage, every method: the cached decision must not refuse the key's other routes.
    assert statement["Resource"] == [f"arn:aws:execute-api:us-east-1:123456789012:{API_ID}/{STAGE}/*/*"]


@pytest.mark.parametrize(
    "headers", [{}, {"X-API-Key": ""}, {"X-API-Key": "not-a-key"}, {"X-API-Key": "tk_" + "A" * 43}]
)
def test_authorizer_refuses_with_unauthorized(authorizer: Authorizer, headers: dict[str, str]) -> None:
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        authorizer(authorizer_event("GET", "/v1/inbox", headers), LambdaContext())


def test_authorizer_refuses_revoked_and_expired_keys(api: ApiFunction, authorizer: Authorizer) -> None:
    storage = api.app.services.storage
    revoked, revoked_id = new_key(api, "bob")
    api.container.run(revoke_key(storage, key_id=revoked_id, user_id="bob"))
    expired = generate_api_key()  # stored as it would be once its expiry passed
    record = ApiKeyRecord(
        key_id=str(uuid.uuid4()),
        user_id="bob",
        key_hash=hash_api_key(expired),
        key_prefix=expired[:10],
        name="old",
        created_us=now_us() - 10_000_000,
        rate_limit=10,
        scopes=("events:read",),
        expires_us=now_us() - 1_000_000,
    )
    api.container.run(storage.insert_key(record, None))
    for api_key in (revoked, expired):
        with pytest.raises(Exception, match=r"^Unauthorized$"):
            allow(authorizer, api_key)


def test_authorizer_never_logs_the_key(
    api: ApiFunction, authorizer: Authorizer, caplog: pytest.LogCaptureFixture
) -> None:
    api_key, _ = new_key(api)
    wrong = "tk_" + "B" * 43
    with caplog.at_level(logging.INFO):
        allow(authorizer, api_key)
        with pytest.raises(Exception, match="Unauthorized"):
            allow(authorizer, wrong)
    messages = [r.getMessage() for r in caplog.records]
    assert "authorizer_allowed" in messages and "authorizer_refused" in messages
    # every attribute of every record (Powertools' extra keys included), not only the message
    logged = " ".join(repr(vars(r)) for r in caplog.records)
    for secret in (api_key, wrong, hash_api_key(api_key), hash_api_key(wrong), api_key[3:13]):
        assert secret not in logged


def test_ingest_inbox_and_acknowledge_behind_the_authorizer(api: ApiFunction, authorizer: Authorizer) -> None:
    api_key, _ = new_key(api)
    context = allow(authorizer, api_key)["context"]
    created = call(
        api,
        "POST",
        "/v1/events",
        key=api_key,
        context=context,
        body=json.dumps({"event_type": "order.created", "payload": {"id": 1}}),
    )
    assert created["statusCode"] == 201, created
    event_id = response_json(created)["event_id"]
    assert header(created, "RateLimit-Policy") == '"per-key";q=1000;w=60'

    inbox = call(api, "GET", "/v1/inbox", key=api_key, context=context, query="limit=10")
    assert inbox["statusCode"] == 200
    assert [e["event_id"] for e in response_json(inbox)["events"]] == [event_id]

    first = call(api, "DELETE", f"/v1/events/{event_id}", key=api_key, context=context)
    assert first["statusCode"] == 204
    second = call(api, "DELETE", f"/v1/events/{event_id}", key=api_key, context=context, request_id="req-410")
    assert second["statusCode"] == 410
    assert response_json(second)["error"]["code"] == "EVENT_GONE"

    other_key, _ = new_key(api, "mallory")
    other = allow(authorizer, other_key)["context"]
    stranger = call(api, "GET", f"/v1/events/{event_id}", key=other_key, context=other)
    assert stranger["statusCode"] == 404  # another tenant's event does not exist for them


def test_bad_input_gets_the_error_shape_with_api_gateways_request_id(
    api: ApiFunction, authorizer: Authorizer
) -> None:
    api_key, _ = new_key(api)
    context = allow(authorizer, api_key)["context"]
    request_id = str(uuid.uuid4())
    answer = call(
        api, "POST", "/v1/events", key=api_key, context=context, body="{not json", request_id=request_id
    )
    assert answer["statusCode"] == 400
    error = response_json(answer)["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert error["request_id"] == request_id  # API Gateway's id is the app's id
    assert header(answer, "X-Request-ID") == request_id
    assert api.logger.get_correlation_id() == request_id  # and Powertools' correlation id


def test_the_context_is_trusted_and_the_key_confirmed_once_per_cache_period(
    api: ApiFunction, authorizer: Authorizer
) -> None:
    api_key, _ = new_key(api)
    context = allow(authorizer, api_key)["context"]
    resolver = api.app.services.extras["authorizer_context_resolver"]
    reads = resolver.reads
    for _ in range(3):
        # API Gateway sends the header on, but the app does not look the key up by hash again.
        assert (
            call(api, "GET", "/v1/inbox", key="ignored-behind-the-authorizer", context=context)["statusCode"]
            == 200
        )
    assert resolver.reads - reads == 1  # one read of the key by id for three requests


BACKENDS = pytest.mark.parametrize("settings", ["default", "dynamodb"], indirect=True)


@BACKENDS
def test_a_revoked_key_is_refused_within_the_key_cache_period(
    api: ApiFunction, authorizer: Authorizer, settings: Settings
) -> None:
    api_key, key_id = new_key(api)
    cached = allow(authorizer, api_key)["context"]  # what API Gateway keeps for 5 minutes
    assert call(api, "GET", "/v1/inbox", key=api_key, context=cached)["statusCode"] == 200
    api.container.run(revoke_key(api.app.services.storage, key_id=key_id, user_id="alice"))
    time.sleep(settings.key_cache_ttl + 0.05)  # the container's confirmation is at most this old
    refused = call(api, "GET", "/v1/inbox", key=api_key, context=cached)
    assert refused["statusCode"] == 401
    assert response_json(refused)["error"]["code"] == "UNAUTHORIZED"
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        allow(authorizer, api_key)  # and a fresh authorizer decision refuses it too


@BACKENDS
def test_a_key_revoked_before_the_container_confirmed_it_is_refused_on_the_next_request(
    api: ApiFunction, authorizer: Authorizer
) -> None:
    api_key, key_id = new_key(api)
    cached = allow(authorizer, api_key)["context"]  # API Gateway keeps this Allow for 5 minutes
    resolver = api.app.services.extras["authorizer_context_resolver"]
    reads = resolver.reads
    api.container.run(revoke_key(api.app.services.storage, key_id=key_id, user_id="alice"))
    refused = call(api, "GET", "/v1/inbox", key=api_key, context=cached)
    assert refused["statusCode"] == 401  # no sleep: the read after the revocation already has it
    assert resolver.reads - reads == 1
    # and the refusal is cached like an acceptance: the key stays refused, without another read
    assert call(api, "POST", "/v1/events", key=api_key, context=cached, body="{}")["statusCode"] == 401
    assert resolver.reads - reads == 1


@BACKENDS
def test_a_context_naming_another_users_key_is_refused(api: ApiFunction, authorizer: Authorizer) -> None:
    api_key, _ = new_key(api, "alice")
    context = allow(authorizer, api_key)["context"]
    assert call(api, "GET", "/v1/inbox", key=api_key, context=context)["statusCode"] == 200  # confirmed
    # the key is read under the context's user: a key id paired with another user finds nothing,
    # even while the container's confirmation of the real pair is fresh
    borrowed = {**context, "user_id": "mallory"}
    answer = call(api, "GET", "/v1/inbox", key=api_key, context=borrowed)
    assert answer["statusCode"] == 401
    assert response_json(answer)["error"]["code"] == "UNAUTHORIZED"


def test_scopes_come_from_the_context(api: ApiFunction, authorizer: Authorizer) -> None:
    api_key, _ = new_key(api, "reader", scopes=("events:read",))
    context = allow(authorizer, api_key)["context"]
    answer = call(
        api, "POST", "/v1/events", key=api_key, context=context, body='{"event_type":"a.b","payload":{}}'
    )
    assert answer["statusCode"] == 403
    assert response_json(answer)["error"]["details"] == {"required_scope": "events:write"}


def test_routes_without_the_authorizer_use_the_key_as_serve_does(api: ApiFunction) -> None:
    api_key, _ = new_key(api)
    health = api(rest_event("GET", "/v1/health"), LambdaContext())
    assert health["statusCode"] == 200
    ok = api(rest_event("GET", "/v1/inbox", headers={"X-API-Key": api_key}), LambdaContext())
    assert ok["statusCode"] == 200
    bad = api(rest_event("GET", "/v1/inbox", headers={"X-API-Key": "tk_nope"}), LambdaContext())
    assert bad["statusCode"] == 401


def test_stream_answers_a_documented_error_and_the_long_poll_is_capped(
    api: ApiFunction, authorizer: Authorizer
) -> None:
    api_key, _ = new_key(api)
    context = allow(authorizer, api_key)["context"]
    answer = call(api, "GET", "/v1/inbox/stream", key=api_key, context=context)
    assert answer["statusCode"] == 501
    error = response_json(answer)["error"]
    assert error["code"] == "STREAM_UNAVAILABLE"
    assert error["details"]["use"] == "GET /v1/inbox?wait=25"
    # documented: the OpenAPI declares the 501 with the one error shape
    declared = api.app.app.openapi()["paths"]["/v1/inbox/stream"]["get"]["responses"]["501"]
    assert declared["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorResponse"}
    assert "STREAM_UNAVAILABLE" in declared["description"]
    unauthenticated = api(rest_event("GET", "/v1/inbox/stream"), LambdaContext())
    assert unauthenticated["statusCode"] == 401  # authentication still comes first
    assert api.app.services.settings.inbox_max_wait == LONG_POLL_MAX_S < 29
    polled = call(api, "GET", "/v1/inbox", key=api_key, context=context, query="wait=1")
    assert polled["statusCode"] == 200 and response_json(polled)["events"] == []


def test_serve_never_trusts_an_authorizer_context(settings: Settings, tmp_path: Path) -> None:
    """``triggers-api serve``'s app (create_app without the Lambda extension): a forged context,
    whether in headers or in an event handed to it through Mangum, authenticates nobody."""
    forged = {
        "principalId": "alice",
        "user_id": "alice",
        "key_id": "k",
        "scopes": " ".join(SCOPES),
        "rate_limit": 1000,
    }

    async def over_http() -> int:
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                answer = await client.get(
                    "/v1/inbox",
                    headers={
                        "X-Amzn-Request-Context": json.dumps({"authorizer": forged}),
                        "X-Apigateway-Event": json.dumps({"requestContext": {"authorizer": forged}}),
                        **{k: str(v) for k, v in forged.items()},
                    },
                )
                return answer.status_code

    assert asyncio.run(over_http()) == 401
    assert "authorizer_context_resolver" not in create_app(settings).state.services.extras

    serve_app = create_app(settings)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(serve_app.state.services.storage.open())
        answer = Mangum(serve_app, lifespan="off")(
            rest_event("GET", "/v1/inbox", authorizer=forged), LambdaContext()
        )
        assert answer["statusCode"] == 401
        loop.run_until_complete(serve_app.state.services.storage.close())
    finally:
        loop.close()
        asyncio.set_event_loop(None)


def test_module_handler_builds_the_app_once_per_container(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(tmp_path)
    monkeypatch.setenv("TRIGGERS_DATABASE_URL", settings.database_url)
    if settings.database_schema:
        monkeypatch.setenv("TRIGGERS_DATABASE_SCHEMA", settings.database_schema)
    monkeypatch.setenv("TRIGGERS_ARCHIVE_DIR", str(tmp_path / "archive"))
    monkeypatch.setattr(lambda_api, "_function", None)
    try:
        first = lambda_api.handler(rest_event("GET", "/v1/health"), LambdaContext())
        function = lambda_api._function
        assert function is not None
        services = function.app.services
        second = lambda_api.handler(rest_event("GET", "/v1/health"), LambdaContext())
        assert first["statusCode"] == second["statusCode"] == 200
        assert lambda_api._function is function and function.app.services is services
        assert services.settings.delivery_in_process is False and services.settings.bootstrap_key is False
    finally:
        if lambda_api._function is not None:
            lambda_api._function.close()


def test_each_invocation_emits_its_emf_metrics_under_the_terraforms_names(
    api: ApiFunction, authorizer: Authorizer, capsys: pytest.CaptureFixture[str]
) -> None:
    """EventsIngested per API invocation (what the ingestion path stored), Powertools' ColdStart
    with the dimensions the cold-start alarm reads, and the authorizer's decisions."""
    from aws_lambda_powertools.metrics.provider import cold_start

    from tests.aws import emf

    api_key, _ = new_key(api)
    capsys.readouterr()
    context = allow(authorizer, api_key)["context"]
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        allow(authorizer, "tk_" + "C" * 43)
    decisions = emf.emitted(capsys.readouterr().out)
    authorizer_service = {"service": "triggers-api-authorizer"}
    assert emf.total(decisions, "AuthorizerAllowed", **authorizer_service) == 1
    assert emf.total(decisions, "AuthorizerRefused", **authorizer_service) == 1

    cold_start.is_cold_start = True  # whichever handler ran first in this process took it
    single = call(
        api,
        "POST",
        "/v1/events",
        key=api_key,
        context=context,
        body=json.dumps({"event_type": "a.b", "payload": {}}),
    )
    batch = call(
        api,
        "POST",
        "/v1/events/batch",
        key=api_key,
        context=context,
        body=json.dumps({"events": [{"event_type": "a.b", "payload": {"i": i}} for i in range(3)]}),
    )
    listed = call(api, "GET", "/v1/inbox", key=api_key, context=context)
    assert (single["statusCode"], batch["statusCode"], listed["statusCode"]) == (201, 201, 200), batch
    out = capsys.readouterr().out
    assert len(emf.documents(out)) == 4  # one per invocation, plus the cold start's own
    found = emf.emitted(out)
    api_service = {"service": "triggers-api-api"}
    per_invocation = [
        e.values for e in found if e.name == "EventsIngested" and dict(e.dimensions) == api_service
    ]
    assert per_invocation == [(1.0,), (3.0,), (0.0,)]
    cold = [e for e in found if e.name == "ColdStart"]
    assert [dict(e.dimensions) for e in cold] == [
        {"function_name": LambdaContext().function_name, "service": "triggers-api-api"}
    ]
    wanted = {
        (name, dims) for name, dims in emf.terraform_metrics() if ("service", "triggers-api-api") in dims
    }
    assert {name for name, _ in wanted} == {"EventsIngested", "ColdStart"}
    for name, dims in wanted:
        assert emf.matches(found, name, dims), (name, dims)


# -- the dashboard's API: no authorizer, the session cookie ----------------------------------------
DASHBOARD_HOST = "console.triggers.example.com"  # its REST API's custom domain (Terraform)


def set_cookies(response: dict[str, Any]) -> dict[str, str]:
    """name -> value of every Set-Cookie in a REST proxy response (Mangum: multiValueHeaders)."""
    values: list[str] = []
    for source in (response.get("headers") or {}, response.get("multiValueHeaders") or {}):
        for key, value in source.items():
            if key.lower() == "set-cookie":
                values.extend(value if isinstance(value, list) else [value])
    return dict(v.split(";", 1)[0].split("=", 1) for v in values)


def dashboard_event(
    method: str, path: str, cookies: dict[str, str] | None = None, **kw: Any
) -> dict[str, Any]:
    """A REST proxy event as the dashboard's API sends it: its domain as Host, HTTPS, no authorizer."""
    headers = {"Host": DASHBOARD_HOST, **kw.pop("headers", {})}
    if cookies:
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    return rest_event(method, path, headers=headers, **kw)


@pytest.fixture
def dashboard_settings(tmp_path: Path) -> Settings:
    """What the Terraform gives the API function: one TRIGGERS_SESSION_SECRET for every container;
    and a built dashboard (index.html + a hashed asset) to serve."""
    built = tmp_path / "dashboard"
    (built / "assets").mkdir(parents=True)
    (built / "index.html").write_text('<!doctype html><script src="/dashboard/assets/app-1a2b.js"></script>')
    (built / "assets" / "app-1a2b.js").write_text("console.log('dashboard')")
    return make_settings(tmp_path, key_cache_ttl=0.3, session_secret="s" * 48, dashboard_dir=built)


def test_the_dashboard_api_serves_a_cookie_session_without_an_authorizer(
    dashboard_settings: Settings,
) -> None:
    """The browser's requests reach the API function with the session cookie and no authorizer
    context (the dashboard's REST API has none): the function authenticates them itself, and a
    cookie issued by one container is accepted by another that shares the deployment's secret."""
    first, second = ApiFunction(dashboard_settings), ApiFunction(dashboard_settings)
    for function in (first, second):
        function.container.run(function.app.start())
    try:
        api_key, key_id = new_key(first)
        page = first(dashboard_event("GET", "/dashboard/events/abc"), LambdaContext())
        assert page["statusCode"] == 200 and "app-1a2b.js" in page["body"]  # deep link -> index.html
        asset = first(dashboard_event("GET", "/dashboard/assets/app-1a2b.js"), LambdaContext())
        assert asset["statusCode"] == 200

        login = first(
            dashboard_event(
                "POST",
                "/v1/auth/session",
                body=json.dumps({"api_key": api_key}),
                headers={"Origin": f"https://{DASHBOARD_HOST}"},
            ),
            LambdaContext(),
        )
        assert login["statusCode"] == 200, login
        cookies = set_cookies(login)
        assert set(cookies) == {"triggers_session", "triggers_refresh", "triggers_csrf"}
        assert response_json(login)["key_id"] == key_id
        session = {"triggers_session": cookies["triggers_session"]}
        csrf = {"X-CSRF-Token": cookies["triggers_csrf"], "Origin": f"https://{DASHBOARD_HOST}"}

        # Data through the other container: the cookie alone (no X-API-Key, no authorizer context).
        created = second(
            dashboard_event(
                "POST",
                "/v1/events",
                cookies={**session, "triggers_csrf": cookies["triggers_csrf"]},
                headers=csrf,
                body=json.dumps({"event_type": "order.created", "payload": {"id": 7}}),
            ),
            LambdaContext(),
        )
        assert created["statusCode"] == 201, created
        event_id = response_json(created)["event_id"]
        inbox = second(
            dashboard_event("GET", "/v1/inbox", cookies=session, query="limit=10"), LambdaContext()
        )
        assert inbox["statusCode"] == 200
        assert [e["event_id"] for e in response_json(inbox)["events"]] == [event_id]
        assert response_json(inbox)["events"][0]["payload"] == {"id": 7}
        keys = second(dashboard_event("GET", "/v1/keys", cookies=session), LambdaContext())
        assert keys["statusCode"] == 200
        assert key_id in [k["key_id"] for k in response_json(keys)["keys"]]

        # The function is the only gate on this API: no cookie is 401, a write without CSRF is 403.
        anonymous = second(dashboard_event("GET", "/v1/inbox"), LambdaContext())
        assert anonymous["statusCode"] == 401
        forged = second(
            dashboard_event("POST", "/v1/events", cookies=session, body='{"event_type":"a.b","payload":{}}'),
            LambdaContext(),
        )
        assert forged["statusCode"] == 403
        assert response_json(forged)["error"]["code"] == "FORBIDDEN"
    finally:
        first.close()
        second.close()

    # Why the deployment sets one secret: a container signing with its own refuses the cookie.
    other = ApiFunction(dashboard_settings.model_copy(update={"session_secret": SecretStr("t" * 48)}))
    try:
        refused = other(dashboard_event("GET", "/v1/inbox", cookies=session), LambdaContext())
        assert refused["statusCode"] == 401
    finally:
        other.close()
