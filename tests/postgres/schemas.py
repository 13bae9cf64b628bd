"""A private PostgreSQL schema per test, so runs (and tests) never see each other's rows.

``TRIGGERS_TEST_POSTGRES_URL`` / ``TRIGGERS_TEST_REDIS_URL`` name the servers (``.ci/run`` sets
them). Unset, the conventional local ones are used when they answer (PostgreSQL at 127.0.0.1:5432,
database ``test``, user ``postgres``; Redis at 127.0.0.1:6379), so ``make test`` on a machine that
runs them tests them. Set to an empty value, or with nothing answering, the tests that need them
skip with a reason saying so (``tests/conftest.py`` ends the run with one line counting them), and
fail under ``TRIGGERS_TEST_STRICT=1``.

``TRIGGERS_TEST_BACKEND=postgres`` (or ``dynamodb``: a name prefix on the run's AWS emulator, see
``tests/aws_emulator.py``) runs the whole HTTP suite on that backend: ``tests/conftest.py``
asks :func:`backend_settings` / :func:`backend_env` for the database of each test, deselects the
tests marked ``sqlite_only`` (they open the SQLite file itself), and drops every schema at the
session's end. Rate limits stay in memory there; Redis has its own tests (``tests/postgres``).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import os
import socket
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
#: How much longer the delivery tests' waits (``Receiver.wait_for``, ``eventually``) may last: on the
#: AWS emulator a push costs ~0.5-1 s of moto's one-call-at-a-time Python, so a loaded box missed
#: 60 s for 200 deliveries by two workers (160 arrived, each exactly once). Only a limit on waiting:
#: what the tests assert is unchanged.
WAIT_SCALE = 3.0 if TEST_BACKEND == "dynamodb" else 1.0
if TEST_BACKEND not in ("sqlite", "postgres", "dynamodb"):
    raise RuntimeError(f"{BACKEND_ENV} must be 'sqlite', 'postgres' or 'dynamodb', not {TEST_BACKEND!r}")

_PREFIX = "t_"
_created: set[str] = set()


#: Where ``make test`` looks when the variables are unset (the servers .ci/run and the README use).
LOCAL_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
LOCAL_REDIS_URL = "redis://127.0.0.1:6379/0"
#: Every skip for a missing server says this, so the end-of-run summary can count them.
NO_SERVER = "no server to test against"


def postgres_answers(url: str, timeout: float = 2.0) -> bool:
    """True when a PostgreSQL server at ``url`` accepts a connection and a query."""

    async def probe() -> None:
        conn = await asyncpg.connect(url, timeout=timeout)
        try:
            await conn.fetchval("SELECT 1")
        finally:
            await conn.close()

    try:
        _run(probe())
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):  # TimeoutError is an OSError
        return False
    return True


def redis_answers(host: str, port: int, timeout: float = 2.0) -> bool:
    """True when a Redis server at ``host:port`` answers ``PING``."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@functools.cache
def _postgres_url() -> str | None:
    value = os.environ.get(POSTGRES_URL_ENV)
    if value is not None:
        return value or None  # set but empty: run without PostgreSQL on purpose
    return LOCAL_POSTGRES_URL if postgres_answers(LOCAL_POSTGRES_URL) else None


@functools.cache
def _redis_url() -> str | None:
    value = os.environ.get(REDIS_URL_ENV)
    if value is not None:
        return value or None
    return LOCAL_REDIS_URL if redis_answers("127.0.0.1", 6379) else None


def postgres_url() -> str:
    """The test server's URL (the variable, else the local server when it answers), or skip."""
    url = _postgres_url()
    if not url:
        pytest.skip(
            f"PostgreSQL: {NO_SERVER} ({POSTGRES_URL_ENV} unset or empty, "
            "nothing answers at 127.0.0.1:5432 database test)"
        )
    return url


def redis_url() -> str:
    url = _redis_url()
    if not url:
        pytest.skip(f"Redis: {NO_SERVER} ({REDIS_URL_ENV} unset or empty, nothing answers at 127.0.0.1:6379)")
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
    if TEST_BACKEND == "dynamodb":
        from tests.aws_emulator import dynamodb_url_for

        return {"database_url": dynamodb_url_for(f"{tmp_path}/{name}")}
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
    probed = os.environ.get(POSTGRES_URL_ENV) is not None or _postgres_url.cache_info().currsize > 0
    url = _postgres_url() if probed else None  # never probe only to clean up
    if url:
        try:
            _run(_drop_leftovers(url))
        except (OSError, asyncpg.PostgresError):
            pass  # no server: nothing was created on it either
