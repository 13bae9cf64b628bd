"""Delivery test kit: the scripted receiver, an app that pushes to it, worker subprocesses.

Retry schedules are compressed to tens of milliseconds; nothing here asserts how fast anything
is, only what happened (waits have generous deadlines and end as soon as the condition holds).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import make_settings, new_key, services_of
from tests.delivery.receiver import Receiver
from tests.postgres.schemas import WAIT_SCALE
from triggers_api.app import create_app
from triggers_api.config import Settings
from triggers_api.storage.base import Storage

SECRET = "whsec_" + base64.b64encode(b"delivery-tests-signing-key-32byte").decode()
TOKEN = "engine-token-123"

#: Fast, deterministic delivery: tiny retry delays, no jitter, a short timeout and lease.
FAST: dict[str, object] = {
    "retry_schedule": "0.05,0.05,0.05",
    "retry_jitter": 0,
    "delivery_timeout": 1.0,
    "lease_seconds": 3.0,
    "delivery_poll_interval": 0.05,
    "circuit_failure_threshold": 1000,
    "delivery_grace": 2.0,
    "signing_secret": SECRET,
    "workflow_token": TOKEN,
}


async def eventually(
    probe: Callable[[], Awaitable[Any]], predicate: Callable[[Any], bool], timeout: float = 15.0
) -> Any:
    """Poll ``probe`` until ``predicate`` holds on its value; fail after ``timeout`` seconds
    (times WAIT_SCALE: longer on the AWS emulator)."""
    timeout *= WAIT_SCALE
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if predicate(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s; last value: {value!r}")
        await asyncio.sleep(0.02)


@dataclass
class Pushing:
    """An app whose in-process worker pushes to ``receiver``, and a client for its API."""

    app: FastAPI
    client: httpx.AsyncClient
    receiver: Receiver
    auth: dict[str, str]
    settings: Settings

    @property
    def storage(self) -> Storage:
        return services_of(self.app).storage

    async def ingest(
        self, event_type: str = "order.created", payload: dict[str, object] | None = None
    ) -> str:
        response = await self.client.post(
            "/v1/events", json={"event_type": event_type, "payload": payload or {"n": 1}}, headers=self.auth
        )
        assert response.status_code == 201, response.text
        event_id: str = response.json()["event_id"]
        return event_id

    async def status(self, event_id: str) -> dict[str, Any]:
        response = await self.client.get(f"/v1/events/{event_id}/status", headers=self.auth)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def wait_status(self, event_id: str, status: str, timeout: float = 15.0) -> dict[str, Any]:
        result: dict[str, Any] = await eventually(
            lambda: self.status(event_id), lambda s: s["status"] == status, timeout
        )
        return result

    async def wait_attempts(self, event_id: str, count: int, timeout: float = 15.0) -> dict[str, Any]:
        result: dict[str, Any] = await eventually(
            lambda: self.status(event_id), lambda s: len(s["attempts"]) >= count, timeout
        )
        return result

    async def audit(self, action: str) -> list[dict[str, Any]]:
        response = await self.client.get("/v1/audit-logs", params={"action": action}, headers=self.auth)
        assert response.status_code == 200, response.text
        logs: list[dict[str, Any]] = response.json()["audit_logs"]
        return logs


@contextlib.asynccontextmanager
async def pushing_app(tmp_path: Path, receiver: Receiver, **overrides: object) -> AsyncIterator[Pushing]:
    settings = make_settings(tmp_path, **{"workflow_url": receiver.url, **FAST, **overrides})
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 4242))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            key = await new_key(app)
            yield Pushing(app, client, receiver, {"X-API-Key": key}, settings)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    await r.start()
    try:
        yield r
    finally:
        await r.stop()


@pytest.fixture
async def pushing(tmp_path: Path, receiver: Receiver) -> AsyncIterator[Pushing]:
    async with pushing_app(tmp_path, receiver) as p:
        yield p


# -- subprocesses ---------------------------------------------------------------------------------
def process_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment that points a ``triggers-api`` subprocess at the test's database."""
    env = dict(os.environ)
    env.update(
        {
            "TRIGGERS_DATABASE_URL": settings.database_url,
            "TRIGGERS_ARCHIVE_DIR": str(settings.archive_dir),
            "TRIGGERS_LOG_LEVEL": "INFO",
            "TRIGGERS_BOOTSTRAP_KEY": "false",
        }
    )
    if settings.database_schema:
        env["TRIGGERS_DATABASE_SCHEMA"] = settings.database_schema
    env.update(extra)
    return env


def spawn(tmp_path: Path, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    log = open(tmp_path / f"{name}.log", "ab")
    return subprocess.Popen(
        [sys.executable, "-m", "triggers_api.cli", *args],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=tmp_path,
    )


def log_of(tmp_path: Path, name: str) -> str:
    return (tmp_path / f"{name}.log").read_text(errors="replace")


async def wait_exit(process: subprocess.Popen[bytes], timeout: float = 20.0) -> int:
    deadline = time.monotonic() + timeout
    while process.poll() is None:
        if time.monotonic() > deadline:
            process.kill()
            process.wait()
            raise AssertionError(f"process {process.pid} did not exit within {timeout}s")
        await asyncio.sleep(0.05)
    return process.returncode


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait()
