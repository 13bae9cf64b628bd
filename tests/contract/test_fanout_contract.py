"""The fan-out part of the storage contract (issue 10): subscriptions, one delivery per (event,
destination) with its own state, filter matching at store time, the derived event status,
disabling, cancel on acknowledgement, replay per destination. Same assertions on every backend."""

from __future__ import annotations

import uuid

import orjson
import pytest

from tests.contract.conftest import OpenTwin
from tests.contract.test_storage_contract import T0, audit_for, event
from triggers_api.storage.base import (
    FANOUT_PARKED_US,
    WORKFLOW_DESTINATION,
    AttemptOutcome,
    AttemptRecord,
    AuditQuery,
    AuditRecord,
    DeliveryAttempt,
    EventRecord,
    EventStatus,
    ReplaySelector,
    Storage,
    SubscriptionRecord,
)

LEASE = 60_000_000
NOW = T0 + 1_000


def subscription(
    user: str = "alice",
    event_types: tuple[str, ...] = (),
    filter: dict[str, object] | None = None,
    status: str = "active",
    created: int = T0,
) -> SubscriptionRecord:
    return SubscriptionRecord(
        subscription_id=str(uuid.uuid4()),
        user_id=user,
        target_url="https://hooks.example.com/in",
        event_types=event_types,
        filter=orjson.dumps(filter) if filter is not None else None,
        description="",
        metadata=b"{}",
        status=status,
        disabled_reason=None,
        secret="whsec_" + "A" * 32,
        previous_secret=None,
        previous_secret_until_us=None,
        created_us=created,
        updated_us=created,
    )


def sub_audit(sub: SubscriptionRecord, action: str) -> AuditRecord:
    return AuditRecord(str(uuid.uuid4()), sub.user_id, action, NOW, None, b"{}", "", "test")


def outcome(
    record: EventRecord, destination: str, result: AttemptOutcome, token: str, started: int = NOW
) -> AttemptRecord:
    attempt = DeliveryAttempt(
        attempt_id=str(uuid.uuid4()),
        event_id=record.event_id,
        user_id=record.user_id,
        started_us=started,
        duration_us=1_000,
        outcome=result.value,
        response_status={"delivered": 200, "retry": 503, "failed": 410}[result.value],
        destination=destination,
    )
    next_at = started + 5_000_000 if result is AttemptOutcome.RETRY else None
    return AttemptRecord(
        attempt, token, next_at, audit_for(record, action=f"event.{result.value}", ts=started)
    )


async def subscribe(storage: Storage, *subs: SubscriptionRecord) -> None:
    for s in subs:
        await storage.insert_subscription(s, sub_audit(s, "subscription.created"))


async def status_of(storage: Storage, record: EventRecord) -> str:
    fetched = await storage.get_event(record.user_id, record.event_id)
    assert fetched is not None
    return fetched.status


async def test_an_event_fans_out_to_each_matching_subscription_and_the_workflow(storage: Storage) -> None:
    every = subscription()
    orders = subscription(event_types=("order.*",))
    users = subscription(event_types=("user.created",))
    big = subscription(filter={"payload.amount": {"$gte": 100}})
    paused = subscription(status="paused")
    other_user = subscription(user="bob")
    await subscribe(storage, every, orders, users, big, paused, other_user)
    small = event(payload=b'{"amount":5}')
    large = event(payload=b'{"amount":500}', event_type="invoice.paid")
    await storage.insert_events([small, large], [])
    small_d = {d.destination for d in await storage.list_deliveries("alice", small.event_id)}
    large_d = {d.destination for d in await storage.list_deliveries("alice", large.event_id)}
    assert small_d == {WORKFLOW_DESTINATION, every.subscription_id, orders.subscription_id}
    assert large_d == {WORKFLOW_DESTINATION, every.subscription_id, big.subscription_id}
    for d in await storage.list_deliveries("alice", small.event_id):
        assert d.status == "pending" and d.attempts == 0 and d.next_attempt_us == small.ts_us
    assert await storage.list_deliveries("bob", small.event_id) == []  # another user's event
    assert await status_of(storage, small) == EventStatus.RECEIVED
    # fanned-out events are off the single-destination path
    assert await storage.claim_due_events("legacy", NOW, NOW + LEASE, 10) == []
    assert await storage.next_delivery_due(NOW) is None


async def test_an_event_without_a_matching_subscription_stays_on_the_single_path(storage: Storage) -> None:
    await subscribe(storage, subscription(event_types=("user.*",)))
    record = event()
    await storage.insert_events([record], [])
    assert await storage.list_deliveries("alice", record.event_id) == []
    (claim,) = await storage.claim_due_events("legacy", NOW, NOW + LEASE, 10)
    assert claim.event.event_id == record.event_id


async def test_without_a_workflow_destination_only_subscriptions_get_deliveries(
    backend: str, tmp_path: object, request: pytest.FixtureRequest
) -> None:
    from pathlib import Path

    from tests.postgres.schemas import drop_schema_async, new_schema_name, postgres_url
    from triggers_api.storage.postgres import PostgresStorage
    from triggers_api.storage.sqlite import SQLiteStorage

    schema = new_schema_name()
    store: Storage
    if backend == "sqlite":
        store = SQLiteStorage(Path(str(tmp_path)) / "nowf.db", workflow_destination=False)
    elif backend == "dynamodb":
        from tests.aws_emulator import REGION, new_prefix
        from triggers_api.storage.dynamodb import DynamoDBStorage

        request.getfixturevalue("aws_env")
        store = DynamoDBStorage(
            new_prefix(),
            region=REGION,
            endpoint_url=request.getfixturevalue("aws_endpoint"),
            workflow_destination=False,
        )
    else:
        store = PostgresStorage(postgres_url(), schema=schema, workflow_destination=False)
    await store.open()
    try:
        sub = subscription()
        await subscribe(store, sub)
        record = event()
        await store.insert_events([record], [])
        assert [d.destination for d in await store.list_deliveries("alice", record.event_id)] == [
            sub.subscription_id
        ]
    finally:
        await store.close()
        if backend == "postgres":
            await drop_schema_async(postgres_url(), schema)


async def test_each_delivery_has_its_own_state_and_the_event_status_follows(storage: Storage) -> None:
    a, b = subscription(), subscription()
    await subscribe(storage, a, b)
    record = event()
    await storage.insert_events([record], [])
    claims = await storage.claim_due_deliveries("w1", NOW, NOW + LEASE, 10)
    assert {c.destination for c in claims} == {WORKFLOW_DESTINATION, a.subscription_id, b.subscription_id}
    assert all(c.event.event_id == record.event_id and c.attempts == 0 for c in claims)
    assert await status_of(storage, record) == EventStatus.QUEUED
    assert await storage.claim_due_deliveries("w2", NOW, NOW + LEASE, 10) == []  # all leased
    applied = await storage.record_deliveries(
        [
            outcome(record, WORKFLOW_DESTINATION, AttemptOutcome.DELIVERED, "w1"),
            outcome(record, a.subscription_id, AttemptOutcome.DELIVERED, "w1"),
            outcome(record, b.subscription_id, AttemptOutcome.RETRY, "w1"),
        ]
    )
    assert applied == [True, True, True]
    assert await status_of(storage, record) == EventStatus.QUEUED  # b is still pending
    by_dest = {d.destination: d for d in await storage.list_deliveries("alice", record.event_id)}
    assert by_dest[a.subscription_id].status == "delivered" and by_dest[a.subscription_id].delivered_us
    assert by_dest[b.subscription_id].status == "pending"
    assert by_dest[b.subscription_id].next_attempt_us == NOW + 5_000_000
    # b's retry is due later: not claimable now, claimable then
    assert await storage.claim_due_deliveries("w3", NOW + 1, NOW + LEASE, 10) == []
    assert await storage.next_fanout_due(NOW + 1) == NOW + 5_000_000
    (again,) = await storage.claim_due_deliveries("w3", NOW + 5_000_000, NOW + LEASE * 2, 10)
    assert again.destination == b.subscription_id and again.attempts == 1 and again.round_attempts == 1
    await storage.record_deliveries([outcome(record, b.subscription_id, AttemptOutcome.FAILED, "w3")])
    assert await status_of(storage, record) == EventStatus.FAILED
    attempts = await storage.list_attempts("alice", record.event_id)
    assert sorted(x.destination for x in attempts) == sorted(
        [WORKFLOW_DESTINATION, a.subscription_id, b.subscription_id, b.subscription_id]
    )
    # replay of b only: queued again, the other deliveries untouched
    replayed = await storage.replay_events(
        ReplaySelector("alice", (record.event_id,), destination=a.subscription_id),
        NOW + 6_000_000,
        10,
        lambda eid: audit_for(record, "event.replayed"),
    )
    assert replayed == []  # a did not fail
    replayed = await storage.replay_events(
        ReplaySelector("alice", (record.event_id,), destination=b.subscription_id),
        NOW + 6_000_000,
        10,
        lambda eid: audit_for(record, "event.replayed"),
    )
    assert replayed == [record.event_id]
    assert await status_of(storage, record) == EventStatus.QUEUED
    (last,) = await storage.claim_due_deliveries("w4", NOW + 6_000_000, NOW + LEASE * 3, 10)
    assert last.destination == b.subscription_id and last.round_attempts == 0 and last.attempts == 2
    await storage.record_deliveries([outcome(record, b.subscription_id, AttemptOutcome.DELIVERED, "w4")])
    fetched = await storage.get_event("alice", record.event_id)
    assert (
        fetched is not None and fetched.status == EventStatus.DELIVERED and fetched.delivered_us is not None
    )
    assert fetched.retry_count == 2  # b's second and third attempts


async def test_a_retry_under_a_lost_lease_is_not_applied_but_a_success_is(storage: Storage) -> None:
    sub = subscription()
    await subscribe(storage, sub)
    record = event()
    await storage.insert_events([record], [])
    await storage.claim_due_deliveries("old", NOW, NOW + 10, 10)
    await storage.claim_due_deliveries("new", NOW + 10, NOW + LEASE, 10)  # the old lease expired
    assert await storage.record_deliveries(
        [outcome(record, sub.subscription_id, AttemptOutcome.RETRY, "old")]
    ) == [False]
    assert await storage.record_deliveries(
        [outcome(record, sub.subscription_id, AttemptOutcome.DELIVERED, "old")]
    ) == [True]


async def test_acknowledging_cancels_every_pending_delivery(storage: Storage) -> None:
    sub = subscription()
    await subscribe(storage, sub)
    record = event()
    await storage.insert_events([record], [])
    await storage.claim_due_deliveries("w", NOW, NOW + LEASE, 10)
    await storage.acknowledge("alice", [record.event_id], NOW + 1, {})
    assert {d.status for d in await storage.list_deliveries("alice", record.event_id)} == {"cancelled"}
    assert await storage.claim_due_deliveries("w2", NOW + LEASE * 2, NOW + LEASE * 3, 10) == []
    # an attempt finishing after the acknowledgement changes nothing
    assert await storage.record_deliveries(
        [outcome(record, sub.subscription_id, AttemptOutcome.DELIVERED, "w")]
    ) == [False]
    assert await status_of(storage, record) == EventStatus.DELIVERED


async def test_deleting_or_disabling_a_subscription_cancels_its_pending_deliveries(storage: Storage) -> None:
    gone, dead, kept = subscription(), subscription(), subscription()
    await subscribe(storage, gone, dead, kept)
    record = event()
    await storage.insert_events([record], [])
    assert await storage.delete_subscription("bob", gone.subscription_id, NOW, None) is False  # not bob's
    assert await storage.delete_subscription(
        "alice", gone.subscription_id, NOW, sub_audit(gone, "subscription.deleted")
    )
    assert await storage.get_subscription("alice", gone.subscription_id) is None
    assert await storage.disable_subscription(
        dead.subscription_id, "target answered 410 Gone", NOW, lambda s: sub_audit(s, "subscription.disabled")
    )
    assert not await storage.disable_subscription(
        dead.subscription_id, "again", NOW, lambda s: sub_audit(s, "subscription.disabled")
    )
    stored = await storage.get_subscription("alice", dead.subscription_id)
    assert (
        stored is not None
        and stored.status == "disabled"
        and stored.disabled_reason == "target answered 410 Gone"
    )
    states = {d.destination: d.status for d in await storage.list_deliveries("alice", record.event_id)}
    assert states == {
        WORKFLOW_DESTINATION: "pending",
        gone.subscription_id: "cancelled",
        dead.subscription_id: "cancelled",
        kept.subscription_id: "pending",
    }
    claims = await storage.claim_due_deliveries("w", NOW, NOW + LEASE, 10)
    assert {c.destination for c in claims} == {WORKFLOW_DESTINATION, kept.subscription_id}
    audit = await storage.list_audit(AuditQuery(user_id="alice"))
    assert {"subscription.deleted", "subscription.disabled"} <= {a.action for a in audit}


async def test_paused_destinations_and_excluded_ones_are_not_claimed(storage: Storage) -> None:
    sub, other = subscription(), subscription()
    await subscribe(storage, sub, other)
    record = event()
    await storage.insert_events([record], [])
    sub.status, sub.updated_us = "paused", NOW
    assert await storage.update_subscription(sub, sub_audit(sub, "subscription.updated"))
    claims = await storage.claim_due_deliveries("w", NOW, NOW + LEASE, 10, exclude=[WORKFLOW_DESTINATION])
    assert [c.destination for c in claims] == [other.subscription_id]
    sub.status = "active"
    await storage.update_subscription(sub, None)
    (resumed,) = await storage.claim_due_deliveries("w", NOW, NOW + LEASE, 10, exclude=[WORKFLOW_DESTINATION])
    assert resumed.destination == sub.subscription_id
    assert await storage.release_deliveries([(record.event_id, sub.subscription_id, "w")], NOW + 7) == 1
    assert await storage.next_fanout_due(NOW, exclude=[WORKFLOW_DESTINATION]) == NOW + 7


async def test_subscriptions_are_listed_per_user_and_failures_are_tracked(storage: Storage) -> None:
    first, second, bobs = subscription(created=T0), subscription(created=T0 + 1), subscription(user="bob")
    await subscribe(storage, first, second, bobs)
    assert [s.subscription_id for s in await storage.list_subscriptions("alice")] == [
        first.subscription_id,
        second.subscription_id,
    ]
    assert await storage.get_subscription("alice", bobs.subscription_id) is None
    loaded = await storage.load_subscriptions([first.subscription_id, bobs.subscription_id])
    assert {s.subscription_id for s in loaded} == {first.subscription_id, bobs.subscription_id}
    record = event()
    await storage.insert_events([record], [])
    await storage.claim_due_deliveries("w", NOW, NOW + LEASE, 10)
    await storage.record_deliveries([outcome(record, first.subscription_id, AttemptOutcome.RETRY, "w", NOW)])
    await storage.record_deliveries(
        [outcome(record, second.subscription_id, AttemptOutcome.DELIVERED, "w", NOW)]
    )
    assert await storage.failing_subscriptions(NOW) == [first.subscription_id]
    assert await storage.failing_subscriptions(NOW - 1) == []
    stored = await storage.get_subscription("alice", second.subscription_id)
    assert stored is not None and stored.last_success_us == NOW + 1_000 and stored.failing_since_us is None


async def test_a_fanned_out_event_is_parked_and_its_status_survives_retention(storage: Storage) -> None:
    await subscribe(storage, subscription())
    record = event(expires_at=T0 // 1_000_000 + 1)
    await storage.insert_events([record], [])
    assert FANOUT_PARKED_US > NOW
    assert await storage.delete_events([record.event_id], T0 // 1_000_000 + 10) == 1
    assert await storage.list_deliveries("alice", record.event_id) == []
    assert await storage.claim_due_deliveries("w", NOW, NOW + LEASE, 10) == []


async def test_two_processes_never_claim_the_same_delivery(storage: Storage, open_twin: OpenTwin) -> None:
    twin = await open_twin()
    await subscribe(storage, subscription(), subscription())
    records = [event(ts=T0 + i) for i in range(40)]
    await storage.insert_events(records, [])
    seen: list[tuple[str, str]] = []
    for i in range(20):
        for store, name in ((storage, "a"), (twin, "b")):
            claims = await store.claim_due_deliveries(f"{name}{i}", NOW, NOW + LEASE, 7)
            seen += [(c.event.event_id, c.destination) for c in claims]
    assert len(seen) == len(set(seen)) == 40 * 3
