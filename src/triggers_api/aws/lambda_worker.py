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
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from triggers_api.config import Settings
from triggers_api.delivery.fanout import FanoutWorker
from triggers_api.delivery.queue_consumer import Fate, Message, QueueConsumer

logger = Logger(service="triggers-api-worker")


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


def process(event: dict[str, Any], context: Any, box: WorkerContainer) -> dict[str, Any]:
    records = [SQSRecord(r) for r in event.get("Records", [])]
    if not records:  # BatchProcessor refuses an empty batch; there is nothing to report
        return {"batchItemFailures": []}
    messages = [Message(r.message_id, r.body, r.receipt_handle) for r in records]
    asyncio.set_event_loop(box.loop)
    fates: dict[str, Fate] = box.loop.run_until_complete(box.consumer.handle_all(messages))

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
    sent = box.loop.run_until_complete(box.consumer.storage.sweep_unsent())
    logger.info("delivery_sweep", sent=sent)
    return {"swept": sent}


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if "Records" not in event and event.get("source") == "aws.events":
        return sweep(container())
    return process(event, context, container())
