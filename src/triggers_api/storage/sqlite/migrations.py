"""SQLite schema: the numbered migration scripts, recorded in ``schema_migrations`` and applied
in one ``BEGIN IMMEDIATE`` transaction (so several processes may start at once)."""

from __future__ import annotations

import asyncio
import sqlite3

from triggers_api.errors import StorageError
from triggers_api.storage.sqlite.core import (
    SQLiteCore,
)

MIGRATIONS: list[str] = [
    # 1: events, keys, audit log, idempotency records
    """
    CREATE TABLE events (
        event_id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        event_type TEXT NOT NULL,
        payload BLOB,
        status TEXT NOT NULL,
        ts_us INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        metadata BLOB NOT NULL,
        retry_count INTEGER NOT NULL DEFAULT 0,
        last_retry_us INTEGER,
        delivered_us INTEGER,
        acknowledged_us INTEGER
    );
    CREATE INDEX ix_events_user_ts ON events (user_id, ts_us, event_id);
    CREATE INDEX ix_events_inbox ON events (user_id, ts_us, event_id)
        WHERE status IN ('received', 'queued', 'failed');
    CREATE INDEX ix_events_user_type_ts ON events (user_id, event_type, ts_us, event_id);
    CREATE INDEX ix_events_expires ON events (expires_at);

    CREATE TABLE api_keys (
        key_id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        key_hash TEXT NOT NULL UNIQUE,
        key_prefix TEXT NOT NULL,
        name TEXT NOT NULL,
        created_us INTEGER NOT NULL,
        last_used_us INTEGER,
        expires_us INTEGER,
        rate_limit INTEGER NOT NULL,
        is_active INTEGER NOT NULL,
        scopes TEXT NOT NULL,
        revoked_us INTEGER
    );
    CREATE INDEX ix_api_keys_user ON api_keys (user_id, created_us);

    CREATE TABLE audit_logs (
        log_id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        event_id TEXT,
        action TEXT NOT NULL,
        ts_us INTEGER NOT NULL,
        details BLOB NOT NULL,
        ip_address TEXT NOT NULL,
        request_id TEXT NOT NULL
    );
    CREATE INDEX ix_audit_user_ts ON audit_logs (user_id, ts_us, log_id);
    CREATE INDEX ix_audit_user_event ON audit_logs (user_id, event_id, ts_us);
    CREATE INDEX ix_audit_user_action ON audit_logs (user_id, action, ts_us);
    -- Audit records are append-only: the database refuses edits (retention deletes are allowed).
    CREATE TRIGGER audit_logs_no_update BEFORE UPDATE ON audit_logs
    BEGIN SELECT RAISE(ABORT, 'audit_logs is append-only'); END;

    CREATE TABLE idempotency_keys (
        user_id TEXT NOT NULL,
        idem_key TEXT NOT NULL,
        request_hash TEXT NOT NULL,
        response_status INTEGER NOT NULL,
        response_body BLOB NOT NULL,
        created_us INTEGER NOT NULL,
        expires_us INTEGER NOT NULL,
        PRIMARY KEY (user_id, idem_key)
    );
    CREATE INDEX ix_idempotency_expires ON idempotency_keys (expires_us);
    """,
    # 2: delivery (push worker): due times, leases, attempt counters, the attempt history.
    # A pending event (received/queued) is due at COALESCE(next_attempt_us, ts_us); the partial
    # expression index makes claiming the earliest due event a seek, not a scan. Attempts go
    # with their event when retention deletes it.
    """
    ALTER TABLE events ADD COLUMN next_attempt_us INTEGER;
    ALTER TABLE events ADD COLUMN lease_token TEXT;
    ALTER TABLE events ADD COLUMN lease_until_us INTEGER;
    ALTER TABLE events ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE events ADD COLUMN round_attempts INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX ix_events_due ON events (COALESCE(next_attempt_us, ts_us))
        WHERE status IN ('received', 'queued');
    CREATE INDEX ix_events_dead ON events (user_id, ts_us, event_id) WHERE status = 'failed';

    CREATE TABLE delivery_attempts (
        attempt_id TEXT PRIMARY KEY,
        event_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        started_us INTEGER NOT NULL,
        duration_us INTEGER NOT NULL,
        outcome TEXT NOT NULL,
        response_status INTEGER,
        error TEXT,
        response_body BLOB NOT NULL
    );
    CREATE INDEX ix_attempts_event ON delivery_attempts (event_id, started_us);
    CREATE INDEX ix_attempts_user ON delivery_attempts (user_id, started_us);
    CREATE TRIGGER events_delete_attempts AFTER DELETE ON events
    BEGIN DELETE FROM delivery_attempts WHERE event_id = old.event_id; END;
    """,
    # 3 (event types): the schema catalog, every version ever registered, and per-user stamps
    # that grow with each change (other processes poll them to drop stale validators).
    """
    CREATE TABLE event_types (
        user_id TEXT NOT NULL,
        event_type TEXT NOT NULL,
        version INTEGER NOT NULL,
        schema BLOB NOT NULL,
        mode TEXT NOT NULL,
        description TEXT,
        created_us INTEGER NOT NULL,
        updated_us INTEGER NOT NULL,
        PRIMARY KEY (user_id, event_type)
    );
    CREATE TABLE event_type_versions (
        user_id TEXT NOT NULL,
        event_type TEXT NOT NULL,
        version INTEGER NOT NULL,
        schema BLOB NOT NULL,
        mode TEXT NOT NULL,
        created_us INTEGER NOT NULL,
        PRIMARY KEY (user_id, event_type, version)
    );
    CREATE TABLE event_type_stamps (user_id TEXT PRIMARY KEY, stamp INTEGER NOT NULL);
    """,
    # 4 (issue 10): subscriptions and fan-out. One delivery row per (event, destination) for
    # events that matched a subscription, each with its own schedule, attempts and lease.
    """
    CREATE TABLE subscriptions (
        subscription_id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        target_url TEXT NOT NULL,
        event_types TEXT NOT NULL,
        filter BLOB,
        description TEXT NOT NULL,
        metadata BLOB NOT NULL,
        status TEXT NOT NULL,
        disabled_reason TEXT,
        secret TEXT NOT NULL,
        previous_secret TEXT,
        previous_secret_until_us INTEGER,
        created_us INTEGER NOT NULL,
        updated_us INTEGER NOT NULL,
        last_success_us INTEGER,
        failing_since_us INTEGER
    );
    CREATE INDEX ix_subscriptions_user ON subscriptions (user_id, created_us);
    CREATE TABLE deliveries (
        event_id TEXT NOT NULL,
        destination TEXT NOT NULL,
        user_id TEXT NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        round_attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_us INTEGER NOT NULL,
        lease_token TEXT,
        lease_until_us INTEGER,
        delivered_us INTEGER,
        last_attempt_us INTEGER,
        PRIMARY KEY (event_id, destination)
    );
    CREATE INDEX ix_deliveries_due ON deliveries (next_attempt_us) WHERE status = 'pending';
    CREATE INDEX ix_deliveries_destination ON deliveries (destination, status);
    ALTER TABLE delivery_attempts ADD COLUMN destination TEXT NOT NULL DEFAULT 'workflow';
    CREATE TRIGGER events_delete_deliveries AFTER DELETE ON events
    BEGIN DELETE FROM deliveries WHERE event_id = old.event_id; END;
    """,
    # 5: claiming fan-out deliveries seeks each destination's own due range (a skip over the
    # destinations with pending rows, then the earliest few of each), so destinations that are
    # full or paused cost one seek, not a walk past every one of their pending rows.
    """
    CREATE INDEX ix_deliveries_dest_due ON deliveries (destination, next_attempt_us) WHERE status = 'pending';
    """,
]


def _split_sql(script: str) -> list[str]:
    """Split a migration into statements; trigger bodies (BEGIN ... END;) stay whole."""
    statements: list[str] = []
    current: list[str] = []
    in_trigger = False
    for line in script.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("--"):
            continue
        current.append(line)
        upper = stripped.upper()
        if upper.startswith("CREATE TRIGGER"):
            in_trigger = True
        if in_trigger:
            if upper.endswith("END;"):
                statements.append("\n".join(current))
                current, in_trigger = [], False
        elif stripped.endswith(";"):
            statements.append("\n".join(current))
            current = []
    if current:
        statements.append("\n".join(current))
    return statements


class MigrationsPart(SQLiteCore):
    """Schema and migrations."""

    def _migrate_sync(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_us INTEGER)"
            )
            done = {v for (v,) in conn.execute("SELECT version FROM schema_migrations")}
            for version, script in enumerate(MIGRATIONS, start=1):
                if version in done:
                    continue
                for statement in _split_sql(script):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations (version, applied_us) VALUES (?, strftime('%s','now')*1000000)",
                    (version,),
                )
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise StorageError(f"migration failed: {exc}") from exc
        finally:
            conn.close()

    async def migrate(self) -> None:
        await asyncio.to_thread(self._migrate_sync)
