"""PostgreSQL schema: numbered migration scripts recorded in ``schema_migrations``, applied under
an advisory lock, so any number of processes may start (or run ``triggers-api migrate``) at once."""

from __future__ import annotations

import contextlib

from triggers_api.storage.postgres.core import (
    Conn,
    PostgresCore,
    _translated,
    log,
)

MIGRATIONS: list[str] = [
    # 1: events, keys, audit log, idempotency records
    """
    CREATE TABLE events (
        event_id text COLLATE "C" PRIMARY KEY,
        user_id text COLLATE "C" NOT NULL,
        event_type text COLLATE "C" NOT NULL,
        payload bytea,
        status text COLLATE "C" NOT NULL,
        ts_us bigint NOT NULL,
        expires_at bigint NOT NULL,
        metadata bytea NOT NULL,
        retry_count integer NOT NULL DEFAULT 0,
        last_retry_us bigint,
        delivered_us bigint,
        acknowledged_us bigint
    );
    -- every listing: (user, time); the inbox (still undelivered): partial; one status; one type
    CREATE INDEX ix_events_user_ts ON events (user_id, ts_us, event_id);
    CREATE INDEX ix_events_inbox ON events (user_id, ts_us, event_id)
        WHERE status IN ('received', 'queued', 'failed');
    CREATE INDEX ix_events_user_status_ts ON events (user_id, status, ts_us, event_id);
    CREATE INDEX ix_events_user_type_ts ON events (user_id, event_type, ts_us, event_id);
    CREATE INDEX ix_events_expires ON events (expires_at);

    CREATE TABLE api_keys (
        key_id text COLLATE "C" PRIMARY KEY,
        user_id text COLLATE "C" NOT NULL,
        key_hash text COLLATE "C" NOT NULL UNIQUE,
        key_prefix text NOT NULL,
        name bytea NOT NULL,  -- UTF-8; bytea because a name may hold U+0000, which text refuses
        created_us bigint NOT NULL,
        last_used_us bigint,
        expires_us bigint,
        rate_limit integer NOT NULL,
        is_active boolean NOT NULL,
        scopes text[] NOT NULL,
        revoked_us bigint
    );
    CREATE INDEX ix_api_keys_user ON api_keys (user_id, created_us, key_id);

    CREATE TABLE audit_logs (
        log_id text COLLATE "C" PRIMARY KEY,
        user_id text COLLATE "C" NOT NULL,
        event_id text COLLATE "C",
        action text COLLATE "C" NOT NULL,
        ts_us bigint NOT NULL,
        details bytea NOT NULL,
        ip_address text NOT NULL,
        request_id text NOT NULL
    );
    CREATE INDEX ix_audit_user_ts ON audit_logs (user_id, ts_us, log_id);
    CREATE INDEX ix_audit_user_event ON audit_logs (user_id, event_id, ts_us, log_id);
    CREATE INDEX ix_audit_user_action ON audit_logs (user_id, action, ts_us, log_id);
    CREATE INDEX ix_audit_ts ON audit_logs (ts_us);
    -- Audit records are append-only: the database refuses edits (retention deletes are allowed).
    CREATE FUNCTION audit_logs_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION 'audit_logs is append-only'; END $$;
    CREATE TRIGGER audit_logs_no_update BEFORE UPDATE ON audit_logs
        FOR EACH ROW EXECUTE FUNCTION audit_logs_append_only();

    CREATE TABLE idempotency_keys (
        user_id text COLLATE "C" NOT NULL,
        idem_key text COLLATE "C" NOT NULL,
        request_hash text NOT NULL,
        response_status integer NOT NULL,
        response_body bytea NOT NULL,
        created_us bigint NOT NULL,
        expires_us bigint NOT NULL,
        PRIMARY KEY (user_id, idem_key)
    );
    CREATE INDEX ix_idempotency_expires ON idempotency_keys (expires_us);
    """,
    # 2: delivery (push worker): due times, leases, attempt counters, the attempt history, and the
    # stream position. A pending event (received/queued) is due at COALESCE(next_attempt_us,
    # ts_us); the partial expression index makes claiming the earliest due event a seek. Attempts
    # go with their event (ON DELETE CASCADE). Rows from before this migration get negative
    # positions (older than anything a stream can ask for); new ones get xid-based positions.
    """
    ALTER TABLE events
        ADD COLUMN next_attempt_us bigint,
        ADD COLUMN lease_token text COLLATE "C",
        ADD COLUMN lease_until_us bigint,
        ADD COLUMN attempts integer NOT NULL DEFAULT 0,
        ADD COLUMN round_attempts integer NOT NULL DEFAULT 0,
        ADD COLUMN position bigint;
    UPDATE events SET position = -n.rn
        FROM (SELECT event_id, row_number() OVER (ORDER BY ts_us DESC, event_id DESC) AS rn FROM events) n
        WHERE events.event_id = n.event_id;
    ALTER TABLE events ALTER COLUMN position SET NOT NULL;
    CREATE UNIQUE INDEX ix_events_position ON events (position);
    CREATE INDEX ix_events_user_position ON events (user_id, position);
    CREATE INDEX ix_events_due ON events ((COALESCE(next_attempt_us, ts_us)))
        WHERE status IN ('received', 'queued');
    CREATE INDEX ix_events_dead ON events (user_id, ts_us, event_id) WHERE status = 'failed';

    CREATE TABLE delivery_attempts (
        attempt_id text COLLATE "C" PRIMARY KEY,
        event_id text COLLATE "C" NOT NULL REFERENCES events (event_id) ON DELETE CASCADE,
        user_id text COLLATE "C" NOT NULL,
        started_us bigint NOT NULL,
        duration_us bigint NOT NULL,
        outcome text COLLATE "C" NOT NULL,
        response_status integer,
        error text,
        response_body bytea NOT NULL
    );
    CREATE INDEX ix_attempts_event ON delivery_attempts (event_id, started_us, attempt_id);
    CREATE INDEX ix_attempts_user ON delivery_attempts (user_id, started_us);
    """,
    # 3 (event types): the schema catalog, every version ever registered, and per-user stamps
    # that grow with each change (other processes poll them to drop stale validators).
    """
    CREATE TABLE event_types (
        user_id text COLLATE "C" NOT NULL,
        event_type text COLLATE "C" NOT NULL,
        version integer NOT NULL,
        schema bytea NOT NULL,
        mode text NOT NULL,
        description bytea,  -- UTF-8; bytea because it may hold U+0000, which text refuses
        created_us bigint NOT NULL,
        updated_us bigint NOT NULL,
        PRIMARY KEY (user_id, event_type)
    );
    CREATE TABLE event_type_versions (
        user_id text COLLATE "C" NOT NULL,
        event_type text COLLATE "C" NOT NULL,
        version integer NOT NULL,
        schema bytea NOT NULL,
        mode text NOT NULL,
        created_us bigint NOT NULL,
        PRIMARY KEY (user_id, event_type, version)
    );
    CREATE TABLE event_type_stamps (user_id text COLLATE "C" PRIMARY KEY, stamp bigint NOT NULL);
    """,
    # 4 (issue 10): subscriptions and fan-out: one delivery row per (event, destination) for
    # events that matched a subscription, each with its own schedule, attempts and lease.
    """
    CREATE TABLE subscriptions (
        subscription_id text COLLATE "C" PRIMARY KEY,
        user_id text COLLATE "C" NOT NULL,
        target_url text NOT NULL,
        event_types text NOT NULL,
        filter bytea,
        description text NOT NULL,
        metadata bytea NOT NULL,
        status text COLLATE "C" NOT NULL,
        disabled_reason text,
        secret text NOT NULL,
        previous_secret text,
        previous_secret_until_us bigint,
        created_us bigint NOT NULL,
        updated_us bigint NOT NULL,
        last_success_us bigint,
        failing_since_us bigint
    );
    CREATE INDEX ix_subscriptions_user ON subscriptions (user_id, created_us);
    CREATE TABLE deliveries (
        event_id text COLLATE "C" NOT NULL REFERENCES events (event_id) ON DELETE CASCADE,
        destination text COLLATE "C" NOT NULL,
        user_id text COLLATE "C" NOT NULL,
        status text COLLATE "C" NOT NULL,
        attempts integer NOT NULL DEFAULT 0,
        round_attempts integer NOT NULL DEFAULT 0,
        next_attempt_us bigint NOT NULL,
        lease_token text COLLATE "C",
        lease_until_us bigint,
        delivered_us bigint,
        last_attempt_us bigint,
        PRIMARY KEY (event_id, destination)
    );
    CREATE INDEX ix_deliveries_due ON deliveries (next_attempt_us) WHERE status = 'pending';
    CREATE INDEX ix_deliveries_destination ON deliveries (destination, status);
    ALTER TABLE delivery_attempts ADD COLUMN destination text COLLATE "C" NOT NULL DEFAULT 'workflow';
    """,
    # 5: claiming fan-out deliveries seeks each destination's own due range (a skip over the
    # destinations with pending rows, then the earliest few of each), so destinations that are
    # full or paused cost one seek, not a walk past every one of their pending rows.
    """
    CREATE INDEX ix_deliveries_dest_due ON deliveries (destination, next_attempt_us) WHERE status = 'pending';
    """,
]


class MigrationsPart(PostgresCore):
    """Schema and migrations."""

    async def _migrate_on(self, conn: Conn) -> None:
        with _translated("migration failed"):
            # Up to date (the usual start): read only, so a runtime role needs no DDL rights.
            if await conn.fetchval("SELECT to_regclass('schema_migrations')") is not None:
                done = {r[0] for r in await conn.fetch("SELECT version FROM schema_migrations")}
                if done >= set(range(1, len(MIGRATIONS) + 1)):
                    return
            async with conn.transaction():
                # Concurrent starters queue here; the first applies, the others find it done.
                await conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtext($1))", f"triggers_api.migrate:{self.schema}"
                )
                if self.schema is not None:
                    await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
                await conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations "
                    "(version integer PRIMARY KEY, applied_us bigint NOT NULL)"
                )
                done = {r[0] for r in await conn.fetch("SELECT version FROM schema_migrations")}
                for version, script in enumerate(MIGRATIONS, start=1):
                    if version in done:
                        continue
                    await conn.execute(script)
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, applied_us) "
                        "VALUES ($1, (extract(epoch FROM clock_timestamp()) * 1000000)::bigint)",
                        version,
                    )
                    log.info("migration_applied", backend="postgresql", version=version, schema=self.schema)

    async def migrate(self) -> None:
        if self._pool is not None:
            with _translated("migration failed"):
                async with self._pool.acquire() as conn:
                    await self._migrate_on(conn)
            return
        alone = await self._connect()
        try:
            await self._migrate_on(alone)
        finally:
            with contextlib.suppress(Exception):
                await alone.close()
