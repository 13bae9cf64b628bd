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
end + 60 s) lets DynamoDB delete spent windows.

**Sharded counters.** One item takes at most 1,000 writes/s, so a key whose limit allows more than
``hits_per_shard_per_s`` (500: half of that) is counted on ``N = schema.counter_shards(limit)``
items ``rl#<limits key>#<window>#<i>``; the limit is read from the ``limits`` key
(``<namespace>/<id>/<amount>/<multiples>/<granularity>``). Shard ``i`` admits at most its quota
(``schema.counter_quotas``: they sum to the limit) through a conditional ``ADD`` (``hits <= quota -
n``). A hit goes to a random shard; when that one is full it tries the others, and it is refused
only once every shard was found full: never one hit more than the limit, and no refusal while any
shard has room, however many containers race. Shards only fill within a window, so a container
remembers the full ones and, once all are, refuses without a call until the window ends: a refused
request costs at most N failed writes per container per window, then nothing. An admitted hit is
still one write: N = 1 (every limit up to 30,000/min, the default 1,000 included) is the single
unconditional item above, unchanged. Summing N reads on every hit was the other way; it would move
the hot spot to reads (every hit reading every shard: 3,000 RCU/s per item caps it near 3,000
hits/s) and cost N reads per request.

``get``/``get_expiry`` (``limits`` asks them for the headers right after ``incr``) answer from
the count ``incr`` just returned when it is for the current window, instead of more reads:
``RateLimit: r=`` may then ignore hits other instances made in between, never the 429 decision.
On a sharded counter that count is the admitting shard's fill scaled to the limit (an estimate:
shards fill evenly only on average); ``get`` without it sums the shards (consistent
``BatchGetItem``). Windows start on the minute for every key (``limits``' memory and Redis windows
start at a key's first hit); the headers' ``t=`` says when.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

from limits.aio.storage import Storage

from triggers_api.storage.dynamodb.schema import SHARD_TARGET_WCU_PER_S, counter_quotas, counter_shards

COUNTER_PREFIX = "rl#"
TTL_MARGIN_S = 60
BATCH_GET_MAX_KEYS = 100
BATCH_GET_ATTEMPTS = 5


def limit_and_shards(key: str, expiry: int, hits_per_shard_per_s: float) -> tuple[int, int]:
    """(limit, shard count) of a ``limits`` key; an unexpected key shape is one unsharded item."""
    try:
        limit = int(key.rsplit("/", 3)[-3])
    except (IndexError, ValueError):
        return 0, 1
    if limit <= 0:
        return limit, 1
    return limit, counter_shards(limit, window_s=expiry, target_wcu=hits_per_shard_per_s)


class DynamoDBStorage(Storage):
    STORAGE_SCHEME = ["async+dynamodb"]

    #: The clock (seconds); tests pin it so a window boundary cannot split a test's hits.
    clock = staticmethod(time.time)
    #: Planned writes per second on one counter item (half the partition limit); tests lower it
    #: so a few hits show the sharding.
    hits_per_shard_per_s: float = SHARD_TARGET_WCU_PER_S

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
        self._full: dict[str, tuple[int, set[int]]] = {}  # key -> (window, its shards found full)
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

    def _shards(self, key: str, expiry: int) -> tuple[int, int]:
        return limit_and_shards(key, expiry, self.hits_per_shard_per_s)

    @staticmethod
    def _item_key(key: str, window: int, shard: int | None = None) -> str:
        base = f"{COUNTER_PREFIX}{key}#{window}"
        return base if shard is None else f"{base}#{shard}"

    def _item_keys(self, key: str, window: int, expiry: int) -> list[str]:
        shards = self._shards(key, expiry)[1]
        if shards == 1:
            return [self._item_key(key, window)]
        return [self._item_key(key, window, i) for i in range(shards)]

    async def _add(self, item_key: str, amount: int, end: float, room: int | None = None) -> int:
        """ADD ``amount`` to one counter item, only while it holds at most ``room`` when given."""
        request: dict[str, Any] = {
            "TableName": self.table,
            "Key": {"counter": {"S": item_key}},
            "UpdateExpression": "ADD hits :n SET #ttl = if_not_exists(#ttl, :ttl)",
            "ExpressionAttributeNames": {"#ttl": "ttl"},
            "ExpressionAttributeValues": {
                ":n": {"N": str(amount)},
                ":ttl": {"N": str(int(end) + TTL_MARGIN_S)},
            },
            "ReturnValues": "UPDATED_NEW",
        }
        if room is not None:
            request["ConditionExpression"] = "attribute_not_exists(hits) OR hits <= :room"
            request["ExpressionAttributeValues"][":room"] = {"N": str(room)}
        answer = await asyncio.to_thread(self.client.update_item, **request)
        return int(answer["Attributes"]["hits"]["N"])

    async def _incr_sharded(
        self, key: str, window: int, end: float, limit: int, shards: int, amount: int
    ) -> int:
        """One hit on a sharded counter: the count to compare with ``limit`` (over it: refused)."""
        from botocore.exceptions import ClientError

        known = self._full.get(key)
        if known is None or known[0] != window:
            if len(self._full) > 10_000:
                self._full.clear()
            known = self._full[key] = (window, set())
        full = known[1]
        quotas = counter_quotas(limit, shards)
        start = random.randrange(shards)
        for step in range(shards):
            shard = (start + step) % shards
            if shard in full or quotas[shard] < amount:
                continue
            try:
                hits = await self._add(
                    self._item_key(key, window, shard), amount, end, quotas[shard] - amount
                )
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    raise
                if amount == 1:
                    full.add(shard)  # it holds its whole quota: it stays full until the window ends
                continue
            # the window's count as this shard's fill suggests (the 429 decision needs none)
            return min(limit, hits * limit // quotas[shard])
        return limit + amount

    async def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        window, end = self._window(self.clock(), expiry)
        limit, shards = self._shards(key, expiry)
        if shards == 1:
            count = await self._add(self._item_key(key, window), amount, end)
        else:
            count = await self._incr_sharded(key, window, end, limit, shards, amount)
        if len(self._latest) > 10_000:
            self._latest.clear()
        self._latest[key] = (count, end, expiry)
        return count

    def _expiry_of(self, key: str) -> int:
        latest = self._latest.get(key)
        return latest[2] if latest is not None else 60

    async def _sum(self, item_keys: list[str]) -> int:
        """The hits of these counter items: consistent BatchGetItem, unprocessed keys retried."""
        total = 0
        for first in range(0, len(item_keys), BATCH_GET_MAX_KEYS):
            request: dict[str, Any] = {
                self.table: {
                    "Keys": [{"counter": {"S": k}} for k in item_keys[first : first + BATCH_GET_MAX_KEYS]],
                    "ConsistentRead": True,
                }
            }
            for attempt in range(BATCH_GET_ATTEMPTS):
                answer = await asyncio.to_thread(self.client.batch_get_item, RequestItems=request)
                total += sum(int(i["hits"]["N"]) for i in answer.get("Responses", {}).get(self.table, []))
                request = answer.get("UnprocessedKeys") or {}
                if not request:
                    break
                await asyncio.sleep(0.02 * 2**attempt)
            else:
                raise RuntimeError("counter shards left unread after retries")  # the limiter fails open
        return total

    async def get(self, key: str) -> int:
        latest = self._latest.get(key)
        if latest is not None and latest[1] > self.clock():
            return latest[0]
        expiry = self._expiry_of(key)
        window, _ = self._window(self.clock(), expiry)
        item_keys = self._item_keys(key, window, expiry)
        if len(item_keys) > 1:
            return await self._sum(item_keys)
        answer = await asyncio.to_thread(
            self.client.get_item,
            TableName=self.table,
            Key={"counter": {"S": item_keys[0]}},
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
        self._full.clear()
        return None

    async def clear(self, key: str) -> None:
        """Deletes the key's current window (every shard). Other containers that found shards full
        keep refusing until the window ends."""
        expiry = self._expiry_of(key)
        window, _ = self._window(self.clock(), expiry)
        self._latest.pop(key, None)
        self._full.pop(key, None)
        for item_key in self._item_keys(key, window, expiry):
            await asyncio.to_thread(
                self.client.delete_item, TableName=self.table, Key={"counter": {"S": item_key}}
            )
