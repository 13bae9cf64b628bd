"""The AWS backend (issue 9): DynamoDB tables and SQS queues named after one prefix.

:mod:`.schema` is the data model (one source of truth, compared with the Terraform),
:mod:`.migrate` creates or checks it, :class:`DynamoDBStorage` (``backend.py``) implements the
storage Protocol from its parts. Selected by ``TRIGGERS_DATABASE_URL=dynamodb://<prefix>?region=R``.
"""

from __future__ import annotations

from triggers_api.storage.dynamodb.backend import DynamoDBStorage

__all__ = ["DynamoDBStorage"]
