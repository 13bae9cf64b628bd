"""Settings, read once from the environment (prefix ``TRIGGERS_``) and passed in everywhere.

Every default lives here and only here; README's configuration table mirrors this class.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRIGGERS_", extra="ignore", populate_by_name=True)

    database_url: str = Field(
        "sqlite:///./data/triggers.db",
        description=(
            "sqlite:///path (embedded default), postgresql://user@host/db, or "
            "dynamodb://<prefix>?region=<region>[&endpoint_url=<url>] (docs/deploy-aws.md)"
        ),
    )
    redis_url: str | None = Field(None, description="Shared rate-limit counters when set")
    archive_dir: Path = Field(Path("./data/archive"), description="Gzip JSON Lines archive of expired events")
    archive_url: str | None = Field(
        None, description="s3://bucket/prefix (or a directory) for the archive; unset: archive_dir"
    )

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
    # Event types (src/triggers_api/event_types/): like the key cache, at most 1 s behind.
    schema_cache_ttl: float = Field(
        1.0, ge=0, le=1.0, description="Seconds between checks for schema changes made by other processes"
    )

    bootstrap_key: bool = Field(True, description="Create and print an all-scope key on first start")
    log_level: str = Field("INFO", description="structlog level")

    # Group commit: how many queued writes one transaction may take.
    commit_batch_max: int = Field(512, ge=1, le=10_000, description="Largest group commit")

    # PostgreSQL (ignored on SQLite).
    database_schema: str | None = Field(
        None, pattern=r"^[a-z_][a-z0-9_]{0,62}$", description="PostgreSQL schema (default: search_path)"
    )
    database_pool_min: int = Field(2, ge=1, le=1000, description="PostgreSQL connections kept open")
    database_pool_max: int = Field(10, ge=1, le=1000, description="PostgreSQL connections at most")
    commit_writers: int = Field(2, ge=1, le=64, description="PostgreSQL group commits in flight")

    # Delivery (src/triggers_api/delivery/): push to the workflow engine; no URL, no push.
    workflow_url: str | None = Field(None, description="Where events are POSTed; unset: delivery is off")
    workflow_token: SecretStr | None = Field(None, description="Sent as 'Authorization: Bearer ...' when set")
    signing_secret: SecretStr | None = Field(
        None, description="whsec_<base64>: sign every push per Standard Webhooks when set"
    )
    retry_schedule: str = Field(
        "300,1800,7200", description="Seconds before each retry, comma-separated, fractions allowed"
    )
    retry_jitter: float = Field(0.1, ge=0, le=0.5, description="Each retry delay is scaled by 1 +/- this")
    delivery_timeout: float = Field(10.0, gt=0, le=300, description="Seconds one push may take, all told")
    delivery_concurrency: int = Field(8, ge=1, le=1000, description="Pushes in flight per worker")
    lease_seconds: float = Field(60.0, gt=0, description="Visibility timeout of a claimed event")
    circuit_failure_threshold: int = Field(5, ge=1, description="Consecutive failures that open the circuit")
    circuit_cooldown: float = Field(30.0, gt=0, description="Seconds the open circuit waits before a probe")
    delivery_in_process: bool = Field(True, description="serve runs the worker when workflow_url is set")
    delivery_poll_interval: float = Field(1.0, gt=0, le=60, description="Longest idle wait between checks")
    delivery_grace: float = Field(10.0, ge=0, description="Seconds in-flight pushes may finish on shutdown")
    metrics_token: SecretStr | None = Field(None, description="When set, GET /metrics requires this bearer")
    stream_heartbeat: float = Field(15.0, gt=0, description="Seconds between SSE heartbeat comments")
    stream_poll_interval: float = Field(
        0.25, gt=0, le=5, description="How often streams look for events stored by other processes"
    )
    inbox_max_wait: float = Field(30.0, ge=0, le=30, description="Longest GET /v1/inbox?wait=N hold")

    # Dashboard (src/triggers_api/dashboard/): browser sessions and the served single-page app.
    dashboard_enabled: bool = Field(True, description="Serve /dashboard and accept session cookies")
    dashboard_dir: Path | None = Field(
        None, description="Built dashboard to serve (default: the package's dashboard/static)"
    )
    session_secret: SecretStr | None = Field(
        None,
        description=(
            "HMAC key signing session cookies and pagination cursors; unset: generated once, kept in "
            "session_secret_file"
        ),
    )
    session_secret_file: Path | None = Field(
        None, description="Where a generated session secret is kept (default: beside archive_dir)"
    )
    session_ttl_seconds: int = Field(3600, ge=60, le=86_400, description="Lifetime of a session token")
    session_max_age_seconds: int = Field(
        7 * 86_400, ge=60, le=90 * 86_400, description="How long a session may be refreshed after login"
    )

    # Subscriptions (src/triggers_api/subscriptions/, issue 10): many destinations per user.
    destination_allow_private: bool = Field(
        False, description="Allow subscription targets on private/loopback/link-local addresses (local dev)"
    )
    destination_allowlist: str = Field(
        "", description="Comma-separated hosts or CIDRs subscription targets may use even if private"
    )
    subscription_disable_after: float = Field(
        5 * 86_400, gt=0, description="Seconds a subscription may fail every attempt before it is disabled"
    )
    destination_concurrency: int = Field(4, ge=1, le=1000, description="Pushes in flight per subscription")
    metrics_destinations_max: int = Field(
        20, ge=0, le=1000, description="Subscriptions named in metric labels; the rest count as 'other'"
    )

    # Operations (issue 13): health thresholds, proxies, tracing, console.
    health_queue_age_seconds: float = Field(
        300.0, gt=0, description="/v1/health is degraded when a due event has waited longer than this"
    )
    trusted_proxies: str = Field(
        "",
        description="CIDRs (comma-separated) whose X-Forwarded-For/-Proto are believed; empty: none",
    )
    log_format: Literal["auto", "json", "console"] = Field(
        "auto", description="auto: console lines on a terminal, JSON lines otherwise"
    )
    public_url: str | None = Field(
        None, description="Where people reach the service (the console banner); serve sets http://host:port"
    )
    otel_exporter_otlp_endpoint: str | None = Field(
        None,
        validation_alias=AliasChoices("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
        description="OpenTelemetry OTLP/HTTP collector (standard OTEL_* variable); unset: tracing off",
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _cidrs(cls, value: str) -> str:
        import ipaddress

        for part in value.split(","):
            if part.strip():
                try:
                    ipaddress.ip_network(part.strip(), strict=False)
                except ValueError:
                    raise ValueError(f"not an IP network: {part.strip()!r}") from None
        return value

    # Faults and limits (issue 15): what a full disk, a database restart or a hostile client meets.
    storage_retry_after: int = Field(
        5, ge=1, le=3600, description="Retry-After seconds sent with 503 STORAGE_UNAVAILABLE"
    )
    database_timeout: float = Field(
        30.0, gt=0, le=600, description="PostgreSQL: seconds to get a connection or run a statement, then 503"
    )
    http_header_timeout: float = Field(
        10.0,
        gt=0,
        le=600,
        description="Seconds from a connection (or a request's first byte) to its last header",
    )
    http_body_timeout: float = Field(
        60.0, gt=0, le=3600, description="Seconds from the last header to the last body byte, then 408"
    )
    http_keepalive_timeout: float = Field(
        5.0, gt=0, le=600, description="Seconds an idle kept-alive connection waits for its next request"
    )
    http_max_connections: int = Field(
        2048,
        ge=1,
        le=1_000_000,
        description="Open connections per process; beyond it the longest idle is closed",
    )
    http_max_header_bytes: int = Field(
        65536, ge=1024, le=16 * 1024 * 1024, description="Request line + headers at most, then 431"
    )
    http_write_buffer_bytes: int = Field(
        262_144,
        ge=4096,
        le=64 * 1024 * 1024,
        description="Unsent response bytes per client before writing waits",
    )
    http_write_timeout: float = Field(
        30.0,
        gt=0,
        le=3600,
        description="Seconds a client (an SSE reader) may leave a full buffer unread, then dropped",
    )

    @field_validator("log_level")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()

    # -- delivery ------------------------------------------------------------------------------------
    @field_validator("workflow_url", mode="before")
    @classmethod
    def _blank_url_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("workflow_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("retry_schedule")
    @classmethod
    def _schedule(cls, value: str) -> str:
        parse_delays(value)
        return value

    @field_validator("signing_secret")
    @classmethod
    def _whsec(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            signing_key(value.get_secret_value())
        return value

    @field_validator("lease_seconds")
    @classmethod
    def _lease_outlives_a_push(cls, value: float, info: ValidationInfo) -> float:
        timeout = info.data.get("delivery_timeout")
        if timeout is not None and value <= timeout:
            raise ValueError("must exceed delivery_timeout, or a slow push would lose its lease")
        return value

    @property
    def retry_delays(self) -> tuple[float, ...]:
        return parse_delays(self.retry_schedule)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite:")

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith(("postgresql://", "postgres://"))

    @property
    def is_dynamodb(self) -> bool:
        return self.database_url.startswith("dynamodb://")

    def _dynamodb_parts(self) -> tuple[str, dict[str, str]]:
        from urllib.parse import parse_qsl, urlsplit

        parts = urlsplit(self.database_url)
        prefix = parts.netloc or parts.path.strip("/")
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        unknown = sorted(set(query) - {"region", "endpoint_url", "due_shards", "stream_settle_s"})
        if not prefix or "/" in prefix or unknown:
            raise ValueError(
                "TRIGGERS_DATABASE_URL must be dynamodb://<prefix>?region=<region>[&endpoint_url=<url>]"
                + (f" (unknown: {', '.join(unknown)})" if unknown else "")
            )
        return prefix, query

    def dynamodb_prefix(self) -> str:
        """``dynamodb://triggers-prod?region=eu-west-1`` -> ``triggers-prod`` (tables ``<prefix>-events``...)."""
        return self._dynamodb_parts()[0]

    def dynamodb_region(self) -> str:
        """The ``region`` parameter; else AWS_REGION / AWS_DEFAULT_REGION (set inside Lambda)."""
        import os

        region = (
            self._dynamodb_parts()[1].get("region")
            or os.environ.get("AWS_REGION")
            or os.environ.get("AWS_DEFAULT_REGION")
        )
        if not region:
            raise ValueError("TRIGGERS_DATABASE_URL=dynamodb://...: add ?region=<region>")
        return region

    def dynamodb_endpoint_url(self) -> str | None:
        """``endpoint_url`` points every AWS client at an emulator (``make aws-local``)."""
        return self._dynamodb_parts()[1].get("endpoint_url") or None

    def dynamodb_due_shards(self) -> int:
        """``due_shards``: DueIndex partitions per kind (default 64; the same in every process).
        The tests use fewer on the emulator, where a claim's one Query per shard runs serially."""
        return int(self._dynamodb_number("due_shards", 64))

    def dynamodb_stream_settle_s(self) -> float:
        """``stream_settle_s``: how long the stream holds back fresh writes (default 2 s)."""
        return self._dynamodb_number("stream_settle_s", 2.0)

    def _dynamodb_number(self, name: str, default: float) -> float:
        value = self._dynamodb_parts()[1].get(name)
        if not value:
            return default
        try:
            return float(value) if "." in value or name.endswith("_s") else int(value)
        except ValueError:
            raise ValueError(
                f"TRIGGERS_DATABASE_URL=dynamodb://...: {name} must be a number, not {value!r}"
            ) from None

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


def parse_delays(text: str) -> tuple[float, ...]:
    """``"300,1800,7200"`` -> (300.0, 1800.0, 7200.0); empty means no retries."""
    delays: list[float] = []
    for part in text.split(","):
        if not part.strip():
            continue
        try:
            delay = float(part)
        except ValueError:
            raise ValueError(f"not a number of seconds: {part.strip()!r}") from None
        if not 0 <= delay <= 30 * 86_400:
            raise ValueError(f"delays must be 0 to 30 days, got {part.strip()}")
        delays.append(delay)
    return tuple(delays)


def signing_key(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret (``whsec_`` + base64; the prefix is optional)."""
    raw = secret.removeprefix("whsec_")
    try:
        key = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("must be whsec_ followed by base64") from None
    if len(key) < 16:
        raise ValueError("must hold at least 16 bytes of key material")
    return key
