"""A schema change made in one process applies in another within a second (``schema_cache_ttl``),
and the catalog cache reads the database once per interval, not once per request."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import start_server
from triggers_api.event_types.validators import SchemaCache
from triggers_api.storage.sqlite import SQLiteStorage

SCHEMA = {"type": "object", "properties": {"amount": {"type": "number", "minimum": 0}}}
BAD = {"event_type": "order.completed", "payload": {"amount": -5}}


def test_a_change_in_one_process_applies_in_another_within_a_second(tmp_path: Path) -> None:
    first = start_server(tmp_path)
    second = start_server(tmp_path)  # same database: another process of the same deployment
    try:
        headers = {"X-API-Key": first.api_key}
        with httpx.Client(headers=headers, timeout=10) as client:
            assert (
                client.post(f"{second.url}/v1/events", json=BAD).status_code == 201
            )  # cache warm: no schema
            put = client.put(f"{first.url}/v1/event-types/order.completed", json={"schema": SCHEMA})
            assert put.status_code == 201
            time.sleep(1.1)
            refused = client.post(f"{second.url}/v1/events", json=BAD)
            assert refused.status_code == 400
            assert refused.json()["error"]["details"] == {
                "/payload/amount": "-5 is less than the minimum of 0"
            }

            client.put(f"{first.url}/v1/event-types/order.completed", json={"schema": SCHEMA, "mode": "warn"})
            time.sleep(1.1)
            warned = client.post(f"{second.url}/v1/events", json=BAD)
            assert warned.status_code == 201
            metadata = client.get(f"{second.url}/v1/events/{warned.json()['event_id']}").json()["metadata"]
            assert metadata["schema_version"] == 1 and len(metadata["schema_violations"]) == 1

            assert client.delete(f"{first.url}/v1/event-types/order.completed").status_code == 204
            time.sleep(1.1)
            free = client.post(f"{second.url}/v1/events", json=BAD)
            metadata = client.get(f"{second.url}/v1/events/{free.json()['event_id']}").json()["metadata"]
            assert "schema_version" not in metadata
    finally:
        second.stop()
        first.stop()


class CountingStorage(SQLiteStorage):
    """A real SQLite store that counts the catalog reads the cache makes."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.reads: dict[str, int] = {"stamps": 0, "catalog": 0}

    async def event_type_stamps(self) -> dict[str, int]:
        self.reads["stamps"] += 1
        return await super().event_type_stamps()

    async def list_event_types(self, user_id: str) -> list[Any]:
        self.reads["catalog"] += 1
        return await super().list_event_types(user_id)


async def test_the_cache_reads_once_per_interval_not_per_request(tmp_path: Path) -> None:
    storage = CountingStorage(tmp_path / "cache.db")
    await storage.open()
    try:
        cache = SchemaCache(storage, ttl=60)  # an interval no test run reaches
        for _ in range(1000):
            catalog = cache.peek("alice")
            if catalog is None:
                catalog = await cache.catalog("alice")
            assert catalog == {}
        assert storage.reads == {"stamps": 1, "catalog": 1}
    finally:
        await storage.close()
