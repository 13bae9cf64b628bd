"""Per-key rate limits in DynamoDB (``aws/rate_limits.py``) through ``auth.RateLimiter``, against
the emulator's ``<prefix>-counters`` table: two limiters stand for two Lambda containers."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.aws.conftest import REGION, Migrated
from tests.conftest import make_settings
from triggers_api.app import rate_limit_url
from triggers_api.auth import Principal, RateLimiter
from triggers_api.aws.rate_limits import DynamoDBStorage, limit_and_shards
from triggers_api.errors import RateLimitExceeded

NOW = 1_767_225_610.0  # 10 s into a minute: the test's hits all fall in one window


@pytest.fixture
def url(migrated: Migrated, aws_endpoint: str) -> str:
    return f"dynamodb://{migrated.prefix}?region={REGION}&endpoint_url={aws_endpoint}"


@pytest.fixture(autouse=True)
def pinned_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The counters' clock and the limiter's (for ``t=``), pinned in both modules only."""
    monkeypatch.setattr(DynamoDBStorage, "clock", staticmethod(lambda: NOW))
    monkeypatch.setattr("triggers_api.auth.time", SimpleNamespace(time=lambda: NOW, monotonic=time.monotonic))


def principal(key_id: str, limit: int = 3) -> Principal:
    return Principal(key_id=key_id, user_id="alice", scopes=frozenset(), rate_limit=limit)


def headers(answer: list[tuple[bytes, bytes]]) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in answer}


async def test_the_limit_is_shared_by_every_instance_with_the_same_headers_and_429(url: str) -> None:
    first, second = RateLimiter(url), RateLimiter(url)  # two containers
    assert first.shared and isinstance(first.backend, DynamoDBStorage)
    caller = principal("key-shared")
    h1 = headers(await first.hit(caller))
    assert h1 == {"ratelimit-policy": '"per-key";q=3;w=60', "ratelimit": '"per-key";r=2;t=50'}
    assert headers(await second.hit(caller))["ratelimit"] == '"per-key";r=1;t=50'
    assert headers(await first.hit(caller))["ratelimit"] == '"per-key";r=0;t=50'
    with pytest.raises(RateLimitExceeded) as refused:
        await second.hit(caller)
    assert refused.value.status_code == 429
    assert refused.value.headers == {
        "Retry-After": "50",
        "RateLimit-Policy": '"per-key";q=3;w=60',
        "RateLimit": '"per-key";r=0;t=50',
    }
    assert first.failures == second.failures == 0
    # another key has its own counter
    assert headers(await second.hit(principal("key-other")))["ratelimit"] == '"per-key";r=2;t=50'


async def test_the_next_window_starts_from_zero_and_counters_carry_a_ttl(
    url: str, migrated: Migrated, monkeypatch: pytest.MonkeyPatch
) -> None:
    limiter = RateLimiter(url)
    caller = principal("key-window", limit=1)
    await limiter.hit(caller)
    with pytest.raises(RateLimitExceeded):
        await limiter.hit(caller)
    monkeypatch.setattr(DynamoDBStorage, "clock", staticmethod(lambda: NOW + 60))
    monkeypatch.setattr(
        "triggers_api.auth.time", SimpleNamespace(time=lambda: NOW + 60, monotonic=time.monotonic)
    )
    assert headers(await limiter.hit(caller))["ratelimit"] == '"per-key";r=0;t=50'
    window = int(NOW // 60)
    item = migrated.dynamodb.get_item(
        TableName=f"{migrated.prefix}-counters",
        Key={"counter": {"S": f"rl#LIMITER/key-window/1/1/minute#{window}"}},
        ConsistentRead=True,
    )["Item"]
    assert item["hits"] == {"N": "2"}  # over-limit hits count, as with limits' own storages
    assert int(item["ttl"]["N"]) == (window + 1) * 60 + 60


async def test_reads_for_the_headers_come_from_the_store_when_this_instance_has_no_count(url: str) -> None:
    writer, reader = RateLimiter(url), RateLimiter(url)
    item_key = "LIMITER/key-read/5/1/minute"
    await writer.backend.incr(item_key, 60, amount=2)
    assert await reader.backend.get(item_key) == 2  # a consistent GetItem
    assert await reader.backend.get_expiry(item_key) == (int(NOW // 60) + 1) * 60
    assert await reader.backend.check() is True
    await reader.backend.clear(item_key)
    assert await writer.backend.get("LIMITER/unknown/5/1/minute") == 0


async def test_an_unreachable_counter_table_fails_open(url: str) -> None:
    limiter = RateLimiter(url.replace("dynamodb://", "dynamodb://missing-prefix-x"))
    assert await limiter.hit(principal("key-open")) == []
    assert limiter.failures == 1
    assert (await limiter.health())["status"] == "unavailable"


def test_dynamodb_is_chosen_from_the_database_url_unless_redis_is_set(tmp_path: Path) -> None:
    url = "dynamodb://triggers-dev?region=eu-west-1"
    assert rate_limit_url(make_settings(tmp_path, database_url=url)) == url
    assert (
        rate_limit_url(make_settings(tmp_path, database_url=url, redis_url="redis://r:6379"))
        == "redis://r:6379"
    )
    sqlite = make_settings(tmp_path, database_url=f"sqlite:///{tmp_path / 'x.db'}", redis_url=None)
    assert rate_limit_url(sqlite) is None
    storage: Any = RateLimiter(url).backend
    assert (storage.table, storage.region, storage.endpoint_url) == (
        "triggers-dev-counters",
        "eu-west-1",
        None,
    )


# -- sharded counters: a key whose limit one item could not take ----------------------------------------
class CountingClient:
    """The real client, counting the calls this limiter makes (what a request costs)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        real = getattr(self._client, name)
        if name.startswith("_") or name in ("exceptions", "meta") or not callable(real):
            return real

        def call(**kwargs: Any) -> Any:
            self.calls.append(name)
            return real(**kwargs)

        return call


def counting(limiter: RateLimiter) -> CountingClient:
    backend: Any = limiter.backend
    backend._client = CountingClient(backend.client)
    client: CountingClient = backend._client
    return client


def counter_items(migrated: Migrated, key: str) -> dict[str, int]:
    """Every counter item of a limits key in the pinned window: item key -> hits (GetItem by key,
    never a Scan: shard ids 0..63 and the unsharded item)."""
    window = int(NOW // 60)
    base = f"rl#{key}#{window}"
    found: dict[str, int] = {}
    for item_key in [base] + [f"{base}#{i}" for i in range(64)]:
        item = migrated.dynamodb.get_item(
            TableName=f"{migrated.prefix}-counters", Key={"counter": {"S": item_key}}, ConsistentRead=True
        ).get("Item")
        if item is not None:
            found[item_key] = int(item["hits"]["N"])
    return found


@pytest.fixture
def small_shards(monkeypatch: pytest.MonkeyPatch) -> None:
    """Shards planned at 0.05 hits/s: a 12/min limit is then 4 shards of 3 (what 120,000/min is
    with the real 500/s), so a test needs a dozen hits, not a hundred thousand."""
    monkeypatch.setattr(DynamoDBStorage, "hits_per_shard_per_s", 0.05)


def patient(limiter: RateLimiter, endpoint: str) -> RateLimiter:
    """The limiter on a client that waits and never retries. The emulator answers one DynamoDB call
    at a time, so racing calls can queue past the production client's 0.5 s read timeout, and
    botocore's retry of an ADD that was applied counts its hit twice (an over-count, also possible
    on AWS: a hit refused early, never one admitted too many); this test is about the counter."""
    import boto3
    from botocore.config import Config

    backend: Any = limiter.backend
    backend._client = boto3.session.Session(region_name=REGION).client(
        "dynamodb", endpoint_url=endpoint, config=Config(read_timeout=60, retries={"total_max_attempts": 1})
    )
    return limiter


def test_the_limit_and_shard_count_come_from_the_limits_key() -> None:
    assert limit_and_shards("LIMITER/key-a/1000/1/minute", 60, 500) == (1000, 1)  # the default key
    assert limit_and_shards("LIMITER/key-a/30000/1/minute", 60, 500) == (30_000, 1)
    assert limit_and_shards("LIMITER/key-a/30001/1/minute", 60, 500) == (30_001, 2)
    assert limit_and_shards("LIMITER/key-a/600000/1/minute", 60, 500) == (600_000, 20)
    assert limit_and_shards("LIMITER/a/b/12/1/minute", 60, 0.05) == (12, 4)  # a "/" in the id
    assert limit_and_shards("odd-key", 60, 500) == (0, 1)


@pytest.mark.usefixtures("small_shards")
async def test_a_large_limit_spreads_over_shards_and_refuses_exactly_at_the_limit(
    url: str, migrated: Migrated, aws_endpoint: str
) -> None:
    first, second = patient(RateLimiter(url), aws_endpoint), patient(RateLimiter(url), aws_endpoint)
    caller = principal("key-sharded", limit=12)
    remaining: list[int] = []
    for n in range(12):
        answer = headers(await (first if n % 2 else second).hit(caller))
        remaining.append(int(answer["ratelimit"].split("r=")[1].split(";")[0]))
    assert all(0 <= r < 12 for r in remaining) and remaining[-1] == 0  # the last hit fills its shard
    for limiter in (first, second):
        with pytest.raises(RateLimitExceeded) as refused:
            await limiter.hit(caller)
        assert refused.value.headers["RateLimit"] == '"per-key";r=0;t=50'
    items = counter_items(migrated, "LIMITER/key-sharded/12/1/minute")
    window = int(NOW // 60)
    assert items == {f"rl#LIMITER/key-sharded/12/1/minute#{window}#{i}": 3 for i in range(4)}
    assert first.failures == second.failures == 0
    # a container that does not hold the count reads every shard (one consistent BatchGetItem)
    reader = RateLimiter(url)
    client = counting(reader)
    assert await reader.backend.get("LIMITER/key-sharded/12/1/minute") == 12
    assert client.calls == ["batch_get_item"]


@pytest.mark.usefixtures("small_shards")
async def test_racing_containers_admit_exactly_the_limit_of_a_sharded_counter(
    url: str, aws_endpoint: str
) -> None:
    limiters = [patient(RateLimiter(url), aws_endpoint) for _ in range(3)]
    caller = principal("key-race", limit=12)

    async def one(n: int) -> bool:
        try:
            await limiters[n % 3].hit(caller)
        except RateLimitExceeded:
            return False
        return True

    admitted = await asyncio.gather(*(one(n) for n in range(30)))
    assert sum(admitted) == 12  # no hit too many, and none refused while a shard had room
    assert all(limiter.failures == 0 for limiter in limiters)


@pytest.mark.usefixtures("small_shards")
async def test_a_container_refuses_a_full_sharded_window_without_calls(url: str, aws_endpoint: str) -> None:
    filler, late = patient(RateLimiter(url), aws_endpoint), patient(RateLimiter(url), aws_endpoint)
    caller = principal("key-full", limit=12)
    for _ in range(12):
        await filler.hit(caller)
    client = counting(late)
    with pytest.raises(RateLimitExceeded):
        await late.hit(caller)
    assert client.calls == ["update_item"] * 4  # each shard found full once, by a failed conditional ADD
    client.calls.clear()
    with pytest.raises(RateLimitExceeded):
        await late.hit(caller)
    assert client.calls == []  # shards only fill within a window: no call until it ends


async def test_a_small_limit_is_one_unsharded_item(url: str, migrated: Migrated) -> None:
    limiter = RateLimiter(url)
    caller = principal("key-small", limit=1_000)  # the default limit: 17 hits/s at most
    client = counting(limiter)
    for _ in range(3):
        await limiter.hit(caller)
    assert client.calls == ["update_item"] * 3  # one write per request, as before sharding existed
    window = int(NOW // 60)
    assert counter_items(migrated, "LIMITER/key-small/1000/1/minute") == {
        f"rl#LIMITER/key-small/1000/1/minute#{window}": 3
    }


@pytest.mark.usefixtures("small_shards")
async def test_clearing_a_sharded_key_deletes_every_shard(url: str, migrated: Migrated) -> None:
    limiter = RateLimiter(url)
    caller = principal("key-clear", limit=12)
    for _ in range(12):
        await limiter.hit(caller)
    with pytest.raises(RateLimitExceeded):
        await limiter.hit(caller)
    await limiter.backend.clear("LIMITER/key-clear/12/1/minute")
    assert counter_items(migrated, "LIMITER/key-clear/12/1/minute") == {}
    assert headers(await limiter.hit(caller))["ratelimit"].endswith(";t=50")  # admitted: starts over
