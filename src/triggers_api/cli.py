"""``triggers-api``: serve, worker, keys, migrate, backup, shards. Settings come from ``TRIGGERS_*`` environment variables."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import orjson
import typer

from triggers_api.auth import DEFAULT_SCOPES
from triggers_api.config import Settings
from triggers_api.errors import ApiError, StorageError
from triggers_api.keys.service import create_key, key_json, revoke_key
from triggers_api.logs import configure_logging
from triggers_api.storage import build_storage
from triggers_api.storage.base import Storage, now_us

T = TypeVar("T")

cli = typer.Typer(
    help="Triggers API: durable event ingestion with an inbox and push delivery.", no_args_is_help=True
)
keys_cli = typer.Typer(help="Manage API keys.", no_args_is_help=True)
cli.add_typer(keys_cli, name="keys")


def tracing_on(settings: Settings) -> bool:
    """Log lines carry trace ids only when there are traces (``OTEL_EXPORTER_OTLP_ENDPOINT``)."""
    return bool(settings.otel_exporter_otlp_endpoint)


def app_factory() -> object:
    """Entry point for uvicorn (also with ``--workers``): settings from the environment."""
    from triggers_api.app import create_app

    settings = Settings()
    configure_logging(settings.log_level, settings.log_format, tracing=tracing_on(settings))
    return create_app(settings)


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind")] = 8000,
    workers: Annotated[int, typer.Option(help="API processes")] = 1,
    no_worker: Annotated[
        bool, typer.Option("--no-worker", help="Do not push events here (run `triggers-api worker`)")
    ] = False,
) -> None:
    """Run the HTTP API (and the push worker, when TRIGGERS_WORKFLOW_URL is set)."""
    import uvicorn

    if no_worker:  # read by every API process's Settings (uvicorn may start several)
        os.environ["TRIGGERS_DELIVERY_IN_PROCESS"] = "false"
    if not os.environ.get("TRIGGERS_PUBLIC_URL"):  # the banner's links (behind a proxy: set it)
        shown = f"[{host}]" if ":" in host else ("127.0.0.1" if host in ("0.0.0.0", "") else host)
        os.environ["TRIGGERS_PUBLIC_URL"] = f"http://{shown}:{port}"
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format, tracing=tracing_on(settings))
    uvicorn.run(
        "triggers_api.cli:app_factory",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        log_level="warning",
        loop="auto",
        # httptools with the TRIGGERS_HTTP_* deadlines and caps (httpserver.py)
        http="triggers_api.httpserver:GuardedHttpToolsProtocol",
        timeout_keep_alive=settings.http_keepalive_timeout,  # type: ignore[arg-type]
        timeout_graceful_shutdown=10,
        # forwarded headers are the edge's business (TRIGGERS_TRUSTED_PROXIES), not uvicorn's
        proxy_headers=False,
    )


@cli.command()
def worker(
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve this worker's Prometheus metrics on this port")
    ] = None,
    metrics_host: Annotated[str, typer.Option(help="Interface for --metrics-port")] = "127.0.0.1",
) -> None:
    """Run the push worker alone (stops on SIGTERM: in-flight pushes finish, the rest is released)."""
    from triggers_api.delivery.runner import run_worker_process

    settings = Settings()
    configure_logging(settings.log_level, settings.log_format, tracing=tracing_on(settings))
    if not settings.workflow_url:  # subscriptions (issue 10) are somewhere to push to
        typer.echo("TRIGGERS_WORKFLOW_URL is not set: pushing to subscriptions only", err=True)
    try:
        run_worker_process(settings, metrics_port, metrics_host)
    except StorageError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


def _with_storage(job: Callable[[Storage], Awaitable[T]]) -> T:
    async def run() -> T:
        storage = build_storage(Settings())
        await storage.open()
        try:
            return await job(storage)
        finally:
            await storage.close()

    try:
        return asyncio.run(run())
    except (ApiError, StorageError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


@cli.command()
def migrate() -> None:
    """Create or upgrade the database schema (idempotent); on AWS (dynamodb:// without
    endpoint_url) only check it: Terraform owns the tables and queues there."""

    async def job(storage: Storage) -> None:
        await storage.migrate()

    _with_storage(job)
    settings = Settings()
    if settings.is_dynamodb and settings.dynamodb_endpoint_url() is None:
        typer.echo("the DynamoDB tables and queues match the schema (on AWS Terraform creates them)")
    else:
        typer.echo("migrations applied")


@cli.command()
def backup(
    path: Annotated[Path, typer.Argument(help="File (or directory) to write the copy to")],
) -> None:
    """Copy the SQLite database consistently while the service runs (restore: docs/deploy.md)."""
    from triggers_api.backup import BackupError, backup_sqlite

    settings = Settings()
    if not settings.is_sqlite:
        typer.echo(
            "error: backup copies the embedded SQLite database; for PostgreSQL use pg_dump or "
            "base backups with WAL archiving (docs/deploy.md)",
            err=True,
        )
        raise typer.Exit(2)
    try:
        result = backup_sqlite(settings.sqlite_path(), path)
    except BackupError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"backed up {result.events} events ({result.bytes} bytes) to {result.path}")


@cli.command()
def shards(
    user_id: Annotated[str, typer.Option("--user-id", help="The user whose events are spread")],
    events_per_second: Annotated[
        float | None,
        typer.Option("--events-per-second", min=0.001, help="Raise to what this peak rate needs"),
    ] = None,
    event_bytes: Annotated[
        int, typer.Option("--event-bytes", min=1, max=400_000, help="Typical stored event size")
    ] = 1024,
    to: Annotated[int | None, typer.Option("--to", min=1, help="Raise to exactly this many shards")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on one line")] = False,
) -> None:
    """Show or raise a user's event shard count (AWS backend only; never lowers it).

    One partition takes 1,000 writes/s; a user sending more needs their events spread over
    shards (docs/deploy-aws.md, "Hot partitions"). Readers use a raise at once, writers after
    every process's cached count has expired (60 s), so no listing misses an event."""
    from triggers_api.storage.dynamodb import DynamoDBStorage
    from triggers_api.storage.dynamodb.schema import MAX_EVENT_SHARDS, shards_needed

    if not Settings().is_dynamodb:
        typer.echo(
            "error: shards spread a user's writes over DynamoDB partitions (TRIGGERS_DATABASE_URL="
            "dynamodb://...); SQLite and PostgreSQL have nothing to shard",
            err=True,
        )
        raise typer.Exit(2)
    if events_per_second is not None and to is not None:
        typer.echo("error: give --events-per-second or --to, not both", err=True)
        raise typer.Exit(2)
    wanted = to
    if events_per_second is not None:
        try:
            wanted = shards_needed(events_per_second, event_bytes)
        except ValueError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
    if wanted is not None and wanted > MAX_EVENT_SHARDS:
        typer.echo(f"error: at most {MAX_EVENT_SHARDS} shards", err=True)
        raise typer.Exit(2)

    async def job(storage: Storage) -> tuple[int, int, int]:
        assert isinstance(storage, DynamoDBStorage)
        count = (
            await storage.set_shard_count(user_id, wanted)
            if wanted is not None
            else await storage.shard_count(user_id)
        )
        return count.current, count.previous, count.effective_us

    current, previous, effective_us = _with_storage(job)
    switching = effective_us > now_us()
    effective = datetime.fromtimestamp(effective_us / 1e6, UTC).isoformat().replace("+00:00", "Z")
    if as_json:
        body = {
            "user_id": user_id,
            "shards": max(current, previous),
            "writing": previous if switching else current,
            "writers_switch_at": effective if switching else None,
        }
        sys.stdout.write(orjson.dumps(body).decode() + "\n")
        return
    if switching:
        typer.echo(f"{user_id}: {current} shards (read now; written from {effective}, {previous} until then)")
    else:
        typer.echo(f"{user_id}: {current} shard{'s' if current != 1 else ''}")


def _parse_expiry(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(
            "expected ISO 8601, e.g. 2027-01-01T00:00:00Z", param_hint="--expires-at"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1_000_000)


@keys_cli.command("create")
def keys_create(
    user_id: Annotated[str, typer.Option("--user-id", help="Owner of the key")],
    name: Annotated[str, typer.Option("--name", help="Human-readable name")],
    scope: Annotated[list[str] | None, typer.Option("--scope", help="Repeat for several")] = None,
    rate_limit: Annotated[int | None, typer.Option("--rate-limit", min=1, help="Requests/minute")] = None,
    expires_at: Annotated[str | None, typer.Option("--expires-at", help="ISO 8601 expiry")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on one line")] = False,
) -> None:
    """Create a key and print its plaintext (shown only now)."""
    settings = Settings()
    expires_us = _parse_expiry(expires_at)

    async def job(storage: Storage) -> tuple[str, dict[str, Any]]:
        created = await create_key(
            storage,
            user_id=user_id,
            name=name,
            scopes=scope or list(DEFAULT_SCOPES),
            rate_limit=rate_limit or settings.default_rate_limit,
            expires_us=expires_us,
            request_id="cli",
        )
        return created.api_key, key_json(created.record)

    api_key, record = _with_storage(job)
    if as_json:
        out = {
            "key_id": record["key_id"],
            "api_key": api_key,
            "user_id": record["user_id"],
            "scopes": record["scopes"],
            "rate_limit": record["rate_limit"],
            "expires_at": record["expires_at"],
        }
        sys.stdout.write(orjson.dumps(out).decode() + "\n")
    else:
        typer.echo(
            f"key_id:  {record['key_id']}\nuser_id: {record['user_id']}\nscopes:  {' '.join(record['scopes'])}"
        )
        typer.echo(f"api_key: {api_key}\n(store it now: it is not shown again)")


@keys_cli.command("list")
def keys_list(
    user_id: Annotated[str, typer.Option("--user-id", help="Owner of the keys")],
    as_json: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """List a user's keys (never their secrets)."""

    async def job(storage: Storage) -> list[dict[str, Any]]:
        return [key_json(r) for r in await storage.list_keys(user_id)]

    keys = _with_storage(job)
    if as_json:
        sys.stdout.write(orjson.dumps({"keys": keys}).decode() + "\n")
        return
    for k in keys:
        state = "active" if k["is_active"] else "revoked"
        typer.echo(f"{k['key_id']}  {k['key_prefix']}…  {state:7}  {k['name']}  {' '.join(k['scopes'])}")


@keys_cli.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The key's id")]) -> None:
    """Revoke a key: refused from the next request on."""

    async def job(storage: Storage) -> bool:
        return await revoke_key(storage, key_id.strip().lower(), user_id=None, request_id="cli") is not None

    if not _with_storage(job):
        typer.echo(f"error: no key {key_id}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {key_id}")


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
