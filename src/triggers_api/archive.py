"""Where expired events go before they are deleted: a local directory or S3, as gzip JSON Lines.

One line per event, the event JSON of ``GET /v1/events/{id}`` plus ``acknowledged_at``
(:func:`archive_line`): the retention sweep and the DynamoDB Streams archiver write the same
records. The target comes from ``TRIGGERS_ARCHIVE_URL``:

- unset, or a directory: :class:`LocalArchive` (``TRIGGERS_ARCHIVE_DIR`` when unset), one file per
  batch (``events-<stamp>-<pid>.jsonl.gz``), written, fsync'd and renamed into place;
- ``s3://bucket/prefix``: :class:`S3Archive`, one object per user and day of the batch at
  ``<prefix>/events/user=<user>/date=<YYYY-MM-DD>/events-<stamp>-<random>.jsonl.gz`` (partitions
  Athena or a person can list). PutObject is atomic: an object exists whole or not at all. The
  client points at ``endpoint_url`` of a ``dynamodb://`` database URL when it has one, else at
  boto3's own configuration (``AWS_ENDPOINT_URL``, the region, the role's credentials).
"""

from __future__ import annotations

import gzip
import io
import os
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, quote, urlsplit

import orjson

from triggers_api.config import Settings
from triggers_api.events.service import render_event
from triggers_api.storage.base import EventRecord


def archive_line(record: EventRecord) -> bytes:
    return orjson.dumps(render_event(record, with_ack=True)) + b"\n"


def gzip_lines(records: Sequence[EventRecord]) -> bytes:
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb") as gz:
        for record in records:
            gz.write(archive_line(record))
    return buffer.getvalue()


class ArchiveTarget(Protocol):
    def write(self, records: Sequence[EventRecord]) -> list[str]:
        """Store ``records`` durably; return where (paths or URLs). Raises when it could not."""


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")


class LocalArchive:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def write(self, records: Sequence[EventRecord]) -> list[str]:
        directory = self.directory
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"events-{_stamp()}-{os.getpid()}.jsonl.gz"
        tmp = path.with_suffix(".tmp")
        try:
            with open(tmp, "wb") as raw:
                with gzip.GzipFile(fileobj=raw, mode="wb") as gz:
                    for record in records:
                        gz.write(archive_line(record))
                raw.flush()
                os.fsync(raw.fileno())
        except OSError:
            # A full archive disk (ENOSPC): nothing of this batch is deleted (the caller stops
            # before its delete), and the partial file goes so it holds no space and no half batch.
            tmp.unlink(missing_ok=True)
            raise
        os.replace(tmp, path)
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return [str(path)]


def partition_key(prefix: str, user_id: str, ts_us: int) -> str:
    day = datetime.fromtimestamp(ts_us / 1_000_000, UTC).strftime("%Y-%m-%d")
    name = (
        f"events/user={quote(user_id, safe='')}/date={day}/events-{_stamp()}-{uuid.uuid4().hex[:12]}.jsonl.gz"
    )
    return f"{prefix}/{name}" if prefix else name


class S3Archive:
    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        client: Any = None,
        endpoint_url: str | None = None,
        region: str | None = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._client = client
        self._endpoint_url = endpoint_url
        self._region = region

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.session.Session(region_name=self._region).client(
                "s3", endpoint_url=self._endpoint_url
            )
        return self._client

    def write(self, records: Sequence[EventRecord]) -> list[str]:
        groups: dict[tuple[str, str], list[EventRecord]] = {}
        for record in records:
            day = datetime.fromtimestamp(record.ts_us / 1_000_000, UTC).strftime("%Y-%m-%d")
            groups.setdefault((record.user_id, day), []).append(record)
        written: list[str] = []
        for group in groups.values():
            key = partition_key(self.prefix, group[0].user_id, group[0].ts_us)
            self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=gzip_lines(group),
                ContentType="application/x-ndjson",
                ContentEncoding="gzip",
            )
            written.append(f"s3://{self.bucket}/{key}")
        return written


def dynamodb_endpoint(database_url: str) -> tuple[str | None, str | None]:
    """``(region, endpoint_url)`` of a ``dynamodb://<prefix>?region=..&endpoint_url=..`` URL.

    A private parser until ``Settings`` parses that URL itself (the DynamoDB backend's branch).
    """
    if not database_url.startswith("dynamodb://"):
        return None, None
    query = parse_qs(urlsplit(database_url).query)
    region = query.get("region", [None])[0]
    endpoint = query.get("endpoint_url", [None])[0]
    return region, endpoint


def archive_target(settings: Settings) -> ArchiveTarget:
    """``TRIGGERS_ARCHIVE_URL`` (``s3://bucket/prefix`` or a directory), else ``archive_dir``."""
    url = settings.archive_url
    if not url:
        return LocalArchive(settings.archive_dir)
    if url.startswith("s3://"):
        parts = urlsplit(url)
        region, endpoint = dynamodb_endpoint(settings.database_url)
        return S3Archive(parts.netloc, parts.path, endpoint_url=endpoint, region=region)
    if url.startswith("file://"):
        return LocalArchive(Path(urlsplit(url).path))
    return LocalArchive(Path(url))
