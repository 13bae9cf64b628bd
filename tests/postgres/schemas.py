"""A private PostgreSQL schema per test, so runs (and tests) never see each other's rows.

``TRIGGERS_TEST_POSTGRES_URL`` names the server (``.ci/run`` sets it); without it the tests that
need PostgreSQL skip with a reason saying so (and fail under ``TRIGGERS_TEST_STRICT=1``).

``TRIGGERS_TEST_BACKEND=postgres`` runs the whole HTTP suite on PostgreSQL: ``tests/conftest.py``
asks :func:`backend_settings` / :func:`backend_env` for the database of each test, deselects the
tests marked ``sqlite_only`` (they open the SQLite file itself), and drops every schema at the
session's end. Rate limits stay in memory there; Redis has its own tests (``tests/postgres``).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
import uuid
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import asyncpg
import pytest

POSTGRES_URL_ENV = "TRIGGERS_TEST_POSTGRES_URL"
REDIS_URL_ENV = "TRIGGERS_TEST_REDIS_URL"
BACKEND_ENV = "TRIGGERS_TEST_BACKEND"
TEST_BACKEND = os.environ.get(BACKEND_ENV, "sqlite")
if TEST_BACKEND not in ("sqlite", "postgres"):
    raise RuntimeError(f"{BACKEND_ENV} must be 'sqlite' or 'postgres', not {TEST_BACKEND!r}")

_PREFIX = "t_"
_created: set[str] = set()


def postgres_url() -> str:
    """The test server's URL, or skip (with the reason) when none is configured."""
    url = os.environ.get(POSTGRES_URL_ENV)
    if not url:
        pytest.skip(f"{POSTGRES_URL_ENV} is not set: no PostgreSQL server to test against")
    return url


def redis_url() -> str:
    url = os.environ.get(REDIS_URL_ENV)
    if not url:
        pytest.skip(f"{REDIS_URL_ENV} is not set: no Redis server to test against")
    return url


def new_schema_name() -> str:
    """``t_<pid>_<random>``: the pid lets a later run drop what a killed run left behind."""
    return f"{_PREFIX}{os.getpid()}_{uuid.uuid4().hex[:12]}"


def schema_for(tmp_path: Path, name: str) -> str:
    """The same (test directory, name) gives the same schema, as it gives the same SQLite file."""
    digest = hashlib.sha1(f"{tmp_path}/{name}".encode()).hexdigest()[:12]
    schema = f"{_PREFIX}{os.getpid()}_{digest}"
    _created.add(schema)
    return schema


def backend_settings(tmp_path: Path, name: str) -> dict[str, object]:
    """Settings overrides putting a test's database on the selected backend ({} for SQLite)."""
    if TEST_BACKEND != "postgres":
        return {}
    values: dict[str, object] = {
        "database_url": postgres_url(),
        "database_schema": schema_for(tmp_path, name),
        "database_pool_min": 1,
        "database_pool_max": 4,
    }
    return values


def backend_env(tmp_path: Path, name: str) -> dict[str, str]:
    """The same, as ``TRIGGERS_*`` variables for a server started in a subprocess."""
    return {f"TRIGGERS_{k.upper()}": str(v) for k, v in backend_settings(tmp_path, name).items()}


def _run(coro: Coroutine[Any, Any, None]) -> None:
    """Run a coroutine to the end from sync code, even while an event loop runs in this thread."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(coro)
        except BaseException as exc:  # re-raised in the caller's thread below
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


async def drop_schema_async(url: str, schema: str) -> None:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


def drop_schema(url: str, schema: str) -> None:
    _run(drop_schema_async(url, schema))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def _drop_leftovers(url: str) -> None:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        names = [
            r[0] for r in await conn.fetch("SELECT nspname FROM pg_namespace WHERE nspname LIKE 't\\_%'")
        ]
        for name in names:
            parts = name.split("_")
            mine = name in _created
            stale = len(parts) >= 3 and parts[1].isdigit() and not _pid_alive(int(parts[1]))
            if mine or stale:
                await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    finally:
        await conn.close()


def drop_test_schemas() -> None:
    """At the session's end: this run's schemas, and those of runs that died before cleaning up."""
    url = os.environ.get(POSTGRES_URL_ENV)
    if url:
        try:
            _run(_drop_leftovers(url))
        except (OSError, asyncpg.PostgresError):
            pass  # no server: nothing was created on it either
