"""The DynamoDB + SQS backend, assembled from its parts (one module per concept, like the SQL
backends): ``core`` (clients, codec, write helpers, the seams), ``events`` (and idempotency),
``keys``, ``audit``, ``event_types``, ``stream``, ``delivery``, ``fanout``, ``queue``."""

from __future__ import annotations

from triggers_api.storage.dynamodb.audit import AuditPart
from triggers_api.storage.dynamodb.event_types import EventTypesPart
from triggers_api.storage.dynamodb.events import EventsPart
from triggers_api.storage.dynamodb.keys import KeysPart
from triggers_api.storage.dynamodb.queue import QueuePart
from triggers_api.storage.dynamodb.stream import StreamPart


class DynamoDBStorage(EventsPart, KeysPart, AuditPart, EventTypesPart, StreamPart, QueuePart):
    """Implements :class:`~triggers_api.storage.base.Storage` on DynamoDB tables and SQS queues
    named ``<prefix>-...`` (``TRIGGERS_DATABASE_URL=dynamodb://<prefix>?region=...``).

    ``QueuePart`` extends ``FanoutPart``, which extends ``DeliveryPart``: listing the most derived
    one alone keeps the method resolution order valid."""
