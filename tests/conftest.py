"""Shared fixtures: a fresh SQLite file per test, the app over ASGI, keys, and a live server.

Under ``TRIGGERS_TEST_STRICT=1`` (CI) a skipped test is a failed test.
"""

from __future__ import annotations

import inspect
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from tests.aws_emulator import aws_endpoint, aws_env  # noqa: F401 - session fixtures for tests/aws and tests/contract
from tests.postgres.schemas import (
    NO_SERVER,
    POSTGRES_URL_ENV,
    REDIS_URL_ENV,
    TEST_BACKEND,
    backend_env,
    backend_settings,
    drop_test_schemas,
)
from triggers_api.app import create_app
from triggers_api.config import Settings
from triggers_api.keys.service import create_key
from triggers_api.runtime import Services

STRICT = os.environ.get("TRIGGERS_TEST_STRICT") == "1"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if STRICT and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped under TRIGGERS_TEST_STRICT=1: {report.longrepr}"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    drop_test_schemas()  # the PostgreSQL schemas this run created (TRIGGERS_TEST_BACKEND=postgres)


def pytest_unconfigure(config: pytest.Config) -> None:
    """The run's last line, when tests skipped for want of PostgreSQL/Redis: how many, and how."""
    terminalreporter = config.pluginmanager.get_plugin("terminalreporter")
    if terminalreporter is None:
        return
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if NO_SERVER in str(r.longrepr)]
    if skipped:
        terminalreporter.write_line(
            f"{len(skipped)} test{'s' if len(skipped) != 1 else ''} skipped: no PostgreSQL/Redis to test against. To run them, start "
            f"PostgreSQL at 127.0.0.1:5432 (database test, user postgres) and Redis at 127.0.0.1:6379, "
            f"or set {POSTGRES_URL_ENV} and {REDIS_URL_ENV}.",
            yellow=True,
            bold=True,
        )


def _opens_sqlite_file(item: pytest.Item) -> bool:
    """Marked ``sqlite_only``, or its own code opens the SQLite file (``sqlite3``/``sqlite_path``)."""
    if item.get_closest_marker("sqlite_only"):
        return True
    function = getattr(item, "function", None)
    try:
        source = inspect.getsource(function) if function is not None else ""
    except (OSError, TypeError):
        return False
    return "sqlite3." in source or "sqlite_path(" in source


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On TRIGGERS_TEST_BACKEND=postgres/dynamodb, deselect (not skip) tests that open the SQLite file."""
    if TEST_BACKEND == "sqlite":
        return
    dropped = [i for i in items if _opens_sqlite_file(i)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [i for i in items if i not in dropped]


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": f"sqlite:///{tmp_path / 'triggers.db'}",
        "archive_dir": tmp_path / "archive",
        "bootstrap_key": False,
        "log_level": "WARNING",
    }
    values.update(backend_settings(tmp_path, "triggers"))  # TRIGGERS_TEST_BACKEND=postgres
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 4242))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


def services_of(app: FastAPI) -> Services:
    services: Services = app.state.services
    return services


async def new_key(
    app: FastAPI,
    user_id: str = "alice",
    scopes: tuple[str, ...] = ("events:write", "events:read", "keys:manage"),
    rate_limit: int = 1000,
    expires_us: int | None = None,
) -> str:
    created = await create_key(
        services_of(app).storage,
        user_id=user_id,
        name=f"test-{user_id}",
        scopes=list(scopes),
        rate_limit=rate_limit,
        expires_us=expires_us,
    )
    return created.api_key


@pytest.fixture
async def key(app: FastAPI) -> str:
    return await new_key(app)


@pytest.fixture
def auth(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    api_key: str
    process: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str]
    port: int

    def stop(self, sig: int | None = None) -> None:
        if self.process.poll() is None:
            if sig is None:
                self.process.terminate()
            else:
                self.process.send_signal(sig)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_server(
    tmp_path: Path, port: int | None = None, extra_env: dict[str, str] | None = None
) -> LiveServer:
    """``triggers-api serve`` in a subprocess on a fresh database; returns once /v1/health answers."""
    port = port or free_port()
    # first: on the AWS emulator this starts it, which puts its fake credentials in os.environ
    backend = backend_env(tmp_path, "live")  # TRIGGERS_TEST_BACKEND=postgres|dynamodb
    env = dict(os.environ)
    env.update(
        {
            "TRIGGERS_DATABASE_URL": f"sqlite:///{tmp_path / 'live.db'}",
            "TRIGGERS_ARCHIVE_DIR": str(tmp_path / "archive"),
            "TRIGGERS_LOG_LEVEL": "WARNING",
        }
    )
    env.update(backend)
    env.update(extra_env or {})
    log_path = tmp_path / f"server-{port}.log"
    log_file = open(log_path, "ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "triggers_api.cli", "serve", "--port", str(port)],
        stdout=log_file,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=tmp_path,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {log_path.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/v1/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    else:
        process.kill()
        raise RuntimeError("server did not come up")
    match = re.search(r"tk_[A-Za-z0-9_\-]{43}", log_path.read_text())
    server = LiveServer(url, match.group(0) if match else "", process, log_path, env, port)
    _started.append(server)
    return server


#: Every server ``start_server`` started in this run, in order.
_started: list[LiveServer] = []


@pytest.fixture(autouse=True)
def _stop_leftover_servers() -> Iterator[None]:
    """Stop the servers a test (or its function-scoped fixtures) started, even when it failed
    before its own stop. Servers of wider-scoped fixtures start before this runs and are left
    to their fixture."""
    before = len(_started)
    yield
    while len(_started) > before:
        _started.pop().stop()


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    server = start_server(tmp_path)
    try:
        yield server
    finally:
        server.stop()
