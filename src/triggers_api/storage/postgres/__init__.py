"""PostgreSQL backend: many API and worker processes, on many machines, sharing one database.

Same contract and semantics as :mod:`triggers_api.storage.sqlite`; what differs is *how*:

* **Group commit on ingest.** Concurrent :meth:`insert_events` calls queue up; a few writer
  tasks each take everything waiting and store it with **one** statement (data-modifying CTEs
  over ``unnest`` arrays), which is one round trip and one WAL flush for the whole group. If the
  group fails (a duplicate id, a deadlock with another process), each write is retried alone so
  one bad write cannot spoil its neighbours.
* **The database enforces correctness across processes**, never an in-process lock:
  idempotency is ``INSERT ... ON CONFLICT DO UPDATE ... WHERE expired`` on the (user, key)
  primary key; acknowledgement is a conditional ``UPDATE ... WHERE acknowledged_us IS NULL``, so
  of two processes acknowledging one event exactly one changes it (and audits it).
* **Payloads are ``bytea``**: JSON may hold ``\\u0000`` escapes that ``jsonb`` refuses, and the
  bytes must come back exactly as they were sent.
* **Text that is ordered or compared is ``COLLATE "C"``** so pagination order is byte order, as
  in SQLite, whatever the database's default collation.
* **Migrations** are numbered scripts recorded in ``schema_migrations``, applied under an
  advisory lock, so any number of processes may start (or run ``triggers-api migrate``) at once.
* **Delivery claims** are ``FOR UPDATE SKIP LOCKED`` with leases: workers in any number of
  processes take disjoint events without waiting for each other; a dead worker's leases expire.
* **Stream positions** follow commit order across processes without a global lock: they are
  built from the inserting transaction's id, and readers stop below their snapshot's ``xmin``.
* **Wake-ups** cross processes with LISTEN/NOTIFY (:meth:`PostgresStorage.listen_for_events`).

One module per part, the same parts as ``storage/sqlite/`` and ``storage/dynamodb/``:
:mod:`.core` (pool, connections, error translation, shared helpers), :mod:`.backend`
(:class:`PostgresStorage` assembled from the parts; lifecycle and the group-commit writers),
:mod:`.events`, :mod:`.keys`, :mod:`.audit`, :mod:`.delivery`, :mod:`.fanout`,
:mod:`.event_types`, :mod:`.stream` (positions, LISTEN/NOTIFY) and :mod:`.migrations`.
"""

from __future__ import annotations

from triggers_api.storage.postgres.audit import AUDIT_COLUMNS, audit_listing_sql
from triggers_api.storage.postgres.backend import PostgresStorage
from triggers_api.storage.postgres.core import EVENT_COLUMNS
from triggers_api.storage.postgres.delivery import _CLAIM
from triggers_api.storage.postgres.events import event_listing_sql
from triggers_api.storage.postgres.keys import KEY_COLUMNS
from triggers_api.storage.postgres.migrations import MIGRATIONS
from triggers_api.storage.postgres.stream import _SAFE_POSITION, POSITION_SHIFT

__all__ = [
    "AUDIT_COLUMNS",
    "EVENT_COLUMNS",
    "KEY_COLUMNS",
    "MIGRATIONS",
    "POSITION_SHIFT",
    "_CLAIM",
    "_SAFE_POSITION",
    "PostgresStorage",
    "audit_listing_sql",
    "event_listing_sql",
]
