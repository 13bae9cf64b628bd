"""Raising a hot user's event shard count (docs/deploy-aws.md, "Hot partitions"): the
``triggers-api shards`` command an operator runs, and the conditional write that keeps racing
raises from ever lowering the count (a lowered count would hide written shards from readers)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest

from tests.aws.conftest import Migrated
from tests.aws_emulator import REGION
from triggers_api.storage.dynamodb import DynamoDBStorage
from triggers_api.storage.dynamodb.schema import ShardCount


def shards_cli(tmp_path: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "triggers_api.cli", "shards", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "TRIGGERS_DATABASE_URL": url},
        cwd=tmp_path,
        timeout=120,
    )


@pytest.fixture
async def store(aws_endpoint: str, migrated: Migrated) -> AsyncIterator[DynamoDBStorage]:
    s = DynamoDBStorage(migrated.prefix, region=REGION, endpoint_url=aws_endpoint)
    await s.open()
    try:
        yield s
    finally:
        await s.close()


async def test_the_command_shows_and_raises_a_users_shards_and_never_lowers_them(
    tmp_path: Path, aws_endpoint: str, migrated: Migrated, store: DynamoDBStorage
) -> None:
    url = f"dynamodb://{migrated.prefix}?region={REGION}&endpoint_url={aws_endpoint}"
    user = f"hot-{uuid.uuid4().hex[:8]}"
    shown = shards_cli(tmp_path, url, "--user-id", user, "--json")
    assert shown.returncode == 0, shown.stderr
    assert orjson.loads(shown.stdout) == {
        "user_id": user,
        "shards": 1,
        "writing": 1,
        "writers_switch_at": None,
    }

    raised = shards_cli(tmp_path, url, "--user-id", user, "--events-per-second", "10000", "--json")
    assert raised.returncode == 0, raised.stderr
    body = orjson.loads(raised.stdout)
    # the arithmetic of docs/deploy-aws.md: 10,000 events/s x 3 writes of 1 KB, 500 WCU/s a shard
    assert (body["shards"], body["writing"]) == (60, 1)  # read at once, written after the caches expire
    assert body["writers_switch_at"] is not None
    stored = await store.shard_count(user)
    assert (stored.current, stored.previous, stored.for_reading()) == (60, 1, 60)

    lower = shards_cli(tmp_path, url, "--user-id", user, "--to", "8")
    assert lower.returncode == 0 and f"{user}: 60 shards" in lower.stdout  # never lowered
    assert (await store.shard_count(user)).current == 60

    both = shards_cli(tmp_path, url, "--user-id", user, "--to", "8", "--events-per-second", "5")
    assert both.returncode == 2 and "not both" in both.stderr
    too_many = shards_cli(tmp_path, url, "--user-id", user, "--events-per-second", "10000000")
    assert too_many.returncode == 2 and "needs" in too_many.stderr and "Traceback" not in too_many.stderr


def test_the_command_refuses_other_backends_clearly(tmp_path: Path) -> None:
    done = shards_cli(tmp_path, f"sqlite:///{tmp_path / 'triggers.db'}", "--user-id", "alice")
    assert done.returncode == 2
    assert "SQLite and PostgreSQL have nothing to shard" in done.stderr and "Traceback" not in done.stderr


async def test_a_raise_that_lost_a_race_reads_again_and_never_lowers_the_count(
    store: DynamoDBStorage, aws_endpoint: str, migrated: Migrated, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two operators raise at once: one to 40, one to 20 having read the count before the 40
    landed. The 20's conditional write fails, it reads 40 and leaves it (a blind write would
    have stored 20, and readers would have stopped querying shards 20 to 39)."""
    user = f"race-{uuid.uuid4().hex[:8]}"
    other = DynamoDBStorage(migrated.prefix, region=REGION, endpoint_url=aws_endpoint)
    await other.open()
    try:
        real = store.shard_count
        reads: list[ShardCount] = []

        async def stale_then_real(user_id: str) -> ShardCount:
            if not reads:  # the first read happens before the other raise lands
                seen = await real(user_id)
                await other.set_shard_count(user_id, 40)
                reads.append(seen)
                return seen
            reads.append(await real(user_id))
            return reads[-1]

        monkeypatch.setattr(store, "shard_count", stale_then_real)
        result = await store.set_shard_count(user, 20)
        assert [r.current for r in reads] == [1, 40]  # read again after the failed condition
        assert result.current == 40
        monkeypatch.undo()
        assert (await store.shard_count(user)).current == 40
        assert (await store.set_shard_count(user, 64)).current == 64  # a real raise still lands
    finally:
        await other.close()
