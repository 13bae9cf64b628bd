"""``triggers_api.aws.lambda_worker.handler``: the delivery worker for SQS batches (<= 10 records).

Each record is one (event, destination) delivery message. The records of a batch are handled
concurrently by :class:`~triggers_api.delivery.queue_consumer.QueueConsumer` (the same code
``triggers-api worker`` runs on DynamoDB: a targeted conditional claim, then the fan-out worker's
push, signing, attempt history, outcomes, audit and circuit breaker); Powertools'
``BatchProcessor`` then reports the records to keep as ``batchItemFailures`` (the event source
mapping needs ``ReportBatchItemFailures``). A retry's delay is the message's visibility
(``ChangeMessageVisibility``, set before the failure is reported): SQS hands the message back
when the retry is due. Poison messages reach the DLQ by the queue's redrive policy.

The container keeps one event loop, one storage and one worker (HTTP pools, breakers) across
invocations; nothing is built at import.

Every invocation emits its delivery counts as EMF (``aws/observability.py``): ``DeliveryAttempts``
and ``DeliveryFailures`` feed the delivery failure-rate alarm, ``DeliveryRetries`` the dashboard,
``DeliverySuccesses`` and ``DeliveryDeadLetters`` complete the picture; a scheduled invocation
emits ``DeliveriesSwept``. X-Ray gets a ``## deliver_batch`` subsegment around the batch's claims,
pushes and outcomes.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from triggers_api.aws import observability as obs
from triggers_api.config import Settings
from triggers_api.delivery.fanout import FanoutWorker
from triggers_api.delivery.queue_consumer import Fate, Message, QueueConsumer
from triggers_api.storage.base import AttemptOutcome

SERVICE = obs.service_name("worker")
logger = Logger(service=SERVICE)
tracer = obs.tracer_for("worker")
metrics = obs.metrics_for("worker")


class RecordNotFinished(Exception):
    """Raised for a record SQS must hand back (reported in batchItemFailures)."""


@dataclass
class WorkerContainer:
    loop: asyncio.AbstractEventLoop
    consumer: QueueConsumer

    @classmethod
    def build(cls, settings: Settings | None = None) -> WorkerContainer:
        from triggers_api.storage import build_storage
        from triggers_api.storage.dynamodb import DynamoDBStorage

        settings = settings or Settings()
        loop = asyncio.new_event_loop()
        storage = build_storage(settings)
        if not isinstance(storage, DynamoDBStorage):
            raise RuntimeError("the SQS worker needs TRIGGERS_DATABASE_URL=dynamodb://...")
        loop.run_until_complete(storage.open())
        worker = FanoutWorker(storage, settings, worker_id="lambda")
        return cls(loop, QueueConsumer(storage, settings, worker))

    def close(self) -> None:
        """For tests: close the storage and the loop."""
        self.loop.run_until_complete(self.consumer.storage.close())
        for dest in list(self.consumer.worker.destinations.values()):
            self.loop.run_until_complete(dest.aclose())
        self.loop.close()


_container: WorkerContainer | None = None


def container() -> WorkerContainer:
    global _container
    if _container is None:
        _container = WorkerContainer.build()
    return _container


def set_container(value: WorkerContainer | None) -> None:
    """Tests install a container built with their settings (or drop it)."""
    global _container
    _container = value


def outcome_counts(fates: Iterable[Fate]) -> dict[str, int]:
    """The batch's EMF counters. A fate's reason is the attempt's outcome when a push was made
    (``delivered``, ``retry``, ``failed``); the other reasons (not due, circuit open, claimed
    elsewhere, invalid message...) made no attempt and count in none of these."""
    reasons = Counter(f.reason for f in fates)
    delivered = reasons[AttemptOutcome.DELIVERED.value]
    retried = reasons[AttemptOutcome.RETRY.value]
    dead = reasons[AttemptOutcome.FAILED.value]
    return {
        obs.DELIVERY_ATTEMPTS: delivered + retried + dead,
        obs.DELIVERY_SUCCESSES: delivered,
        obs.DELIVERY_FAILURES: retried + dead,
        obs.DELIVERY_RETRIES: retried,
        obs.DELIVERY_DEAD_LETTERS: dead,
    }


def _emit(counts: dict[str, int]) -> None:
    for name, value in counts.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def process(event: dict[str, Any], context: Any, box: WorkerContainer) -> dict[str, Any]:
    records = [SQSRecord(r) for r in event.get("Records", [])]
    if not records:  # BatchProcessor refuses an empty batch; there is nothing to report
        _emit(outcome_counts([]))
        return {"batchItemFailures": []}
    messages = [Message(r.message_id, r.body, r.receipt_handle) for r in records]
    asyncio.set_event_loop(box.loop)
    # The pushes run concurrently on this thread: one subsegment spans them all (see observability).
    with tracer.provider.in_subsegment("## deliver_batch") as subsegment:
        fates: dict[str, Fate] = box.loop.run_until_complete(box.consumer.handle_all(messages))
        counts = outcome_counts(fates.values())
        subsegment.put_metadata("batch", {"records": len(messages), **counts}, SERVICE)
    _emit(counts)

    def record_handler(record: SQSRecord) -> str:
        fate = fates[record.message_id]
        if not fate.ok:
            raise RecordNotFinished(fate.reason)
        return fate.reason

    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    result: dict[str, Any] = dict(
        process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
    )
    logger.info(
        "sqs_batch",
        records=len(messages),
        failures=len(result.get("batchItemFailures", [])),
        fates={f.reason: sum(1 for x in fates.values() if x.reason == f.reason) for f in fates.values()},
    )
    return result


def sweep(box: WorkerContainer) -> dict[str, Any]:
    """A scheduled invocation (EventBridge, e.g. every 5 minutes): re-send the messages of
    deliveries due long ago whose message was never sent (a crash or an SQS error after the
    insert committed)."""
    asyncio.set_event_loop(box.loop)
    with tracer.provider.in_subsegment("## sweep") as subsegment:
        sent = box.loop.run_until_complete(box.consumer.storage.sweep_unsent())
        subsegment.put_metadata("sweep", {"sent": sent}, SERVICE)
    metrics.add_metric(name=obs.DELIVERIES_SWEPT, unit=MetricUnit.Count, value=sent)
    logger.info("delivery_sweep", sent=sent)
    return {"swept": sent}


def _handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if "Records" not in event and event.get("source") == "aws.events":
        return sweep(container())
    return process(event, context, container())


#: The Lambda entry point (``triggers_api.aws.lambda_worker.handler``).
handler = obs.instrument(_handle, logger=logger, tracer=tracer, metrics=metrics)
