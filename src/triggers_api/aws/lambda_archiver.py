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
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes import DynamoDBStreamEvent
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import (
    DynamoDBRecord,
    DynamoDBRecordEventName,
)

from triggers_api.archive import ArchiveTarget, archive_target
from triggers_api.config import Settings
from triggers_api.storage.base import EventRecord

TTL_PRINCIPAL = "dynamodb.amazonaws.com"
EVENTS_SUFFIX = "-events"


def is_ttl_removal(record: DynamoDBRecord) -> bool:
    identity = record.raw_event.get("userIdentity") or {}
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


def _json_bytes(value: Any) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, str):
        return value.encode()
    return orjson.dumps(value, default=_decimal)


def _decimal(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, set):
        return sorted(value)
    raise TypeError(type(value).__name__)


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _ts_us_from(ts_id: str) -> int:
    stamp = ts_id.split("#", 1)[0]
    return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1_000_000)


def event_from_item(item: dict[str, Any]) -> EventRecord:
    """An events-table item image (deserialized) -> the contract's :class:`EventRecord`.

    Reads the attributes named as in ``EventRecord`` and falls back on the key formats of
    ``storage/dynamodb/schema.py`` (``user_shard = <user>#<n>``, ``ts_id = <ISO µs>#<event_id>``)
    for the identity, so an image that carries only the keys still archives who and when.
    """
    ts_id = str(item.get("ts_id", ""))
    event_id = str(item.get("event_id") or ts_id.rsplit("#", 1)[-1])
    user_id = str(item.get("user_id") or str(item.get("user_shard", "")).rsplit("#", 1)[0])
    ts_us = _int(item.get("ts_us"))
    if ts_us is None:
        ts_us = _ts_us_from(ts_id)
    expires = item.get("ttl", item.get("expires_at"))
    return EventRecord(
        event_id=event_id,
        user_id=user_id,
        event_type=str(item.get("event_type", "")),
        payload=_json_bytes(item.get("payload")),
        status=str(item.get("status", "")),
        ts_us=ts_us,
        expires_at=int(expires) if expires is not None else 0,
        metadata=_json_bytes(item.get("metadata")) or b"{}",
        retry_count=int(item.get("retry_count", 0)),
        last_retry_us=_int(item.get("last_retry_us")),
        delivered_us=_int(item.get("delivered_us")),
        acknowledged_us=_int(item.get("acknowledged_us")),
    )


class Archiver:
    """One container's archiver: the archive target, built on the first invocation."""

    def __init__(self, settings: Settings | None = None, target: ArchiveTarget | None = None) -> None:
        self.settings = settings or Settings()
        self.target = target or archive_target(self.settings)
        self.logger = Logger(service="triggers-api-archiver", child=False)

    def expired_events(self, event: dict[str, Any]) -> list[EventRecord]:
        records: list[EventRecord] = []
        for record in DynamoDBStreamEvent(event).records:
            if not is_ttl_removal(record) or not table_of(record).endswith(EVENTS_SUFFIX):
                continue
            image = record.dynamodb.old_image if record.dynamodb is not None else None
            if image:
                records.append(event_from_item(dict(image)))
        return records

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        records = self.expired_events(event)
        written = self.target.write(records) if records else []
        self.logger.info(
            "events_archived", received=len(event.get("Records") or []), archived=len(records), files=written
        )
        return {"archived": len(records), "files": written}


_archiver: Archiver | None = None


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The Lambda entry point (``triggers_api.aws.lambda_archiver.handler``)."""
    global _archiver
    if _archiver is None:
        _archiver = Archiver()
    return _archiver(event, context)
