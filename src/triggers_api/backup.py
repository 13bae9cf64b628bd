"""``triggers-api backup PATH``: a consistent copy of the embedded SQLite database, taken live.

SQLite's online backup API copies every page inside one read transaction (``pages=-1``): in WAL
mode that is a snapshot the service's writer does not wait for, and it contains exactly the
transactions committed before it began, so every event answered 201 by then is in the copy. The
copy is written beside the target and renamed into place (a crash leaves no half-written backup),
switched to a rollback journal so it is one self-contained file, and checked with
``PRAGMA quick_check``. PostgreSQL has its own tools (``pg_dump``, base backups and WAL archiving):
see docs/deploy.md.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path


class BackupError(Exception):
    """The backup could not be made (message for the operator)."""


@dataclass(frozen=True, slots=True)
class BackupResult:
    path: Path
    bytes: int
    events: int


def backup_sqlite(source: Path, target: Path) -> BackupResult:
    if not source.exists():
        raise BackupError(f"no database at {source}")
    target = target.expanduser()
    if target.is_dir():
        target = target / source.name
    if target.resolve() == source.resolve():
        raise BackupError("the backup must not overwrite the live database")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    partial.unlink(missing_ok=True)
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    try:
        dst = sqlite3.connect(partial)
        try:
            src.backup(dst, pages=-1)  # one step: one read snapshot, a consistent copy
            dst.execute("PRAGMA journal_mode=DELETE")  # one file, no -wal beside it
            check = dst.execute("PRAGMA quick_check").fetchone()
            if not check or check[0] != "ok":
                raise BackupError(f"the copy failed its integrity check: {check}")
            events = int(dst.execute("SELECT COUNT(*) FROM events").fetchone()[0])
        finally:
            dst.close()
    except sqlite3.Error as exc:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise BackupError(f"backup failed: {exc}") from exc
    finally:
        src.close()
    with open(partial, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(partial, target)
    return BackupResult(target, target.stat().st_size, events)
