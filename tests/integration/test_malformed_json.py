"""Malformed JSON gets one answer on every route that takes a JSON body (issue 14, item 8).

The routes come from the app's own OpenAPI document, so a route added later is checked too.
"""

from __future__ import annotations

import re

import httpx
import orjson
from fastapi import FastAPI

from tests.integration.test_ingestion import assert_error

MALFORMED = b'{"event_ids": ["a",'


def json_body_routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path) of every operation whose request body is JSON, path parameters filled in."""
    routes = []
    for path, item in app.openapi()["paths"].items():
        for method, operation in item.items():
            content = (operation.get("requestBody") or {}).get("content", {})
            if "application/json" in content:
                concrete = re.sub(r"\{[^}]+\}", "01890000-0000-7000-8000-000000000000", path)
                routes.append((method.upper(), concrete))
    return sorted(routes)


async def test_every_json_route_answers_malformed_json_like_ingestion(
    app: FastAPI, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    routes = json_body_routes(app)
    # The routes the issue names, and ingestion itself, are among them.
    for expected in ("/v1/events", "/v1/events/batch", "/v1/keys", "/v1/events/acknowledge/batch"):
        assert ("POST", expected) in routes, routes
    try:
        orjson.loads(MALFORMED)
    except orjson.JSONDecodeError as exc:
        parser_message = str(exc)
    reference = assert_error(
        await client.post(
            "/v1/events", content=MALFORMED, headers={**auth, "Content-Type": "application/json"}
        ),
        400,
        "VALIDATION_ERROR",
    )
    assert reference["details"] == {"body": parser_message}
    for method, path in routes:
        response = await client.request(
            method, path, content=MALFORMED, headers={**auth, "Content-Type": "application/json"}
        )
        error = assert_error(response, 400, "VALIDATION_ERROR")
        assert error["message"] == reference["message"], (method, path, error)
        assert error["details"] == {"body": parser_message}, (method, path, error)
