"""What SQLite alone can commit with the service's schema: ``python -m bench.sqlite_ceiling``.

One thread, no HTTP, no Python request handling: rows prepared beforehand, inserted with the
same multi-row statements the writer uses, in transactions of ``--group`` events (each with its
audit record), ``synchronous=FULL`` in WAL mode like the service. Then the same without the audit
rows, and without the secondary indexes, to show what each costs. It is the ceiling of the batch
row: the service cannot commit events faster than this.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import uuid_utils

from triggers_api.storage.sqlite import AUDIT_COLUMNS, EVENT_COLUMNS, SQLiteStorage, _insert_many

PAYLOAD = b'{"order_id":"ord_8f14e","user_id":"usr_12345","email":"jane@example.com","amount":42.5,"currency":"EUR"}'
METADATA = b'{"source_ip":"127.0.0.1","api_version":"v1","correlation_id":"c38f1271969446e5a1905f369b434406","user_agent":null}'
SECONDARY = {
    "events": [
        "ix_events_user_ts",
        "ix_events_inbox",
        "ix_events_user_type_ts",
        "ix_events_expires",
        "ix_events_due",
        "ix_events_dead",
    ],
    "audit_logs": ["ix_audit_user_ts", "ix_audit_user_event", "ix_audit_user_action"],
}


def rows(n: int) -> tuple[list[Any], list[Any]]:
    """Flat values, row after row, as the writer takes them."""
    ts = time.time_ns() // 1000
    events: list[Any] = []
    audit: list[Any] = []
    for _ in range(n):
        event_id = str(uuid_utils.uuid7())
        expires = ts // 10**6 + 86_400
        events += (event_id, "bench", "order.completed", PAYLOAD, "received", ts, expires, METADATA)
        events += (0, None, None, None)
        details = b'{"event_type":"order.completed"}'
        log_id = str(uuid_utils.uuid7())
        audit += (log_id, "bench", "event.created", ts, event_id, details, "127.0.0.1", "c38f1271")
    return events, audit


def measure(directory: Path, group: int, total: int, *, audit: bool, indexes: bool) -> float:
    path = directory / f"ceiling-{audit}-{indexes}.db"
    SQLiteStorage(path)._migrate_sync()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    if not indexes:
        for names in SECONDARY.values():
            for name in names:
                conn.execute(f"DROP INDEX IF EXISTS {name}")
    batches = [rows(group) for _ in range(max(1, total // group))]
    started = time.perf_counter()
    for events, audits in batches:
        conn.execute("BEGIN IMMEDIATE")
        _insert_many(conn, "events", EVENT_COLUMNS, 12, events)
        if audit:
            _insert_many(conn, "audit_logs", AUDIT_COLUMNS, 8, audits)
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return len(batches) * group / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sqlite_ceiling", description=__doc__)
    parser.add_argument("--group", type=int, default=100, help="events per transaction")
    parser.add_argument("--total", type=int, default=40_000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="triggers-sqlite-") as tmp:
        for label, audit, indexes in (
            ("events + audit records, all indexes (the service)", True, True),
            ("events only, all indexes", False, True),
            ("events + audit records, primary keys only", True, False),
            ("events only, primary key only", False, False),
        ):
            rate = measure(Path(tmp), args.group, args.total, audit=audit, indexes=indexes)
            sys.stdout.write(f"{label:52s} {rate:>9,.0f} events/s ({args.group} per commit)\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
