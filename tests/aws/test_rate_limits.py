"""Per-key rate limits in DynamoDB (``aws/rate_limits.py``) through ``auth.RateLimiter``, against
the emulator's ``<prefix>-counters`` table: two limiters stand for two Lambda containers."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.aws.conftest import REGION, Migrated
from tests.conftest import make_settings
from triggers_api.app import rate_limit_url
from triggers_api.auth import Principal, RateLimiter
from triggers_api.aws.rate_limits import DynamoDBStorage
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
