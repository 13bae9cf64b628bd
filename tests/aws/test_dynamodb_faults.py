"""The DynamoDB backend's fault paths moto never produces: UnprocessedItems, throttling, an
unreachable endpoint; and the rule that every listing is a Query, never a Scan.

A wrapper around the real boto3 client (talking to the emulator) injects the faults, so
everything else is the real code path against the real emulator."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.aws_emulator import REGION, new_prefix
from triggers_api.errors import StorageUnavailableError
from triggers_api.storage.base import ApiKeyRecord, AuditQuery, AuditRecord, EventQuery, EventRecord
from triggers_api.storage.dynamodb import DynamoDBStorage
from triggers_api.storage.dynamodb import core as dynamo_core

T0 = 1_700_000_000_000_000


class FaultyClient:
    """Delegates to the real client; ``faults[op]`` may rewrite a call's answer or raise."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls: list[str] = []
        self.faults: dict[str, Callable[..., Any]] = {}

    def __getattr__(self, name: str) -> Any:
        real = getattr(self._client, name)
        if not callable(real) or name.startswith("_") or name in ("exceptions", "meta"):
            return real

        def call(**kwargs: Any) -> Any:
            self.calls.append(name)
            fault = self.faults.get(name)
            if fault is not None:
                return fault(real, **kwargs)
            return real(**kwargs)

        return call


def throttled(operation: str) -> ClientError:
    return ClientError(
        {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}}, operation
    )


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dynamo_core, "RETRY_BASE_S", 0.001)


@pytest.fixture
async def faulty(aws_endpoint: str, aws_env: None) -> AsyncIterator[tuple[DynamoDBStorage, FaultyClient]]:
    wrappers: list[FaultyClient] = []

    def wrap(client: Any) -> Any:
        wrappers.append(FaultyClient(client))
        return wrappers[-1]

    store = DynamoDBStorage(new_prefix(), region=REGION, endpoint_url=aws_endpoint, client_wrapper=wrap)
    await store.open()
    try:
        yield store, wrappers[0]
    finally:
        await store.close()


def events(n: int, user: str = "alice") -> list[EventRecord]:
    return [
        EventRecord(
            str(uuid.uuid4()), user, "order.created", b'{"n":1}', "received", T0 + i, 1_900_000_000, b"{}"
        )
        for i in range(n)
    ]


def audits(records: list[EventRecord]) -> list[AuditRecord]:
    return [AuditRecord(str(uuid.uuid4()), r.user_id, "event.created", r.ts_us, r.event_id) for r in records]


async def test_unprocessed_items_are_retried_until_written(
    faulty: tuple[DynamoDBStorage, FaultyClient],
) -> None:
    store, client = faulty
    rounds: list[int] = []

    def half_unprocessed(real: Any, **kwargs: Any) -> Any:
        requests = kwargs["RequestItems"]
        rounds.append(sum(len(v) for v in requests.values()))
        if len(rounds) % 2 == 1:  # every other call: write the first item of each table, return the rest
            done = {t: v[:1] for t, v in requests.items()}
            left = {t: v[1:] for t, v in requests.items() if len(v) > 1}
            real(RequestItems=done)
            return {"UnprocessedItems": left}
        return real(**kwargs)

    client.faults["batch_write_item"] = half_unprocessed
    records = events(60)  # 60 events + pointers + audit: beyond one transaction, so batch writes
    outcome = await store.insert_events(records, audits(records))
    assert outcome.stored
    assert any(r > 1 for r in rounds) and len(rounds) > len(records) * 2 // 25  # retries happened
    listed = await store.list_events(EventQuery(user_id="alice", limit=100))
    assert [e.event_id for e in listed] == [r.event_id for r in records]
    assert len(await store.list_audit(AuditQuery(user_id="alice", limit=100))) == 60
    assert max(rounds) <= 25  # BatchWriteItem's limit, which moto does not enforce


async def test_items_that_stay_unprocessed_give_up_as_storage_unavailable(
    faulty: tuple[DynamoDBStorage, FaultyClient],
) -> None:
    store, client = faulty
    tries: list[int] = []

    def never(real: Any, **kwargs: Any) -> Any:
        tries.append(1)
        return {"UnprocessedItems": kwargs["RequestItems"]}

    client.faults["batch_write_item"] = never
    records = events(40)
    with pytest.raises(StorageUnavailableError):
        await store.insert_events(records, audits(records))
    assert 0 < len(tries) <= dynamo_core.RETRY_ATTEMPTS * 10  # bounded
    assert store.write_failure() is not None


async def test_a_throttled_transaction_is_retried(faulty: tuple[DynamoDBStorage, FaultyClient]) -> None:
    store, client = faulty
    failures = [2]

    def throttle_twice(real: Any, **kwargs: Any) -> Any:
        if failures[0] > 0:
            failures[0] -= 1
            reasons = [{"Code": "ThrottlingError"}] + [{"Code": "None"}] * (len(kwargs["TransactItems"]) - 1)
            raise ClientError(
                {
                    "Error": {"Code": "TransactionCanceledException", "Message": "x"},
                    "CancellationReasons": reasons,
                },
                "TransactWriteItems",
            )
        return real(**kwargs)

    client.faults["transact_write_items"] = throttle_twice
    (record,) = events(1)
    assert (await store.insert_events([record], audits([record]))).stored
    assert failures == [0]
    assert await store.get_event("alice", record.event_id) == record


async def test_throttled_reads_answer_storage_unavailable_not_a_crash(
    faulty: tuple[DynamoDBStorage, FaultyClient],
) -> None:
    store, client = faulty

    def refuse(real: Any, **kwargs: Any) -> Any:
        raise throttled("Query")

    client.faults["query"] = refuse
    with pytest.raises(StorageUnavailableError):
        await store.list_events(EventQuery(user_id="alice"))


async def test_an_unreachable_endpoint_is_storage_unavailable(aws_env: None) -> None:
    store = DynamoDBStorage(
        new_prefix(), region=REGION, endpoint_url="http://127.0.0.1:9", create_missing=False
    )
    with pytest.raises(StorageUnavailableError):
        await store.open()


async def test_no_listing_ever_scans(faulty: tuple[DynamoDBStorage, FaultyClient]) -> None:
    """Every read of the backend is a GetItem, BatchGetItem or Query: Scan would fail here."""
    store, client = faulty

    def forbidden(real: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"Scan called: {kwargs}")

    client.faults["scan"] = forbidden
    records = events(5) + events(2, user="bob")
    await store.insert_events(records, audits(records))
    await store.acknowledge("alice", [records[0].event_id], T0 + 99, {})
    for query in (
        EventQuery(user_id="alice"),
        EventQuery(user_id="alice", statuses=("received",)),
        EventQuery(user_id="alice", event_type="order.created", newest_first=True),
        EventQuery(user_id="alice", statuses=("delivered",), after=(T0, records[0].event_id)),
    ):
        await store.list_events(query)
        await store.list_events_json(query)
    await store.list_audit(AuditQuery(user_id="alice"))
    await store.list_audit(AuditQuery(user_id="alice", action="event.created"))
    await store.list_audit(AuditQuery(user_id="alice", event_id=records[1].event_id))
    await store.expired_events(2_000_000_000, 10)
    await store.purge_audit(T0)
    await store.purge_idempotency(T0)
    await store.count_events_by_bucket("alice", T0, T0 + 10, 5)
    await store.list_keys("alice")
    await store.count_keys()
    await store.find_key_by_hash("nope")
    await store.get_key("alice", str(uuid.uuid4()))
    await store.stream_head()
    await store.events_after("alice", 0, None, 10)
    await store.event_type_stamps()
    await store.list_event_types("alice")
    await store.event_type_activity("alice", 0, 0)
    await store.recent_payloads("alice", "order.created", 3)
    assert "scan" not in client.calls and "query" in client.calls


async def test_get_key_is_one_consistent_get_item(faulty: tuple[DynamoDBStorage, FaultyClient]) -> None:
    """What the API function pays to confirm a key behind the authorizer cache: one strongly
    consistent GetItem on the table's own key, no index (an index read could miss a revocation)."""
    store, client = faulty
    key = ApiKeyRecord(str(uuid.uuid4()), "alice", "hash-x", "tk_x", "k", T0, 60, ("events:read",))
    await store.insert_key(key, None)
    seen: list[dict[str, Any]] = []

    def record(real: Callable[..., Any], **kwargs: Any) -> Any:
        seen.append(kwargs)
        return real(**kwargs)

    client.faults["get_item"] = record
    client.calls.clear()
    assert await store.get_key("alice", key.key_id) == key
    assert await store.get_key("bob", key.key_id) is None
    assert client.calls == ["get_item", "get_item"]
    assert [(c["TableName"].endswith("-api-keys"), c["ConsistentRead"], "IndexName" in c) for c in seen] == [
        (True, True, False)
    ] * 2
