"""Delivery through SQS on the DynamoDB backend, against moto's server: one message per delivery
after insert, the sweep for sends that failed, replay re-sending, and the Lambda worker handler
driven with real-shaped SQS events (messages received from the emulator's queue) pushing to a
loopback receiver."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from botocore.exceptions import EndpointConnectionError

from tests.aws_emulator import REGION, new_prefix
from tests.conftest import make_settings
from tests.contract.test_fanout_contract import subscribe, subscription
from tests.contract.test_storage_contract import audit_for, event
from tests.delivery.conftest import FAST, SECRET
from tests.delivery.receiver import Receiver, Respond, always, fail_then_succeed
from triggers_api.aws import lambda_worker
from triggers_api.aws.lambda_worker import WorkerContainer
from triggers_api.config import Settings
from triggers_api.delivery.fanout import FanoutWorker
from triggers_api.delivery.queue_consumer import FIRST_PUSH_S, Fate, Pacer, QueueConsumer
from triggers_api.storage.base import WORKFLOW_DESTINATION, AuditQuery, EventStatus, ReplaySelector, now_us
from triggers_api.storage.dynamodb import DynamoDBStorage
from triggers_api.storage.dynamodb.queue import QueuedDelivery

pytestmark = pytest.mark.usefixtures("aws_env")


class SqsSpy:
    """The real SQS client, with calls recorded and chosen operations failing (fault injection)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.failing: set[str] = set()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.client, name)

        def call(**params: Any) -> Any:
            self.calls.append((name, params))
            if name in self.failing:
                raise EndpointConnectionError(endpoint_url="http://sqs.invalid")
            return method(**params)

        return call


@pytest.fixture
async def store(aws_endpoint: str) -> AsyncIterator[DynamoDBStorage]:
    s = DynamoDBStorage(new_prefix(), region=REGION, endpoint_url=aws_endpoint)
    await s.open()
    s._sqs = SqsSpy(s._sqs)
    try:
        yield s
    finally:
        await s.close()


def spy(store: DynamoDBStorage) -> SqsSpy:
    assert isinstance(store._sqs, SqsSpy)
    return store._sqs


async def receive(store: DynamoDBStorage, wait_s: int = 1) -> list[dict[str, Any]]:
    """Every message now visible on the delivery queue (real ReceiveMessage calls)."""
    url = await store.queue_url()
    out: list[dict[str, Any]] = []
    while True:
        got = await store._sqs_call(
            "receive_message",
            QueueUrl=url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=wait_s if not out else 0,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = got.get("Messages", [])
        if not messages:
            return out
        out += messages


def bodies(messages: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(orjson.loads(m["Body"])["event_id"], orjson.loads(m["Body"])["destination"]) for m in messages}


def sqs_event(messages: list[dict[str, Any]], queue: str) -> dict[str, Any]:
    """The event Lambda's SQS event source mapping passes to the function, from real messages."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{REGION}:123456789012:{queue}",
                "awsRegion": REGION,
            }
            for m in messages
        ]
    }


@dataclass
class LambdaContext:
    function_name: str = "triggers-api-worker"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:123456789012:function:triggers-api-worker"
    aws_request_id: str = "c6af9ac6-7b61-11e6-9a41-93e812345678"


async def test_an_insert_sends_one_message_per_delivery(store: DynamoDBStorage) -> None:
    a, b = subscription(), subscription(event_types=("user.*",))
    await subscribe(store, a, b)
    fanned, single = event(), event(user="bob")
    await store.insert_events([fanned, single], [])
    got = await receive(store)
    assert bodies(got) == {
        (fanned.event_id, WORKFLOW_DESTINATION),
        (fanned.event_id, a.subscription_id),
        (single.event_id, WORKFLOW_DESTINATION),
    }
    sends = [p for name, p in spy(store).calls if name == "send_message_batch"]
    assert len(sends) == 1 and len(sends[0]["Entries"]) == 3
    assert QueuedDelivery.parse(got[0]["Body"]).user_id in {"alice", "bob"}


async def test_a_failed_send_never_fails_the_insert_and_the_sweep_sends_it(store: DynamoDBStorage) -> None:
    spy(store).failing.add("send_message_batch")
    old = event(ts=now_us() - 3_600_000_000)
    outcome = await store.insert_events([old], [audit_for(old)])
    assert outcome.stored
    assert await store.get_event("alice", old.event_id) is not None
    spy(store).failing.clear()
    assert await receive(store, wait_s=0) == []
    assert await store.sweep_unsent(older_than_s=60) == 1
    (message,) = await receive(store)
    assert bodies([message]) == {(old.event_id, WORKFLOW_DESTINATION)}
    # a delivery due only recently is not "lost": its message may be in flight
    fresh = event(ts=now_us())
    spy(store).failing.add("send_message_batch")
    await store.insert_events([fresh], [])
    spy(store).failing.clear()
    assert await store.sweep_unsent(older_than_s=60) == 1  # only the old one, again


async def test_the_sweep_skips_leased_and_finished_deliveries(store: DynamoDBStorage) -> None:
    spy(store).failing.add("send_message_batch")
    t = now_us() - 3_600_000_000
    leased, done = event(ts=t), event(ts=t + 1)
    await store.insert_events([leased, done], [])
    spy(store).failing.clear()
    now = now_us()
    claims = await store.claim_due_events("w", now, now + 600_000_000, 10)
    assert len(claims) == 2
    from tests.contract.test_delivery_contract import attempt
    from triggers_api.storage.base import AttemptOutcome

    await store.record_attempt(attempt(done, AttemptOutcome.DELIVERED, now, 200), "w")
    assert await store.sweep_unsent(older_than_s=60) == 0


async def test_replay_sends_the_replayed_deliveries_again(store: DynamoDBStorage) -> None:
    from tests.contract.test_delivery_contract import attempt
    from triggers_api.storage.base import AttemptOutcome

    record = event(ts=now_us())
    await store.insert_events([record], [])
    await receive(store)
    now = now_us()
    assert len(await store.claim_due_events("w", now, now + 60_000_000, 1)) == 1
    await store.record_attempt(attempt(record, AttemptOutcome.FAILED, now, 410), "w")
    assert await receive(store, wait_s=0) == []
    replayed = await store.replay_events(
        ReplaySelector("alice", (record.event_id,)),
        now_us(),
        10,
        lambda e: audit_for(record, "event.replayed"),
    )
    assert replayed == [record.event_id]
    assert bodies(await receive(store)) == {(record.event_id, WORKFLOW_DESTINATION)}


# -- the Lambda worker ------------------------------------------------------------------------------
@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    await r.start()
    try:
        yield r
    finally:
        await r.stop()


def worker_settings(tmp_path: Path, receiver: Receiver, **overrides: object) -> Settings:
    values: dict[str, object] = {**FAST, "workflow_url": receiver.url, "destination_allow_private": True}
    values["retry_schedule"] = "300,1800,7200"  # the document's schedule: visibility must follow it
    values["retry_jitter"] = 0
    values.update(overrides)
    return make_settings(tmp_path, **values)


@pytest.fixture
async def box(store: DynamoDBStorage, tmp_path: Path, receiver: Receiver) -> AsyncIterator[WorkerContainer]:
    settings = worker_settings(tmp_path, receiver)
    loop = asyncio.new_event_loop()
    container = WorkerContainer(
        loop, QueueConsumer(store, settings, FanoutWorker(store, settings, worker_id="lambda"))
    )
    try:
        yield container
    finally:

        def close() -> None:
            for dest in list(container.consumer.worker.destinations.values()):
                loop.run_until_complete(dest.aclose())
            loop.close()

        await asyncio.to_thread(close)


async def invoke(box: WorkerContainer, event: dict[str, Any]) -> dict[str, Any]:
    """The handler as Lambda calls it: synchronously, on a thread of its own (the receiver keeps
    running on this test's loop)."""
    lambda_worker.set_container(box)
    try:
        result: dict[str, Any] = await asyncio.to_thread(lambda_worker.handler, event, LambdaContext())
    finally:
        lambda_worker.set_container(None)
    return result


async def test_the_handler_pushes_signed_records_and_deletes_them(
    store: DynamoDBStorage, box: WorkerContainer, receiver: Receiver
) -> None:
    records = [event(ts=now_us() + i) for i in range(3)]
    await store.insert_events(records, [])
    messages = await receive(store)
    assert len(messages) == 3
    result = await invoke(box, sqs_event(messages, store.names.delivery_queue))
    assert result == {"batchItemFailures": []}
    assert sorted(receiver.ids()) == sorted(r.event_id for r in records)
    first = receiver.requests[0]
    assert first.headers["webhook-signature"].startswith("v1,") and first.headers["webhook-id"]
    from standardwebhooks import Webhook

    Webhook(SECRET).verify(first.body, {k: v for k, v in first.headers.items() if k.startswith("webhook-")})
    for r in records:
        stored = await store.get_event("alice", r.event_id)
        assert stored is not None and stored.status == EventStatus.DELIVERED
        assert [a.outcome for a in await store.list_attempts("alice", r.event_id)] == ["delivered"]
    logs = await store.list_audit(AuditQuery(user_id="alice", action="event.delivered"))
    assert {log.event_id for log in logs} == {r.event_id for r in records}
    # the same messages again (SQS is at-least-once): nothing is pushed twice
    again = await invoke(box, sqs_event(messages, store.names.delivery_queue))
    assert again == {"batchItemFailures": []}
    assert len(receiver.requests) == 3


async def test_a_retry_sets_the_visibility_to_the_schedule_and_reports_the_record(
    store: DynamoDBStorage, box: WorkerContainer, receiver: Receiver
) -> None:
    receiver.script = always(Respond(503, b"busy"))
    record = event(ts=now_us())
    await store.insert_events([record], [])
    (message,) = await receive(store)
    result = await invoke(box, sqs_event([message], store.names.delivery_queue))
    assert result == {"batchItemFailures": [{"itemIdentifier": message["MessageId"]}]}
    (change,) = [p for n, p in spy(store).calls if n == "change_message_visibility"]
    assert change["ReceiptHandle"] == message["ReceiptHandle"]
    assert 299 <= change["VisibilityTimeout"] <= 301  # the schedule's first delay: 5 minutes
    stored = await store.get_event("alice", record.event_id)
    assert stored is not None and stored.status == EventStatus.QUEUED
    assert await receive(store, wait_s=0) == []  # invisible until the retry is due
    # handed back early (e.g. by a crash): the delivery is not due, the message waits again
    result = await invoke(box, sqs_event([message], store.names.delivery_queue))
    assert result == {"batchItemFailures": [{"itemIdentifier": message["MessageId"]}]}
    assert len(receiver.requests) == 1


async def test_retry_after_is_honoured_in_the_visibility(
    store: DynamoDBStorage, box: WorkerContainer, receiver: Receiver
) -> None:
    receiver.script = always(Respond(429, b"slow down", headers={"Retry-After": "3600"}))
    record = event(ts=now_us())
    await store.insert_events([record], [])
    (message,) = await receive(store)
    await invoke(box, sqs_event([message], store.names.delivery_queue))
    (change,) = [p for n, p in spy(store).calls if n == "change_message_visibility"]
    assert 3599 <= change["VisibilityTimeout"] <= 3601


async def test_a_refusal_dead_letters_and_deletes_the_message(
    store: DynamoDBStorage, box: WorkerContainer, receiver: Receiver
) -> None:
    receiver.script = always(Respond(422, b"bad"))
    record = event(ts=now_us())
    await store.insert_events([record], [])
    (message,) = await receive(store)
    assert await invoke(box, sqs_event([message], store.names.delivery_queue)) == {"batchItemFailures": []}
    stored = await store.get_event("alice", record.event_id)
    assert stored is not None and stored.status == EventStatus.FAILED
    assert (await store.delivery_depths("alice")).dead_letters == 1


async def test_a_message_for_a_delivery_not_due_yet_waits_for_the_remaining_time(
    store: DynamoDBStorage, box: WorkerContainer, receiver: Receiver
) -> None:
    record = event(ts=now_us() + 120_000_000)  # stored with a timestamp 2 minutes ahead
    await store.insert_events([record], [])
    (message,) = await receive(store)
    result = await invoke(box, sqs_event([message], store.names.delivery_queue))
    assert result == {"batchItemFailures": [{"itemIdentifier": message["MessageId"]}]}
    (change,) = [p for n, p in spy(store).calls if n == "change_message_visibility"]
    assert 100 <= change["VisibilityTimeout"] <= 121
    assert receiver.requests == []


async def test_fanned_out_messages_go_to_their_own_destinations_and_a_410_disables(
    store: DynamoDBStorage, box: WorkerContainer, receiver: Receiver
) -> None:
    gone_receiver = Receiver(always(Respond(410, b"gone")))
    await gone_receiver.start()
    try:
        ok, gone = subscription(), subscription()
        ok.target_url, gone.target_url = receiver.url, gone_receiver.url
        await subscribe(store, ok, gone)
        record = event(ts=now_us())
        await store.insert_events([record], [])
        messages = await receive(store)
        assert len(messages) == 3  # the workflow and both subscriptions
        assert await invoke(box, sqs_event(messages, store.names.delivery_queue)) == {"batchItemFailures": []}
        assert receiver.ids().count(record.event_id) == 2  # the workflow's and `ok`'s pushes
        assert gone_receiver.ids() == [record.event_id]
        disabled = await store.get_subscription("alice", gone.subscription_id)
        assert disabled is not None and disabled.status == "disabled"
        states = {d.destination: d.status for d in await store.list_deliveries("alice", record.event_id)}
        fetched = await store.get_event("alice", record.event_id)
        assert fetched is not None and fetched.status == EventStatus.FAILED  # nothing pending, one dead
        assert states == {
            WORKFLOW_DESTINATION: "delivered",
            ok.subscription_id: "delivered",
            gone.subscription_id: "failed",
        }
    finally:
        await gone_receiver.stop()


async def test_an_invalid_message_is_reported_for_the_dlq(
    store: DynamoDBStorage, box: WorkerContainer
) -> None:
    url = await store.queue_url()
    await store._sqs_call("send_message", QueueUrl=url, MessageBody="not json")
    (message,) = await receive(store)
    result = await invoke(box, sqs_event([message], store.names.delivery_queue))
    assert result == {"batchItemFailures": [{"itemIdentifier": message["MessageId"]}]}


def test_the_container_refuses_a_backend_without_a_queue(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="dynamodb"):
        WorkerContainer.build(make_settings(tmp_path))


# -- the in-process consumer (`triggers-api serve` / `worker` on DynamoDB) ---------------------------
async def test_the_queue_worker_long_polls_and_pushes_through_the_same_code(
    store: DynamoDBStorage, tmp_path: Path, receiver: Receiver
) -> None:
    from tests.delivery.conftest import eventually
    from triggers_api.delivery.queue_consumer import QueueWorker

    receiver.script = fail_then_succeed(1)
    settings = worker_settings(tmp_path, receiver, retry_schedule="1,1,1")
    worker = QueueWorker(store, settings)
    await worker.start()
    try:
        records = [event(ts=now_us() + i) for i in range(4)]
        await store.insert_events(records, [])

        async def statuses() -> set[str]:
            got = [await store.get_event("alice", r.event_id) for r in records]
            return {e.status for e in got if e is not None}

        await eventually(statuses, lambda s: s == {EventStatus.DELIVERED.value}, timeout=30)
    finally:
        await worker.stop()
    for r in records:  # one refused attempt (503), then the retry SQS handed back delivered it
        assert [a.outcome for a in await store.list_attempts("alice", r.event_id)] == ["retry", "delivered"]
    assert sorted(receiver.delivered_ids()) == sorted(r.event_id for r in records)
    visibility = [p["VisibilityTimeout"] for n, p in spy(store).calls if n == "change_message_visibility"]
    assert len(visibility) == 4 and all(v == 1 for v in visibility)


async def test_serve_on_dynamodb_delivers_through_the_queue(
    aws_endpoint: str, tmp_path: Path, receiver: Receiver
) -> None:
    from tests.delivery.conftest import pushing_app

    url = f"dynamodb://{new_prefix()}?region={REGION}&endpoint_url={aws_endpoint}"
    async with pushing_app(tmp_path, receiver, database_url=url) as app:
        assert isinstance(app.storage, DynamoDBStorage)
        event_id = await app.ingest()
        status = await app.wait_status(event_id, "delivered", timeout=30)
        assert [a["outcome"] for a in status["attempts"]] == ["delivered"]
        health = await app.client.get("/v1/health")
        assert health.json()["checks"]["delivery"]["source"] == "sqs"
    assert receiver.delivered_ids() == [event_id]


async def test_a_scheduled_invocation_sweeps_unsent_deliveries(
    store: DynamoDBStorage, box: WorkerContainer
) -> None:
    spy(store).failing.add("send_message_batch")
    old = event(ts=now_us() - 3_600_000_000)
    await store.insert_events([old], [])
    spy(store).failing.clear()
    scheduled = {
        "version": "0",
        "id": "53dc4d37",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "2026-12-02T04:00:00Z",
        "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:123456789012:rule/sweep"],
        "detail": {},
    }
    assert await invoke(box, scheduled) == {"swept": 1}
    assert bodies(await receive(store)) == {(old.event_id, WORKFLOW_DESTINATION)}


async def test_a_paused_subscription_waits_and_resuming_sends_its_messages_again(
    store: DynamoDBStorage, box: WorkerContainer, receiver: Receiver
) -> None:
    sub = subscription()
    sub.target_url = receiver.url
    await subscribe(store, sub)
    record = event(ts=now_us())
    await store.insert_events([record], [])
    messages = [m for m in await receive(store) if sub.subscription_id in m["Body"]]
    sub.status = "paused"
    assert await store.update_subscription(sub, None)
    assert await invoke(box, sqs_event(messages, store.names.delivery_queue)) == {"batchItemFailures": []}
    assert receiver.requests == []  # dropped while paused; the delivery stays pending
    (paused,) = [
        d for d in await store.list_deliveries("alice", record.event_id) if d.destination != "workflow"
    ]
    assert paused.status == "pending"
    sub.status = "active"
    assert await store.update_subscription(sub, None)
    resent = await receive(store)
    assert bodies(resent) == {(record.event_id, sub.subscription_id)}
    assert await invoke(box, sqs_event(resent, store.names.delivery_queue)) == {"batchItemFailures": []}
    assert receiver.ids() == [record.event_id]


async def test_without_a_workflow_url_no_workflow_message_is_sent(aws_endpoint: str) -> None:
    s = DynamoDBStorage(new_prefix(), region=REGION, endpoint_url=aws_endpoint, workflow_destination=False)
    await s.open()
    try:
        sub = subscription()
        await subscribe(s, sub)
        fanned, pulled = event(ts=now_us()), event(ts=now_us(), user="bob")
        await s.insert_events([fanned, pulled], [])
        assert bodies(await receive(s)) == {(fanned.event_id, sub.subscription_id)}
        assert await s.sweep_unsent(older_than_s=0) == 1  # the subscription's, never bob's workflow one
    finally:
        await s.close()


async def test_an_empty_batch_reports_nothing(box: WorkerContainer) -> None:
    assert await invoke(box, {"Records": []}) == {"batchItemFailures": []}


async def test_concurrent_outcomes_of_one_event_derive_its_final_status(
    store: DynamoDBStorage, box: WorkerContainer, receiver: Receiver
) -> None:
    subs = [subscription(), subscription()]
    for s in subs:
        s.target_url = receiver.url
    await subscribe(store, *subs)
    records = [event(ts=now_us() + i) for i in range(12)]
    await store.insert_events(records, [])
    messages = await receive(store)
    assert len(messages) == 36
    for start in range(0, len(messages), 10):  # batches of 10 as SQS hands them out, in a shuffle
        batch = messages[start : start + 10]
        assert await invoke(box, sqs_event(batch, store.names.delivery_queue)) == {"batchItemFailures": []}
    for r in records:
        fetched = await store.get_event("alice", r.event_id)
        assert fetched is not None and fetched.status == EventStatus.DELIVERED, r.event_id


async def test_an_acknowledged_events_message_is_dropped_unpushed(
    store: DynamoDBStorage, box: WorkerContainer, receiver: Receiver
) -> None:
    receiver.script = always(Respond(503))
    record = event(ts=now_us())
    await store.insert_events([record], [])
    (message,) = await receive(store)
    await invoke(box, sqs_event([message], store.names.delivery_queue))  # a retry is scheduled
    await store.acknowledge("alice", [record.event_id], now_us(), {})
    (dest,) = (await store._dests(record.event_id)).values()
    assert dest["status"] == "cancelled" and "due_shard" not in dest
    assert await store.next_delivery_due(now_us() + 10**10) is None
    # the message comes back when its retry would have been due: nothing is pushed
    assert await invoke(box, sqs_event([message], store.names.delivery_queue)) == {"batchItemFailures": []}
    assert len(receiver.requests) == 1


async def test_a_batch_emits_its_delivery_counts_as_emf_under_the_terraforms_names(
    store: DynamoDBStorage, box: WorkerContainer, receiver: Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    """One real batch: delivered, retried, dead-lettered, and not due yet (no attempt). The EMF
    document Powertools prints carries the counts, under the names and dimensions the delivery
    failure-rate alarm and the dashboard of modules/monitoring read."""
    from aws_lambda_powertools.metrics.provider import cold_start

    from tests.aws import emf

    delivered, retried, refused = (event(ts=now_us() + i) for i in range(3))
    not_due = event(ts=now_us() + 120_000_000)
    answers = {
        delivered.event_id: Respond(200, b"{}"),
        retried.event_id: Respond(503, b"busy"),
        refused.event_id: Respond(422, b"bad"),
    }
    receiver.script = lambda request, seen: answers[request.event_id]
    await store.insert_events([delivered, retried, refused, not_due], [])
    messages = await receive(store)
    assert len(messages) == 4
    capsys.readouterr()
    cold_start.is_cold_start = True  # whichever handler ran first in this process took it
    result = await invoke(box, sqs_event(messages, store.names.delivery_queue))
    assert len(result["batchItemFailures"]) == 2  # the retry and the one not due
    found = emf.emitted(capsys.readouterr().out)
    worker = {"service": "triggers-api-worker"}
    assert {e.namespace for e in found} == {"TriggersApi"}  # no POWERTOOLS_METRICS_NAMESPACE here
    assert emf.total(found, "DeliveryAttempts", **worker) == 3
    assert emf.total(found, "DeliverySuccesses", **worker) == 1
    assert emf.total(found, "DeliveryFailures", **worker) == 2
    assert emf.total(found, "DeliveryRetries", **worker) == 1
    assert emf.total(found, "DeliveryDeadLetters", **worker) == 1
    context = LambdaContext()
    assert (
        emf.total(found, "ColdStart", service="triggers-api-worker", function_name=context.function_name) == 1
    )
    wanted = {
        (name, dims) for name, dims in emf.terraform_metrics() if ("service", "triggers-api-worker") in dims
    }
    assert {name for name, _ in wanted} == {"DeliveryAttempts", "DeliveryFailures", "DeliveryRetries"}
    for name, dims in wanted:
        assert emf.matches(found, name, dims), (name, dims)
    # a scheduled invocation reports what the sweep re-sent
    lambda_worker.set_container(box)
    try:
        swept = await asyncio.to_thread(
            lambda_worker.handler, {"source": "aws.events", "detail-type": "Scheduled Event"}, context
        )
    finally:
        lambda_worker.set_container(None)
    assert emf.total(emf.emitted(capsys.readouterr().out), "DeliveriesSwept", **worker) == swept["swept"]


async def test_the_pacer_parks_a_destinations_surplus_for_its_own_pace_not_the_timeout(
    box: WorkerContainer,
) -> None:
    """A surplus message (its destination already holds CLAIM_AHEAD x limit) goes back to the
    queue for the pushes ahead of it at that destination's measured pace. It used to be the push
    timeout, so a healthy subscription's surplus waited as long as a hanging one's."""
    pacer = Pacer(box.consumer)
    timeout = box.consumer.settings.delivery_timeout
    assert pacer.hand_back_s("healthy", held=8, limit=2) == math.ceil(4 * FIRST_PUSH_S)  # not measured yet
    pacer.measured("healthy", Fate(True, "delivered"), 0.2)
    assert pacer.hand_back_s("healthy", held=8, limit=2) == 1  # 4 pushes ahead x 0.2 s, at least 1 s
    pacer.measured("healthy", Fate(True, "done"), 50.0)  # nothing was pushed: not a pace
    pacer.measured("healthy", Fate(False, "not_due", 30), 50.0)
    assert pacer.hand_back_s("healthy", held=8, limit=2) == 1
    pacer.measured("hanging", Fate(False, "retry", 300), timeout + 0.5)
    assert pacer.hand_back_s("hanging", held=8, limit=2) == math.ceil(4 * timeout)  # bounded by the timeout
    for _ in range(20):  # a moving average: it follows a destination that recovers
        pacer.measured("hanging", Fate(True, "delivered"), 0.1)
    assert pacer.hand_back_s("hanging", held=8, limit=2) == 1
