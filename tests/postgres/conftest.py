"""Fixtures for the PostgreSQL- and Redis-specific tests: a private schema, store instances on it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from tests.postgres.schemas import drop_schema_async, new_schema_name, postgres_url
from triggers_api.storage.postgres import PostgresStorage

OpenStore = Callable[..., Awaitable[PostgresStorage]]


@pytest.fixture
def pg_url() -> str:
    return postgres_url()


@pytest.fixture
async def pg_schema(pg_url: str) -> AsyncIterator[str]:
    schema = new_schema_name()
    try:
        yield schema
    finally:
        await drop_schema_async(pg_url, schema)


@pytest.fixture
async def open_store(pg_url: str, pg_schema: str) -> AsyncIterator[OpenStore]:
    """Opens PostgresStorage instances on one schema (each one stands for another process)."""
    opened: list[PostgresStorage] = []

    async def open_one(**options: int) -> PostgresStorage:
        store = PostgresStorage(pg_url, schema=pg_schema, **{"pool_min": 1, "pool_max": 4, **options})
        await store.open()
        opened.append(store)
        return store

    try:
        yield open_one
    finally:
        for store in reversed(opened):
            await store.close()
