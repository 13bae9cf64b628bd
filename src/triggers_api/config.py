"""Settings, read once from the environment (prefix ``TRIGGERS_``) and passed in everywhere.

Every default lives here and only here; README's configuration table mirrors this class.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRIGGERS_", extra="ignore")

    database_url: str = Field(
        "sqlite:///./data/triggers.db",
        description="sqlite:///path (embedded default) or postgresql://user@host/db",
    )
    redis_url: str | None = Field(None, description="Shared rate-limit counters when set")
    archive_dir: Path = Field(Path("./data/archive"), description="Gzip JSON Lines archive of expired events")

    event_ttl_days: float = Field(30, gt=0, description="Events expire (archived, then deleted) after this")
    audit_retention_days: float = Field(2557, gt=0, description="Audit records are kept 7 years")
    retention_interval: float = Field(3600, gt=0, description="Seconds between retention sweeps")
    retention_batch: int = Field(1000, ge=1, le=100_000, description="Rows archived+deleted per transaction")

    max_body_bytes: int = Field(256 * 1024, ge=1024, description="Largest single-event request body")
    max_batch_body_bytes: int = Field(5 * 1024 * 1024, ge=1024, description="Largest batch request body")
    max_batch_events: int = Field(100, ge=1, le=1000, description="Events per batch request")

    default_rate_limit: int = Field(1000, ge=1, description="Requests per minute for new keys")
    key_cache_ttl: float = Field(1.0, ge=0, le=1.0, description="Seconds a resolved API key may be cached")
    last_used_flush_interval: float = Field(30.0, gt=0, description="Seconds between last_used_at writes")
    idempotency_ttl_hours: float = Field(24, gt=0, description="How long an Idempotency-Key is remembered")

    bootstrap_key: bool = Field(True, description="Create and print an all-scope key on first start")
    log_level: str = Field("INFO", description="structlog level")
    log_json: bool = Field(True, description="JSON logs (false: console renderer)")

    # Group commit: how many queued writes one transaction may take.
    commit_batch_max: int = Field(512, ge=1, le=10_000, description="Largest group commit")

    # PostgreSQL (ignored on SQLite).
    database_schema: str | None = Field(
        None, pattern=r"^[a-z_][a-z0-9_]{0,62}$", description="PostgreSQL schema (default: search_path)"
    )
    database_pool_min: int = Field(2, ge=1, le=1000, description="PostgreSQL connections kept open")
    database_pool_max: int = Field(10, ge=1, le=1000, description="PostgreSQL connections at most")
    commit_writers: int = Field(2, ge=1, le=64, description="PostgreSQL group commits in flight")

    # Dashboard (src/triggers_api/dashboard/): browser sessions and the served single-page app.
    dashboard_enabled: bool = Field(True, description="Serve /dashboard and accept session cookies")
    dashboard_dir: Path | None = Field(
        None, description="Built dashboard to serve (default: the package's dashboard/static)"
    )
    session_secret: SecretStr | None = Field(
        None,
        description="HMAC key signing session cookies; unset: generated once, kept in session_secret_file",
    )
    session_secret_file: Path | None = Field(
        None, description="Where a generated session secret is kept (default: beside archive_dir)"
    )
    session_ttl_seconds: int = Field(3600, ge=60, le=86_400, description="Lifetime of a session token")
    session_max_age_seconds: int = Field(
        7 * 86_400, ge=60, le=90 * 86_400, description="How long a session may be refreshed after login"
    )

    @field_validator("log_level")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite:")

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith(("postgresql://", "postgres://"))

    def session_secret_path(self) -> Path:
        """The generated session secret lives in the data directory (``./data`` by default)."""
        return self.session_secret_file or self.archive_dir.parent / "session_secret"

    def sqlite_path(self) -> Path:
        """``sqlite:///./data/x.db`` -> ``./data/x.db``; ``sqlite:////abs/x.db`` -> ``/abs/x.db``."""
        rest = self.database_url.split(":", 1)[1]
        if rest.startswith("///"):
            rest = rest[3:]
        elif rest.startswith("//"):
            rest = rest[2:]
        return Path(rest)
