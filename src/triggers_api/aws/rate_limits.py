"""Per-key rate limits shared by every instance, in DynamoDB: a ``limits`` async storage.

Registered with ``limits`` as ``async+dynamodb://`` (importing this module registers it), so
``auth.RateLimiter`` takes it exactly as it takes Redis: ``RateLimiter("dynamodb://<prefix>?...")``
(``app.rate_limit_url`` picks it when ``TRIGGERS_DATABASE_URL`` is ``dynamodb://`` and no
``TRIGGERS_REDIS_URL`` is set). Same fixed windows, same ``RateLimit`` headers, same 429s, same
fail-open when the store does not answer.

Fixed windows of section 14.1: a key's window is ``floor(now / 60 s)``, and its counter is the
item ``counter = "rl#<limits key>#<window>"`` of ``<prefix>-counters``, bumped with one atomic
``UpdateItem ADD hits :n`` that returns the new count (so every instance counts against the same
number, and the check is the write: no read-then-write race). Putting the window in the key makes
the reset free (the next window is another item) and needs no condition; ``ttl`` (the window's
end + 60 s) lets DynamoDB delete spent windows. One item takes up to 1,000 writes/s, so a key is
one item up to 60,000 requests/min (``schema.counter_shards``: sharding a counter is not needed
below that and not built).

``get``/``get_expiry`` (``limits`` asks them for the headers right after ``incr``) answer from
the count ``incr`` just returned when it is for the current window, instead of two more reads:
``RateLimit: r=`` may then ignore hits other instances made in between, never the 429 decision.
Windows start on the minute for every key (``limits``' memory and Redis windows start at a key's
first hit); the headers' ``t=`` says when.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

from limits.aio.storage import Storage

COUNTER_PREFIX = "rl#"
TTL_MARGIN_S = 60


class DynamoDBStorage(Storage):
    STORAGE_SCHEME = ["async+dynamodb"]

    #: The clock (seconds); tests pin it so a window boundary cannot split a test's hits.
    clock = staticmethod(time.time)

    def __init__(self, uri: str, wrap_exceptions: bool = False, client: Any = None, **options: Any) -> None:
        parts = urlsplit(uri)
        query = parse_qs(parts.query)
        self.prefix = parts.netloc
        if not self.prefix:
            raise ValueError("dynamodb:// needs a table prefix: dynamodb://<prefix>?region=<region>")
        self.table = f"{self.prefix}-counters"
        self.region = query.get("region", [None])[0]
        self.endpoint_url = query.get("endpoint_url", [None])[0]
        self._client = client
        self._latest: dict[str, tuple[int, float, int]] = {}  # key -> (count, window end, expiry)
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        from botocore.exceptions import BotoCoreError, ClientError

        return (BotoCoreError, ClientError)

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config

            self._client = boto3.session.Session(region_name=self.region).client(
                "dynamodb",
                endpoint_url=self.endpoint_url,
                # a slow counter store must cost a request little (the limiter fails open)
                config=Config(connect_timeout=0.5, read_timeout=0.5, retries={"max_attempts": 2}),
            )
        return self._client

    @staticmethod
    def _window(now: float, expiry: int) -> tuple[int, float]:
        window = int(now // expiry)
        return window, float((window + 1) * expiry)

    async def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        window, end = self._window(self.clock(), expiry)
        answer = await asyncio.to_thread(
            self.client.update_item,
            TableName=self.table,
            Key={"counter": {"S": f"{COUNTER_PREFIX}{key}#{window}"}},
            UpdateExpression="ADD hits :n SET #ttl = if_not_exists(#ttl, :ttl)",
            ExpressionAttributeNames={"#ttl": "ttl"},
            ExpressionAttributeValues={":n": {"N": str(amount)}, ":ttl": {"N": str(int(end) + TTL_MARGIN_S)}},
            ReturnValues="UPDATED_NEW",
        )
        count = int(answer["Attributes"]["hits"]["N"])
        if len(self._latest) > 10_000:
            self._latest.clear()
        self._latest[key] = (count, end, expiry)
        return count

    def _expiry_of(self, key: str) -> int:
        latest = self._latest.get(key)
        return latest[2] if latest is not None else 60

    async def get(self, key: str) -> int:
        latest = self._latest.get(key)
        if latest is not None and latest[1] > self.clock():
            return latest[0]
        window, _ = self._window(self.clock(), self._expiry_of(key))
        answer = await asyncio.to_thread(
            self.client.get_item,
            TableName=self.table,
            Key={"counter": {"S": f"{COUNTER_PREFIX}{key}#{window}"}},
            ConsistentRead=True,
        )
        item = answer.get("Item")
        return int(item["hits"]["N"]) if item else 0

    async def get_expiry(self, key: str) -> float:
        latest = self._latest.get(key)
        if latest is not None and latest[1] > self.clock():
            return latest[1]
        return self._window(self.clock(), self._expiry_of(key))[1]

    async def check(self) -> bool:
        await asyncio.to_thread(self.client.describe_table, TableName=self.table)
        return True

    async def reset(self) -> int | None:
        """Not supported (it would need a Scan of every counter): spent windows expire by TTL."""
        self._latest.clear()
        return None

    async def clear(self, key: str) -> None:
        window, _ = self._window(self.clock(), self._expiry_of(key))
        self._latest.pop(key, None)
        await asyncio.to_thread(
            self.client.delete_item,
            TableName=self.table,
            Key={"counter": {"S": f"{COUNTER_PREFIX}{key}#{window}"}},
        )
