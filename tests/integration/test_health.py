"""Health that tells the truth: degraded (200) names its reasons; live and ready for orchestrators."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import make_settings, new_key, services_of
from triggers_api.app import create_app


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens here once the socket is closed


async def test_live_and_ready_answer_while_the_service_can_serve(client: httpx.AsyncClient) -> None:
    live = await client.get("/v1/health/live")
    assert live.status_code == 200 and live.json()["status"] == "ok"
    ready = await client.get("/v1/health/ready")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "checks": {"database": "ok", "migrations": "applied"}}
    assert (await client.get("/v1/health")).json()["reasons"] == []


async def test_ready_is_503_when_the_database_is_unreachable_while_live_stays_200(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from triggers_api.errors import StorageError

    async def down() -> None:
        raise StorageError("unable to open database file")

    monkeypatch.setattr(services_of(app).storage, "ping", down)
    ready = await client.get("/v1/health/ready")
    assert ready.status_code == 503 and ready.json()["status"] == "unavailable"
    assert (await client.get("/v1/health/live")).status_code == 200
    health = await client.get("/v1/health")
    assert health.status_code == 503 and health.json()["reasons"] == ["database unreachable"]


async def test_ready_is_503_before_the_storage_is_open(tmp_path: Path) -> None:
    application = create_app(make_settings(tmp_path))  # no lifespan: nothing opened or migrated
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        ready = await c.get("/v1/health/ready")
    assert ready.status_code == 503
    assert ready.json()["checks"]["migrations"] == "pending"


async def test_unreachable_redis_is_degraded_not_unhealthy(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, redis_url=f"redis://127.0.0.1:{_closed_port()}/0")
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            response = await c.get("/v1/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["redis"]["status"] == "unavailable"
    assert any("redis" in reason for reason in body["reasons"])


async def test_a_due_event_older_than_the_threshold_makes_health_degraded(tmp_path: Path) -> None:
    # push configured but done by an external worker that is not running: the event waits
    settings = make_settings(
        tmp_path,
        workflow_url=f"http://127.0.0.1:{_closed_port()}/hook",
        delivery_in_process=False,
        health_queue_age_seconds=0.2,
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            before = (await c.get("/v1/health")).json()
            assert before["status"] == "healthy", before
            key = await new_key(application)
            stored = await c.post(
                "/v1/events", json={"event_type": "a.b", "payload": {}}, headers={"X-API-Key": key}
            )
            assert stored.status_code == 201
            body: dict[str, object] = {}
            for _ in range(200):  # until the event has waited past 0.2 s
                body = (await c.get("/v1/health")).json()
                if body["status"] == "degraded":
                    break
                await _sleep(0.02)
    assert body["status"] == "degraded", body
    queue = body["checks"]["delivery_queue"]  # type: ignore[index]
    assert queue["oldest_due_age_seconds"] >= 0.2  # past the threshold, reported to the ms
    assert any("delivery queue" in r for r in body["reasons"])  # type: ignore[attr-defined]


async def _sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)
