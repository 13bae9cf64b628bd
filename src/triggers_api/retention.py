"""Retention: archive expired events to gzip JSON Lines, then delete them; purge old audit rows.

The archive (a directory or S3: ``archive.py``) is written (file fsync'd, object put) before the
delete is issued, and the delete only removes
rows that are still expired, so nothing is deleted that was not archived first. Work proceeds in
bounded batches so no sweep holds a long lock.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import structlog

from triggers_api.archive import ArchiveTarget, LocalArchive
from triggers_api.storage.base import Storage, now_us

log = structlog.get_logger(__name__)


async def sweep(
    storage: Storage,
    archive: Path | ArchiveTarget,
    *,
    batch: int = 1000,
    audit_retention_days: float = 2557,
) -> int:
    """One retention pass; returns how many events were archived and deleted.

    ``archive`` is a directory or any :class:`~triggers_api.archive.ArchiveTarget` (S3 when
    ``TRIGGERS_ARCHIVE_URL`` is ``s3://...``): see ``archive.archive_target``."""
    target = LocalArchive(archive) if isinstance(archive, Path) else archive
    total = 0
    while True:
        now_s = now_us() // 1_000_000
        expired = await storage.expired_events(now_s, batch)
        if not expired:
            break
        written = await asyncio.to_thread(target.write, expired)
        deleted = await storage.delete_events([e.event_id for e in expired], now_s)
        total += deleted
        log.info("events_archived", files=written, archived=len(expired), deleted=deleted)
        if len(expired) < batch:
            break
    await storage.purge_audit(now_us() - int(audit_retention_days * 86_400 * 1_000_000))
    await storage.purge_idempotency(now_us())
    return total
