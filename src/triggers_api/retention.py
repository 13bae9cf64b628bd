"""Retention: archive expired events to gzip JSON Lines, then delete them; purge old audit rows.

The archive file is written and fsync'd before the delete is issued, and the delete only removes
rows that are still expired, so nothing is deleted that was not archived first. Work proceeds in
bounded batches so no sweep holds a long lock.
"""

from __future__ import annotations

import asyncio
import gzip
import os
from datetime import UTC, datetime
from pathlib import Path

import orjson
import structlog

from triggers_api.events.service import render_event
from triggers_api.storage.base import EventRecord, Storage, now_us

log = structlog.get_logger(__name__)


def _write_archive(directory: Path, records: list[EventRecord]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    path = directory / f"events-{stamp}-{os.getpid()}.jsonl.gz"
    tmp = path.with_suffix(".tmp")
    try:
        with open(tmp, "wb") as raw:
            with gzip.GzipFile(fileobj=raw, mode="wb") as gz:
                for record in records:
                    gz.write(orjson.dumps(render_event(record, with_ack=True)) + b"\n")
            raw.flush()
            os.fsync(raw.fileno())
    except OSError:
        # A full archive disk (ENOSPC): nothing of this batch is deleted (the caller stops before
        # its delete), and the partial file goes so it holds no space and no half batch.
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return path


async def sweep(
    storage: Storage, archive_dir: Path, *, batch: int = 1000, audit_retention_days: float = 2557
) -> int:
    """One retention pass; returns how many events were archived and deleted."""
    total = 0
    while True:
        now_s = now_us() // 1_000_000
        expired = await storage.expired_events(now_s, batch)
        if not expired:
            break
        path = await asyncio.to_thread(_write_archive, archive_dir, expired)
        deleted = await storage.delete_events([e.event_id for e in expired], now_s)
        total += deleted
        log.info("events_archived", file=str(path), archived=len(expired), deleted=deleted)
        if len(expired) < batch:
            break
    await storage.purge_audit(now_us() - int(audit_retention_days * 86_400 * 1_000_000))
    await storage.purge_idempotency(now_us())
    return total
