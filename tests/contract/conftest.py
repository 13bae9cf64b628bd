"""The ``storage`` fixture: every contract test runs once per backend.

Each run gets a fresh store: a new SQLite file, a private PostgreSQL schema (dropped after), or
a fresh name prefix on the session's AWS emulator (moto's server mode, ``tests/aws_emulator.py``;
its tables and queues are deleted after), so tests and concurrent runs never see each other's rows. ``open_twin`` opens a second instance
on the same data, as a second process would, to prove cross-process guarantees.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from tests.aws_emulator import REGION, TEST_DUE_SHARDS, TEST_STREAM_SETTLE_S, new_prefix
from tests.postgres.schemas import drop_schema_async, new_schema_name, postgres_url
from triggers_api.storage.base import Storage
from triggers_api.storage.postgres import PostgresStorage
from triggers_api.storage.sqlite import SQLiteStorage

BACKENDS = ["sqlite", "postgres", "dynamodb"]
#: The DynamoDB store holds the stream back this long (see storage/dynamodb/stream.py); short in
#: tests, long enough for a write on a loaded machine to finish inside it.
DYNAMODB_SETTLE_S = TEST_STREAM_SETTLE_S
#: DueIndex partitions per kind in tests (production: 64). A claim queries each one, and the
#: emulator answers one Query at a time; the claim logic is the same for any count.
DYNAMODB_DUE_SHARDS = TEST_DUE_SHARDS

OpenTwin = Callable[[], Awaitable[Storage]]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
async def storage_factory(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[OpenTwin]:
    """Opens instances of one backend on one shared store; all are closed (and dropped) after."""
    opened: list[Storage] = []
    url = postgres_url() if backend == "postgres" else ""
    schema = new_schema_name()
    endpoint = ""
    prefix = new_prefix()
    if backend == "dynamodb":
        endpoint = request.getfixturevalue("aws_endpoint")
        request.getfixturevalue("aws_env")

    async def open_one() -> Storage:
        store: Storage
        if backend == "sqlite":
            store = SQLiteStorage(tmp_path / "contract.db")
        elif backend == "dynamodb":
            from triggers_api.storage.dynamodb import DynamoDBStorage

            store = DynamoDBStorage(
                prefix,
                region=REGION,
                endpoint_url=endpoint,
                stream_settle_s=DYNAMODB_SETTLE_S,
                due_shards=DYNAMODB_DUE_SHARDS,
            )
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
        if backend == "dynamodb":
            await asyncio.to_thread(_drop_aws_prefix, endpoint, prefix)


def _drop_aws_prefix(endpoint: str, prefix: str) -> None:
    """Delete the test's tables and queues (moto keeps everything in memory for the whole run)."""
    from triggers_api.storage.dynamodb.migrate import connect
    from triggers_api.storage.dynamodb.schema import QUEUES, TABLES

    dynamodb, sqs = connect(REGION, endpoint)
    for table in TABLES:
        try:
            dynamodb.delete_table(TableName=table.name(prefix))
        except dynamodb.exceptions.ResourceNotFoundException:
            pass
    for queue in QUEUES:
        try:
            sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName=queue.name(prefix))["QueueUrl"])
        except sqs.exceptions.QueueDoesNotExist:
            pass


@pytest.fixture
async def storage(storage_factory: OpenTwin) -> Storage:
    return await storage_factory()


@pytest.fixture
def open_twin(storage: Storage, storage_factory: OpenTwin) -> OpenTwin:
    """A second instance on the same data as ``storage`` (another process, in effect)."""
    return storage_factory
