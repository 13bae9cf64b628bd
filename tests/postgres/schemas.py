"""A private PostgreSQL schema per test, so runs (and tests) never see each other's rows.

``TRIGGERS_TEST_POSTGRES_URL`` names the server (``.ci/run`` sets it); without it the tests that
need PostgreSQL skip with a reason saying so (and fail under ``TRIGGERS_TEST_STRICT=1``).
"""

from __future__ import annotations

import asyncio
import os
import threading
import uuid

import asyncpg
import pytest

POSTGRES_URL_ENV = "TRIGGERS_TEST_POSTGRES_URL"
REDIS_URL_ENV = "TRIGGERS_TEST_REDIS_URL"


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
    return f"t_{os.getpid()}_{uuid.uuid4().hex[:12]}"


async def drop_schema_async(url: str, schema: str) -> None:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


def drop_schema(url: str, schema: str) -> None:
    """Synchronous drop, safe to call from a sync fixture even while an event loop runs."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(drop_schema_async(url, schema))
        except BaseException as exc:  # reported to the caller's thread below
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
