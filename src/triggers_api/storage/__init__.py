"""Storage backends behind one protocol; :func:`build_storage` picks one from the database URL."""

from __future__ import annotations

from triggers_api.config import Settings
from triggers_api.storage.base import Storage


def build_storage(settings: Settings) -> Storage:
    if settings.is_sqlite:
        from triggers_api.storage.sqlite import SQLiteStorage

        return SQLiteStorage(
            settings.sqlite_path(),
            commit_batch_max=settings.commit_batch_max,
            workflow_destination=settings.workflow_url is not None,
        )
    if settings.is_postgres:
        from triggers_api.storage.postgres import PostgresStorage

        return PostgresStorage(
            settings.database_url,
            schema=settings.database_schema,
            pool_min=settings.database_pool_min,
            pool_max=settings.database_pool_max,
            commit_batch_max=settings.commit_batch_max,
            writers=settings.commit_writers,
            timeout=settings.database_timeout,
            workflow_destination=settings.workflow_url is not None,
        )
    if settings.is_dynamodb:
        from triggers_api.storage.dynamodb import DynamoDBStorage

        return DynamoDBStorage(
            settings.dynamodb_prefix(),
            region=settings.dynamodb_region(),
            endpoint_url=settings.dynamodb_endpoint_url(),
            workflow_destination=settings.workflow_url is not None,
            due_shards=settings.dynamodb_due_shards(),
            stream_settle_s=settings.dynamodb_stream_settle_s(),
        )
    raise ValueError(f"unsupported TRIGGERS_DATABASE_URL scheme: {settings.database_url.split(':', 1)[0]!r}")


__all__ = ["Storage", "build_storage"]
