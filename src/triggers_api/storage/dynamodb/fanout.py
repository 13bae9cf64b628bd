"""Subscriptions and fan-out on DynamoDB: written by the delivery helper (B1b).

Placeholder until then: the class exists so :class:`DynamoDBStorage` can be assembled.
"""

from __future__ import annotations

from triggers_api.storage.dynamodb.core import DynamoCore


class FanoutPart(DynamoCore):
    pass
