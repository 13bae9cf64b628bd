"""The ``storage`` fixture: every contract test runs once per backend.

Each run gets a fresh store: a new SQLite file, or a private PostgreSQL schema (dropped after),
so tests and concurrent runs never see each other's rows. ``open_twin`` opens a second instance
on the same data, as a second process would, to prove cross-process guarantees.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from tests.postgres.schemas import drop_schema_async, new_schema_name, postgres_url
from triggers_api.storage.base import Storage
from triggers_api.storage.postgres import PostgresStorage
from triggers_api.storage.sqlite import SQLiteStorage

BACKENDS = ["sqlite", "postgres"]

OpenTwin = Callable[[], Awaitable[Storage]]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
async def storage_factory(backend: str, tmp_path: Path) -> AsyncIterator[OpenTwin]:
    """Opens instances of one backend on one shared store; all are closed (and dropped) after."""
    opened: list[Storage] = []
    url = postgres_url() if backend == "postgres" else ""
    schema = new_schema_name()

    async def open_one() -> Storage:
        store: Storage
        if backend == "sqlite":
            store = SQLiteStorage(tmp_path / "contract.db")
        else:
            store = PostgresStorage(url, schema=schema, pool_min=1, pool_max=4)
        await store.open()
        opened.append(store)
        return store

    try:
        yield open_one
    finally:
        for store in reversed(opened):
            await store.close()
        if backend == "postgres":
            await drop_schema_async(url, schema)


@pytest.fixture
async def storage(storage_factory: OpenTwin) -> Storage:
    return await storage_factory()


@pytest.fixture
def open_twin(storage: Storage, storage_factory: OpenTwin) -> OpenTwin:
    """A second instance on the same data as ``storage`` (another process, in effect)."""
    return storage_factory
