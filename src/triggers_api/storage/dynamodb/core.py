"""The DynamoDB backend's core: configuration, clients, the item codec, and the write helpers
every part (``events``, ``keys``, ``audit``, ``event_types``, ``stream``, ``delivery``,
``fanout``) builds on.

Calls go through boto3's thread-safe client on a small thread pool (``_call``): aioboto3 pins an
older botocore than the boto3 the rest of the project (migrate, the Lambda handlers, moto) uses,
and a pool of blocking calls is as concurrent as the connection pool it drives.

Items the events table holds (B1 writes them at insert, B1b's delivery code updates the
delivery fields; ``docs/deploy-aws.md`` has the access patterns):

==================  ===  =====================================================================
attribute           type meaning
==================  ===  =====================================================================
user_shard          S    table key: ``<user_id>#<shard>`` (schema.user_shard)
ts_id               S    table key: ``<ISO µs timestamp>#<event_id>`` (schema.ts_id)
user_id, event_id   S
event_type          S
payload             S/B  the JSON payload as stored (S when UTF-8, else B); absent once acknowledged
status              S    received | queued | delivered | failed
ts_us               N
ttl                 N    = expires_at (Unix s): DynamoDB's TTL, and the ExpiryIndex sort key
metadata            S/B  JSON object
retry_count         N
last_retry_us       N    absent when None (so are delivered_us and acknowledged_us)
delivered_us        N
acknowledged_us     N
attempts            N    delivery attempts ever (B1b)
round_attempts      N    attempts since the last (re)entry into delivery (B1b)
inbox_ts_id         S    InboxIndex sort key (= ts_id) only while status is received/queued/failed
type_ts_id          S    EventTypeIndex sort key: ``<event_type>#<ts_id>``
stream_pos          N    the stream position (see ``stream.py``): StreamIndex and StreamHeadIndex
stream_shard        S    StreamHeadIndex partition: ``stream#<n>`` (schema.global_shard)
expiry_shard        S    ExpiryIndex partition: ``expiry#<n>``
==================  ===  =====================================================================

The deliveries table's ``(event_id, "#event")`` pointer carries ``user_id``, ``user_shard``,
``ts_id`` and ``ttl``: get-by-id is two consistent GetItems, never a scan.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

from triggers_api.errors import StorageError, StorageUnavailableError
from triggers_api.storage.base import INBOX_STATUSES, AuditRecord, EventRecord, now_us
from triggers_api.storage.dynamodb import schema
from triggers_api.storage.dynamodb.schema import (
    BATCH_WRITE_MAX_ITEMS,
    EVENT_POINTER,
    TRANSACT_MAX_ITEMS,
    ShardCount,
)

# botocore clients are untyped (no stubs in the dependencies): Any, kept inside this package.
Client = Any
Item = dict[str, Any]

#: Error codes that mean "AWS is overloaded or unreachable": retried where safe, else 503.
THROTTLING_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "LimitExceededException",
    }
)
RETRY_ATTEMPTS = 8  # bounded retries of unprocessed items / throttled calls
RETRY_BASE_S = 0.025
RETRY_CAP_S = 1.0

INBOX = frozenset(s.value for s in INBOX_STATUSES)


class TransactionCancelled(StorageError):
    """A TransactWriteItems was refused; ``reasons`` holds one code per item (``None`` = fine)."""

    def __init__(self, reasons: list[str | None], items: list[Item] | None = None) -> None:
        super().__init__(f"transaction cancelled: {reasons}")
        self.reasons = reasons
        self.items = items or []


SHARD_RAISE_ATTEMPTS = 5  # conditional raises racing other raises (an operator's command: rare)


class ConditionFailed(StorageError):
    """A conditional write found the item in another state; ``item`` is its old image (or None)."""

    def __init__(self, item: Item | None) -> None:
        super().__init__("condition not met")
        self.item = item


# -- attribute codec ----------------------------------------------------------------------------------
def s(value: str) -> Item:
    return {"S": value}


def n(value: int) -> Item:
    return {"N": str(int(value))}


def blob(value: bytes) -> Item:
    """JSON bytes as S when they are UTF-8 (readable in the console, the archiver), else B."""
    try:
        return {"S": value.decode()}
    except UnicodeDecodeError:
        return {"B": value}


def get_s(item: Item, name: str) -> str:
    return str(item[name]["S"])


def get_n(item: Item, name: str) -> int:
    return int(item[name]["N"])


def opt_n(item: Item, name: str) -> int | None:
    value = item.get(name)
    return None if value is None else int(value["N"])


def get_blob(item: Item, name: str) -> bytes | None:
    value = item.get(name)
    if value is None:
        return None
    if "S" in value:
        return str(value["S"]).encode()
    return bytes(value["B"])


def put_opt_n(item: Item, name: str, value: int | None) -> None:
    if value is not None:
        item[name] = n(value)


def event_key(user_shard: str, ts_id: str) -> Item:
    return {"user_shard": s(user_shard), "ts_id": s(ts_id)}


def pointer_key(event_id: str) -> Item:
    return {"event_id": s(event_id), "item": s(EVENT_POINTER)}


def event_from_item(item: Item) -> EventRecord:
    return EventRecord(
        event_id=get_s(item, "event_id"),
        user_id=get_s(item, "user_id"),
        event_type=get_s(item, "event_type"),
        payload=get_blob(item, "payload"),
        status=get_s(item, "status"),
        ts_us=get_n(item, "ts_us"),
        expires_at=get_n(item, "ttl"),
        metadata=get_blob(item, "metadata") or b"{}",
        retry_count=opt_n(item, "retry_count") or 0,
        last_retry_us=opt_n(item, "last_retry_us"),
        delivered_us=opt_n(item, "delivered_us"),
        acknowledged_us=opt_n(item, "acknowledged_us"),
    )


def audit_item(a: AuditRecord, shard: int) -> Item:
    item: Item = {
        "user_shard": s(schema.user_shard(a.user_id, shard)),
        "ts_log_id": s(schema.ts_id(a.ts_us, a.log_id)),
        "user_id": s(a.user_id),
        "log_id": s(a.log_id),
        "action": s(a.action),
        "ts_us": n(a.ts_us),
        "details": blob(a.details),
        "ip_address": s(a.ip_address),
        "request_id": s(a.request_id),
        "user_action_shard": s(f"{a.user_id}#{a.action}#{shard}"),
        "age_shard": s(schema.global_shard("age", a.log_id)),
        schema.TTL_ATTRIBUTE: n(max(0, a.ts_us // 1_000_000) + schema.AUDIT_RETENTION_DAYS * 86_400),
    }
    if a.event_id is not None:
        item["event_id"] = s(a.event_id)
    return item


def audit_from_item(item: Item) -> AuditRecord:
    event_id = item.get("event_id")
    return AuditRecord(
        log_id=get_s(item, "log_id"),
        user_id=get_s(item, "user_id"),
        action=get_s(item, "action"),
        ts_us=get_n(item, "ts_us"),
        event_id=None if event_id is None else str(event_id["S"]),
        details=get_blob(item, "details") or b"{}",
        ip_address=get_s(item, "ip_address"),
        request_id=get_s(item, "request_id"),
    )


def chunks(items: Sequence[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def backoff_s(attempt: int) -> float:
    """Exponential backoff with full jitter (AWS's recommendation), capped."""
    return random.uniform(0, min(RETRY_CAP_S, RETRY_BASE_S * 2**attempt))


def _error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


@dataclass(frozen=True)
class Names:
    """Table and queue names under one prefix."""

    prefix: str

    def table(self, t: schema.Table) -> str:
        return t.name(self.prefix)

    @property
    def events(self) -> str:
        return schema.EVENTS.name(self.prefix)

    @property
    def deliveries(self) -> str:
        return schema.DELIVERIES.name(self.prefix)

    @property
    def api_keys(self) -> str:
        return schema.API_KEYS.name(self.prefix)

    @property
    def audit(self) -> str:
        return schema.AUDIT_LOGS.name(self.prefix)

    @property
    def idempotency(self) -> str:
        return schema.IDEMPOTENCY.name(self.prefix)

    @property
    def subscriptions(self) -> str:
        return schema.SUBSCRIPTIONS.name(self.prefix)

    @property
    def users(self) -> str:
        return schema.USERS.name(self.prefix)

    @property
    def counters(self) -> str:
        return schema.COUNTERS.name(self.prefix)

    @property
    def event_types(self) -> str:
        return schema.EVENT_TYPES.name(self.prefix)

    @property
    def delivery_queue(self) -> str:
        return schema.DELIVERY.name(self.prefix)

    @property
    def dead_letter_queue(self) -> str:
        return schema.DELIVERY_DLQ.name(self.prefix)


class DynamoCore:
    """Shared state and helpers of :class:`~triggers_api.storage.dynamodb.DynamoDBStorage`."""

    def __init__(
        self,
        prefix: str,
        *,
        region: str,
        endpoint_url: str | None = None,
        workflow_destination: bool = True,
        create_missing: bool | None = None,
        stream_settle_s: float = 2.0,
        max_connections: int = 32,
        client_wrapper: Callable[[Client], Client] | None = None,
    ) -> None:
        self.prefix = prefix
        self.region = region
        self.endpoint_url = endpoint_url
        self.workflow_destination = workflow_destination
        # open() creates what is missing on an emulator (make aws-local, tests); on AWS Terraform
        # owns the tables and open() only checks that the events table answers.
        self.create_missing = endpoint_url is not None if create_missing is None else create_missing
        self.stream_settle_us = int(stream_settle_s * 1_000_000)
        self.names = Names(prefix)
        self._max_connections = max_connections
        self._client_wrapper = client_wrapper
        self._ddb: Client | None = None
        self._sqs: Client | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._opened = False
        self._write_failure: str | None = None
        self._shard_cache: dict[str, tuple[float, ShardCount]] = {}
        self._last_position_us = 0
        self._listeners: list[Callable[[frozenset[str] | None], None]] = []

    # -- lifecycle ----------------------------------------------------------------------------------
    def _clients(self) -> tuple[Client, Client]:
        import boto3
        from botocore.config import Config

        config = Config(
            max_pool_connections=self._max_connections,
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=5,
            read_timeout=20,
        )
        session = boto3.session.Session(region_name=self.region)
        ddb = session.client("dynamodb", endpoint_url=self.endpoint_url, config=config)
        sqs = session.client("sqs", endpoint_url=self.endpoint_url, config=config)
        return ddb, sqs

    async def open(self) -> None:
        if self._opened:
            return
        try:
            ddb, sqs = await asyncio.to_thread(self._clients)
        except Exception as exc:  # botocore raises plain exceptions for bad regions/credentials
            raise StorageUnavailableError(f"AWS clients: {exc}") from exc
        self._ddb = self._client_wrapper(ddb) if self._client_wrapper is not None else ddb
        self._sqs = sqs
        self._pool = ThreadPoolExecutor(max_workers=self._max_connections, thread_name_prefix="dynamodb")
        self._opened = True
        try:
            if self.create_missing:
                await self.migrate()
            else:
                await self.ping()
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        if not self._opened:
            return
        self._opened = False
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        self._pool = None

    async def migrate(self) -> None:
        """Create what is missing on an emulator; on AWS (``create_missing`` off) only compare, as
        Terraform owns the tables and queues there: drift is a StorageError, nothing changes."""
        from triggers_api.storage.dynamodb.migrate import migrate

        ddb, sqs = self._require()
        check_only = not self.create_missing  # on AWS Terraform owns the tables: only compare

        def run() -> list[str]:
            poll_s = 0.05 if self.endpoint_url else 2.0
            return migrate(ddb, sqs, self.prefix, check_only=check_only, poll_s=poll_s).problems

        problems = await self._call_sync(run)
        if problems:
            owner = " (Terraform owns them on AWS: apply it; nothing was changed)" if check_only else ""
            raise StorageError(f"DynamoDB schema problems{owner}: " + "; ".join(problems))

    async def ping(self) -> None:
        await self._call("describe_table", TableName=self.names.events)

    def write_failure(self) -> str | None:
        return self._write_failure

    def listen_for_events(self, callback: Callable[[frozenset[str] | None], None]) -> None:
        """Kept, never called (like SQLite): other processes' writes are found by the callers'
        poll. (A DynamoDB Streams reader could call it; not worth a shard iterator per process.)"""
        self._listeners.append(callback)

    # -- calls --------------------------------------------------------------------------------------
    def _require(self) -> tuple[Client, Client]:
        if not self._opened or self._ddb is None or self._sqs is None:
            raise StorageUnavailableError("the DynamoDB store is closed")
        return self._ddb, self._sqs

    async def _call_sync(self, fn: Callable[[], Any]) -> Any:
        self._require()
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, fn)
        except RuntimeError as exc:  # the pool was shut down under us: closed
            raise StorageUnavailableError(f"the DynamoDB store is closed ({exc})") from exc

    async def _call(self, operation: str, *, write: bool = False, **params: Any) -> Item:
        """One DynamoDB API call on the pool; botocore errors leave as StorageError subclasses:
        ConditionalCheckFailed -> :class:`ConditionFailed`, TransactionCanceled ->
        :class:`TransactionCancelled`, throttling/unreachable -> StorageUnavailableError."""
        from botocore.exceptions import BotoCoreError, ClientError

        ddb, _ = self._require()
        try:
            result: Item = await self._call_sync(partial(getattr(ddb, operation), **params))
        except ClientError as exc:
            code = _error_code(exc)
            if code == "ConditionalCheckFailedException":
                raise ConditionFailed(exc.response.get("Item")) from exc
            if code == "TransactionCanceledException":
                reasons = exc.response.get("CancellationReasons", [])
                raise TransactionCancelled(
                    [r.get("Code") if r.get("Code") != "None" else None for r in reasons],
                    [r.get("Item") for r in reasons],
                ) from exc
            if code in THROTTLING_CODES:
                if write:
                    self._write_failure = f"DynamoDB {code}"
                raise StorageUnavailableError(f"DynamoDB {operation}: {code}") from exc
            raise StorageError(f"DynamoDB {operation}: {code}: {exc}") from exc
        except BotoCoreError as exc:  # EndpointConnectionError, timeouts, ...
            if write:
                self._write_failure = f"DynamoDB unreachable: {type(exc).__name__}"
            raise StorageUnavailableError(f"DynamoDB {operation}: {exc}") from exc
        if write:
            self._write_failure = None
        return result

    # -- write helpers ------------------------------------------------------------------------------
    async def _transact(self, items: Sequence[Item]) -> None:
        """TransactWriteItems in chunks of <= 100 (each chunk atomic on its own); a chunk cancelled
        only by throttling or a conflicting transaction is retried with backoff, a bounded number
        of times; any other cancellation raises :class:`TransactionCancelled`."""
        for chunk in chunks(items, TRANSACT_MAX_ITEMS):
            attempt = 0
            while True:
                try:
                    await self._call("transact_write_items", write=True, TransactItems=chunk)
                    break
                except TransactionCancelled as exc:
                    codes = {r for r in exc.reasons if r is not None}
                    retriable = codes and codes <= {"ThrottlingError", "TransactionConflict"}
                    if not retriable or attempt + 1 >= RETRY_ATTEMPTS:
                        if retriable:
                            raise StorageUnavailableError(f"transaction still throttled: {codes}") from exc
                        raise
                except StorageUnavailableError:
                    if attempt + 1 >= RETRY_ATTEMPTS:
                        raise
                await asyncio.sleep(backoff_s(attempt))
                attempt += 1

    async def _batch_write(self, table: str, puts: Sequence[Item] = (), deletes: Sequence[Item] = ()) -> None:
        """BatchWriteItem in chunks of 25; ``UnprocessedItems`` and throttled calls are retried
        with exponential backoff and jitter, a bounded number of times (then 503). Puts and
        deletes must be idempotent (a retried request may have been applied in part)."""
        requests = [{"PutRequest": {"Item": p}} for p in puts] + [
            {"DeleteRequest": {"Key": d}} for d in deletes
        ]
        await self._batch_write_requests([(table, r) for r in requests])

    async def _batch_write_requests(self, requests: Sequence[tuple[str, Item]]) -> None:
        async def one(chunk: list[tuple[str, Item]]) -> None:
            pending: dict[str, list[Item]] = {}
            for table, request in chunk:
                pending.setdefault(table, []).append(request)
            attempt = 0
            while pending:
                try:
                    answer = await self._call("batch_write_item", write=True, RequestItems=pending)
                    pending = answer.get("UnprocessedItems") or {}
                except StorageUnavailableError:
                    if attempt + 1 >= RETRY_ATTEMPTS:
                        raise
                if not pending:
                    return
                if attempt + 1 >= RETRY_ATTEMPTS:
                    left = sum(len(v) for v in pending.values())
                    self._write_failure = "DynamoDB throttled a batch write"
                    raise StorageUnavailableError(f"{left} items still unprocessed after {attempt + 1} tries")
                await asyncio.sleep(backoff_s(attempt))
                attempt += 1

        await asyncio.gather(*(one(c) for c in chunks(requests, BATCH_WRITE_MAX_ITEMS)))

    async def _batch_get(self, table: str, keys: Sequence[Item], *, consistent: bool = True) -> list[Item]:
        """BatchGetItem in chunks of 100, ``UnprocessedKeys`` retried like batch writes. Order of
        the answer is not the keys' order; missing items are left out."""
        unique: dict[tuple[tuple[str, str], ...], Item] = {}
        for key in keys:
            unique.setdefault(tuple(sorted((k, next(iter(v.values()))) for k, v in key.items())), key)

        async def one(chunk: list[Item]) -> list[Item]:
            found: list[Item] = []
            pending: dict[str, Any] = {table: {"Keys": chunk, "ConsistentRead": consistent}}
            attempt = 0
            while pending:
                try:
                    answer = await self._call("batch_get_item", RequestItems=pending)
                    found += answer.get("Responses", {}).get(table, [])
                    pending = answer.get("UnprocessedKeys") or {}
                except StorageUnavailableError:
                    if attempt + 1 >= RETRY_ATTEMPTS:
                        raise
                if pending:
                    if attempt + 1 >= RETRY_ATTEMPTS:
                        raise StorageUnavailableError("batch get: keys still unprocessed")
                    await asyncio.sleep(backoff_s(attempt))
                    attempt += 1
            return found

        results = await asyncio.gather(*(one(c) for c in chunks(list(unique.values()), 100)))
        return [item for part in results for item in part]

    async def _query(self, *, limit: int | None = None, **params: Any) -> list[Item]:
        """Every item a Query returns (following LastEvaluatedKey), at most ``limit``."""
        items: list[Item] = []
        start: Item | None = None
        while True:
            if start is not None:
                params["ExclusiveStartKey"] = start
            if limit is not None:
                params["Limit"] = max(1, min(1000, limit - len(items)))
            answer = await self._call("query", **params)
            items += answer.get("Items", [])
            start = answer.get("LastEvaluatedKey")
            if start is None or (limit is not None and len(items) >= limit):
                return items[:limit] if limit is not None else items

    # -- shards -------------------------------------------------------------------------------------
    async def _shard_count(self, user_id: str) -> ShardCount:
        """The user's event shard count (users table), cached for SHARD_CACHE_S."""
        cached = self._shard_cache.get(user_id)
        now = time.monotonic()
        if cached is not None and now - cached[0] < schema.SHARD_CACHE_S:
            return cached[1]
        answer = await self._call("get_item", TableName=self.names.users, Key={"user_id": s(user_id)})
        item = answer.get("Item")
        count = (
            ShardCount()
            if item is None
            else ShardCount(get_n(item, "current"), get_n(item, "previous"), get_n(item, "effective_us"))
        )
        self._shard_cache[user_id] = (now, count)
        return count

    async def _read_shards(self, user_id: str) -> list[str]:
        count = (await self._shard_count(user_id)).for_reading()
        return [schema.user_shard(user_id, i) for i in range(count)]

    async def _write_shard(self, user_id: str, item_id: str) -> str:
        count = (await self._shard_count(user_id)).for_writing(now_us())
        return schema.user_shard(user_id, schema.event_shard(item_id, count))

    async def shard_count(self, user_id: str) -> ShardCount:
        """The stored count, read consistently (what an operator's command shows)."""
        answer = await self._call(
            "get_item", TableName=self.names.users, Key={"user_id": s(user_id)}, ConsistentRead=True
        )
        item = answer.get("Item")
        if item is None:
            return ShardCount()
        return ShardCount(get_n(item, "current"), get_n(item, "previous"), get_n(item, "effective_us"))

    async def set_shard_count(self, user_id: str, shards: int) -> ShardCount:
        """Raise a user's event shard count (never lowers it); see schema.ShardCount.

        The write is conditional on the stored count being still the one read (consistently), so
        two raises racing cannot lower it: the loser reads again and raises from there."""
        for _ in range(SHARD_RAISE_ATTEMPTS):
            current = await self.shard_count(user_id)
            raised = current.raised(shards, now_us())
            if raised != current:
                try:
                    await self._call(
                        "put_item",
                        write=True,
                        TableName=self.names.users,
                        Item={
                            "user_id": s(user_id),
                            "current": n(raised.current),
                            "previous": n(raised.previous),
                            "effective_us": n(raised.effective_us),
                        },
                        # absent reads as the default count (1, 1, 0)
                        ConditionExpression="attribute_not_exists(user_id) OR (#c = :c AND #p = :p AND #e = :e)",
                        ExpressionAttributeNames={"#c": "current", "#p": "previous", "#e": "effective_us"},
                        ExpressionAttributeValues={
                            ":c": n(current.current),
                            ":p": n(current.previous),
                            ":e": n(current.effective_us),
                        },
                    )
                except ConditionFailed:
                    continue  # another raise landed first: read it and raise from there
            self._shard_cache.pop(user_id, None)
            return raised
        raise StorageUnavailableError(f"the shard count of {user_id} kept changing; try again")

    # -- stream positions ---------------------------------------------------------------------------
    def _positions(self, count: int) -> int:
        """The first of ``count`` consecutive stream positions for one write (see stream.py)."""
        base_us = max(now_us(), self._last_position_us + 1)
        self._last_position_us = base_us
        slack = schema.POSITIONS_PER_US - count
        return base_us * schema.POSITIONS_PER_US + (random.randrange(slack + 1) if slack > 0 else 0)

    # -- the seams B1b's DeliveryPart / FanoutPart override ----------------------------------------
    async def _delivery_items_for_insert(self, events: Sequence[EventRecord], now_us: int) -> list[Item]:
        """TransactWriteItems-shaped ``{"Put": {...}}`` entries for the deliveries table
        (``dest#...`` items) stored together with the events. Default: none."""
        return []

    def _ack_delivery_updates(
        self, user_id: str, event_ids: Sequence[str], at_us: int
    ) -> Awaitable[None] | None:
        """Called with the events an acknowledgement changed, right after it commits; a returned
        awaitable is awaited before acknowledge returns (cancel their pending deliveries).
        Default: nothing to do."""
        return None

    async def _delete_delivery_items(self, event_ids: Sequence[str]) -> None:
        """Retention: remove the events' ``dest#``/``attempt#`` items (B1 deletes the pointer)."""

    async def _after_insert(self, events: Sequence[EventRecord]) -> None:
        """After the events are durable (SQS sends); must not raise for a failed send."""


def event_item(e: EventRecord, user_shard: str, position: int) -> Item:
    tid = schema.ts_id(e.ts_us, e.event_id)
    item: Item = {
        "user_shard": s(user_shard),
        "ts_id": s(tid),
        "user_id": s(e.user_id),
        "event_id": s(e.event_id),
        "event_type": s(e.event_type),
        "status": s(e.status),
        "ts_us": n(e.ts_us),
        schema.TTL_ATTRIBUTE: n(e.expires_at),
        "metadata": blob(e.metadata),
        "retry_count": n(e.retry_count),
        "attempts": n(0),
        "round_attempts": n(0),
        "type_ts_id": s(f"{e.event_type}#{tid}"),
        "stream_pos": n(position),
        "stream_shard": s(schema.global_shard("stream", e.event_id)),
        "expiry_shard": s(schema.global_shard("expiry", e.event_id)),
    }
    if e.payload is not None:
        item["payload"] = blob(e.payload)
    put_opt_n(item, "last_retry_us", e.last_retry_us)
    put_opt_n(item, "delivered_us", e.delivered_us)
    put_opt_n(item, "acknowledged_us", e.acknowledged_us)
    if e.status in INBOX:
        item["inbox_ts_id"] = s(tid)
    return item


def pointer_item(e: EventRecord, user_shard: str) -> Item:
    return {
        **pointer_key(e.event_id),
        "user_id": s(e.user_id),
        "user_shard": s(user_shard),
        "ts_id": s(schema.ts_id(e.ts_us, e.event_id)),
        schema.TTL_ATTRIBUTE: n(e.expires_at),
    }
