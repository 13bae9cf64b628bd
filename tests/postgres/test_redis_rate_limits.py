"""Rate limits shared through Redis: one per-key budget across API processes; fail open (served,
logged, counted, reported in /v1/health) when Redis is away, and enforced again when it is back."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import free_port, make_settings, new_key, services_of
from tests.postgres.schemas import redis_url
from triggers_api.app import create_app
from triggers_api.auth import REDIS_COOLDOWN

EVENT = {"event_type": "user.created", "payload": {"id": 1}}


@contextlib.asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 4242))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


async def test_one_key_budget_is_shared_by_two_api_processes(tmp_path: Path) -> None:
    url = redis_url()
    first, second = (create_app(make_settings(tmp_path, redis_url=url)) for _ in range(2))
    async with running(first) as a, running(second) as b:
        key = {"X-API-Key": await new_key(first, rate_limit=5)}
        answers = []
        for i in range(8):  # alternate between the two "processes"
            answers.append(
                (await (a if i % 2 == 0 else b).post("/v1/events", json=EVENT, headers=key)).status_code
            )
        assert answers.count(201) == 5 and answers.count(429) == 3
        assert answers[:5] == [201] * 5  # the budget ran out after five, whichever process answered
        remaining = (await b.get("/v1/inbox", headers=key)).headers["ratelimit"]
        assert remaining.startswith('"per-key";r=0;')
        health = (await a.get("/v1/health")).json()
        assert health["checks"]["redis"] == {"status": "ok", "fail_open": 0}


async def test_without_redis_requests_are_served_counted_and_reported(tmp_path: Path) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    app = create_app(make_settings(tmp_path, redis_url=dead))
    async with running(app) as client:
        key = {"X-API-Key": await new_key(app, rate_limit=2)}
        answers = [(await client.post("/v1/events", json=EVENT, headers=key)).status_code for _ in range(4)]
        assert answers == [201] * 4  # over the limit, but no counter store: fail open
        limiter = services_of(app).limiter
        assert limiter.failures == 4
        health = await client.get("/v1/health")
        assert health.status_code == 200  # degraded, not down: the API still serves
        assert health.json()["checks"]["redis"] == {"status": "unavailable", "fail_open": 4}
        metrics = (await client.get("/metrics")).text
        assert "triggers_rate_limit_fail_open_total 4.0" in metrics.splitlines()


class PrivateRedis:
    """A Redis server of one test's own, so it can be stopped and started again (same port)."""

    def __init__(self, exe: str, cwd: Path) -> None:
        self.exe, self.cwd, self.port = exe, cwd, free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=self.cwd,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("private redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip("redis-server is not installed: cannot stop and restart a private Redis")
    server = PrivateRedis(exe, tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_limits_fail_open_while_redis_is_down_and_hold_again_when_it_returns(
    tmp_path: Path, private_redis: PrivateRedis
) -> None:
    app = create_app(make_settings(tmp_path, redis_url=private_redis.url))
    async with running(app) as client:
        key = {"X-API-Key": await new_key(app, rate_limit=3)}

        async def inbox() -> int:
            return (await client.get("/v1/inbox", headers=key)).status_code

        assert [await inbox() for _ in range(4)] == [200, 200, 200, 429]
        private_redis.stop()
        assert [await inbox() for _ in range(3)] == [200, 200, 200]  # Redis gone: served, not refused
        limiter = services_of(app).limiter
        assert limiter.failures >= 3
        assert (await client.get("/v1/health")).json()["checks"]["redis"]["status"] == "unavailable"

        private_redis.start()  # back, empty (it keeps nothing on disk)
        await asyncio.sleep(REDIS_COOLDOWN + 0.2)  # the limiter skips Redis for a moment after a failure
        assert [await inbox() for _ in range(4)] == [200, 200, 200, 429]  # counted and enforced again
        assert (await client.get("/v1/health")).json()["checks"]["redis"]["status"] == "ok"
