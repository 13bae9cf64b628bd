"""SQLite backend: the embedded default, one file, one writer thread that group-commits.

One module per part, the same parts in every backend (``storage/postgres/``,
``storage/dynamodb/``), so a reader compares backends part by part:

* :mod:`.core`: the shared state and the two doors to the database (``_write`` queued for the
  writer thread, ``_read`` on the reader pool), the events table's columns, the multi-row insert,
  error translation.
* :mod:`.backend`: :class:`SQLiteStorage` assembled from the parts; lifecycle and the writer
  thread (group commit, WAL checkpoints, the cross-process writer lock).
* :mod:`.events`: events, idempotency, the inbox listing and its JSON pages, acknowledgement,
  retention, counts per time bucket.
* :mod:`.keys`, :mod:`.audit`, :mod:`.event_types`: API keys, the audit log, the schema catalog.
* :mod:`.delivery`: claims, attempts, leases, replay, depths and counts of the push worker.
* :mod:`.fanout`: subscriptions and per-destination deliveries (issue 10).
* :mod:`.stream`: stream positions (rowids) and wake-ups (none across processes).
* :mod:`.migrations`: schema and migrations.
"""

from __future__ import annotations

from triggers_api.storage.sqlite.audit import AUDIT_COLUMNS
from triggers_api.storage.sqlite.backend import SQLiteStorage
from triggers_api.storage.sqlite.core import EVENT_COLUMNS, _insert_many
from triggers_api.storage.sqlite.keys import KEY_COLUMNS
from triggers_api.storage.sqlite.migrations import MIGRATIONS

__all__ = ["AUDIT_COLUMNS", "EVENT_COLUMNS", "KEY_COLUMNS", "MIGRATIONS", "SQLiteStorage", "_insert_many"]
