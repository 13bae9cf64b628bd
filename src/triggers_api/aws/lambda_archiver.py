"""``handler(event, context)``: DynamoDB Streams batches from the events table -> the archive.

DynamoDB's TTL deletes an expired event without asking anyone; its stream (NEW_AND_OLD_IMAGES)
still carries the item's last image for 24 hours. This function writes the images of **TTL
removals** (``eventName == "REMOVE"``, ``userIdentity.type == "Service"``,
``userIdentity.principalId == "dynamodb.amazonaws.com"``) to the archive, as the retention sweep
does on SQLite and PostgreSQL: the same gzip JSON Lines records (``archive.archive_line``),
partitioned by user and date on S3 (``TRIGGERS_ARCHIVE_URL=s3://bucket/prefix``). Every other
record (inserts, status changes, a user's own delete, other tables) is ignored; the event source
mapping's filter already drops most of them.

A batch is archived whole or raises: Lambda then retries it (bisecting on error, as the
Terraform configures) until the records leave the stream, and re-archiving a retried batch
writes new objects with the same lines, never loses one.

An image is decoded by the backend's own codec (``storage/dynamodb/core.event_from_item``): a
stream image is in DynamoDB's attribute-value format, exactly what a GetItem returns, so the
archive holds what the backend would have read. Each invocation emits ``EventsArchived`` and
``ArchiveObjectsWritten`` (EMF); the archive write is an X-Ray subsegment (``## ...Archiver.write_archive``).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import DynamoDBStreamEvent
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import (
    DynamoDBRecord,
    DynamoDBRecordEventName,
)

from triggers_api.archive import ArchiveTarget, archive_target
from triggers_api.aws import observability as obs
from triggers_api.config import Settings
from triggers_api.storage.base import EventRecord
from triggers_api.storage.dynamodb import schema
from triggers_api.storage.dynamodb.core import event_from_item

TTL_PRINCIPAL = "dynamodb.amazonaws.com"
EVENTS_SUFFIX = f"-{schema.EVENTS.suffix}"

SERVICE = obs.service_name("archiver")
tracer = obs.tracer_for("archiver")
metrics = obs.metrics_for("archiver")


def is_ttl_removal(record: DynamoDBRecord) -> bool:
    identity = record.user_identity
    return (
        record.event_name == DynamoDBRecordEventName.REMOVE
        and identity.get("type") == "Service"
        and identity.get("principalId") == TTL_PRINCIPAL
    )


def table_of(record: DynamoDBRecord) -> str:
    """``arn:aws:dynamodb:<region>:<account>:table/<name>/stream/<label>`` -> ``<name>``."""
    arn = record.event_source_arn or ""
    _, _, rest = arn.partition(":table/")
    return rest.split("/", 1)[0]


def old_image(record: DynamoDBRecord) -> dict[str, Any] | None:
    """The record's last image in attribute-value form (``{"S": ...}``), as the backend's codec
    reads it. Powertools' ``old_image`` would turn it into plain Python values, which the codec
    does not read. Lambda hands binary values over base64-encoded in JSON (boto3's GetItem and
    GetRecords decode them): they become bytes again here, as a GetItem returns them."""
    stream = record.dynamodb
    image = stream.raw_event.get("OldImage") if stream is not None else None
    if not isinstance(image, dict) or not image:
        return None
    return {name: _binary_decoded(value) for name, value in image.items()}


def _binary_decoded(value: Any) -> Any:
    if isinstance(value, dict) and isinstance(value.get("B"), str):
        return {"B": base64.b64decode(value["B"])}
    return value


class Archiver:
    """One container's archiver: the archive target, built on the first invocation."""

    def __init__(self, settings: Settings | None = None, target: ArchiveTarget | None = None) -> None:
        self.settings = settings or Settings()
        self.target = target or archive_target(self.settings)
        self.logger = Logger(service=SERVICE, child=False)
        self._invoke = obs.instrument(self._archive, logger=self.logger, tracer=tracer, metrics=metrics)

    def expired_events(self, event: dict[str, Any]) -> list[EventRecord]:
        records: list[EventRecord] = []
        for record in DynamoDBStreamEvent(event).records:
            if not is_ttl_removal(record) or not table_of(record).endswith(EVENTS_SUFFIX):
                continue
            image = old_image(record)
            if image is not None:
                records.append(event_from_item(image))
        return records

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._invoke(event, context)
        return result

    @tracer.capture_method(capture_response=False)
    def write_archive(self, records: Sequence[EventRecord]) -> list[str]:
        return self.target.write(records)

    def _archive(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        archived: list[EventRecord] = []
        written: list[str] = []
        try:
            records = self.expired_events(event)
            written = self.write_archive(records) if records else []
            archived = records
        finally:  # a failed batch counts zero: Lambda hands it back, and it counts when written
            metrics.add_metric(name=obs.EVENTS_ARCHIVED, unit=MetricUnit.Count, value=len(archived))
            metrics.add_metric(name=obs.ARCHIVE_OBJECTS, unit=MetricUnit.Count, value=len(written))
        self.logger.info(
            "events_archived", received=len(event.get("Records") or []), archived=len(archived), files=written
        )
        return {"archived": len(archived), "files": written}


_archiver: Archiver | None = None


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The Lambda entry point (``triggers_api.aws.lambda_archiver.handler``)."""
    global _archiver
    if _archiver is None:
        _archiver = Archiver()
    return _archiver(event, context)
