"""``create_app(settings)``: builds every part (no I/O), and a lifespan that opens and closes them."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import hashlib
import os
import re
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path
from starlette.types import ASGIApp, Receive, Send
from starlette.types import Scope as AsgiScope

from triggers_api import __version__
from triggers_api.archive import archive_target
from triggers_api.audit.router import router as audit_router
from triggers_api.auth import ALL_SCOPES, KeyResolver, RateLimiter
from triggers_api.config import Settings
from triggers_api.dashboard import install as install_dashboard
from triggers_api.dashboard.tokens import load_secret
from triggers_api.delivery import install as install_delivery
from triggers_api.edge import Edge, FastHandler, TrustedProxies, fast_prefix_handler, request_id_of
from triggers_api.errors import (
    ApiError,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    ValidationFailed,
    api_error_body,
    error_body,
    pydantic_details,
)
from triggers_api.event_types import install as install_event_types
from triggers_api.events.fastpath import make_ingest_handler
from triggers_api.events.router import router as events_router
from triggers_api.events.schemas import BatchInput, EventInput
from triggers_api.events.service import Ingestor, parse_json_body
from triggers_api.health import router as health_router
from triggers_api.inbox.cursors import CursorCodec
from triggers_api.inbox.fastpath import ACK_PREFIX, make_ack_handler
from triggers_api.inbox.router import router as inbox_router
from triggers_api.inbox.stream import install as install_stream
from triggers_api.keys.router import router as keys_router
from triggers_api.keys.service import create_key
from triggers_api.metrics import install as install_metrics
from triggers_api.openapi import ErrorResponse, install_openapi
from triggers_api.retention import sweep
from triggers_api.runtime import Services
from triggers_api.storage import build_storage
from triggers_api.subscriptions.router import install as install_subscriptions
from triggers_api.tracing import TracingMiddleware, build_tracing

log = structlog.get_logger(__name__)

#: Hooks other capabilities (delivery, dashboard, metrics) use to join the app without app.py
#: knowing them: each gets the FastAPI app and the services, before the lifespan starts.
AppExtension = Callable[[FastAPI, Services], None]


class TriggersAPI(FastAPI):
    """FastAPI that hands the two ingestion routes and the acknowledgement to their own short
    chain before its stack.

    On ``POST /v1/events``, ``/v1/events/batch`` and ``DELETE /v1/events/{event_id}`` the framework's layers (error, body-limit
    and telemetry middleware, routing) cost more CPU per request than the work itself; the
    short chain is the outer middleware extensions registered (HTTP metrics), the same
    :class:`~triggers_api.edge.Edge` and the lean handler. Every other request takes the
    ordinary FastAPI path.
    """

    fast_app: ASGIApp | None = None
    fast_keys: frozenset[tuple[str, str]] = frozenset()
    fast_prefixes: dict[tuple[str, str], FastHandler] = {}  # replaced whole, never mutated

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        if (
            self.fast_app is not None
            and scope["type"] == "http"
            and (
                (scope["method"], scope["path"]) in self.fast_keys
                or fast_prefix_handler(self.fast_prefixes, scope["method"], scope["path"]) is not None
            )
        ):
            await self.fast_app(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)

    def use_fast_routes(self, edge: Edge, outer: list[tuple[Any, dict[str, Any]]]) -> None:
        chain: ASGIApp = edge
        for middleware, options in outer:  # same order as add_middleware: the last is outermost
            chain = middleware(chain, **options)
        self.fast_app = chain
        self.fast_keys = frozenset(edge.fast_routes)
        self.fast_prefixes = dict(edge.fast_prefix_routes)


def rate_limit_url(settings: Settings) -> str | None:
    """Where per-key counters are shared: Redis when set, else DynamoDB on that backend (its
    ``<prefix>-counters`` table, aws/rate_limits.py), else this process's memory."""
    if settings.redis_url:
        return settings.redis_url
    if settings.database_url.startswith("dynamodb://"):
        import triggers_api.aws.rate_limits  # noqa: F401 - registers dynamodb:// with ``limits``

        return settings.database_url
    return None


def build_services(settings: Settings) -> Services:
    storage = build_storage(settings)
    limiter = RateLimiter(rate_limit_url(settings))
    services = Services(
        settings=settings,
        storage=storage,
        keys=KeyResolver(storage, ttl=settings.key_cache_ttl),
        limiter=limiter,
        ingestor=Ingestor(
            storage,
            ttl_seconds=int(settings.event_ttl_days * 86_400),
            idempotency_ttl_us=int(settings.idempotency_ttl_hours * 3_600 * 1_000_000),
            max_batch=settings.max_batch_events,
            schema_cache_ttl=settings.schema_cache_ttl,
        ),
        cursors=CursorCodec(lambda: load_secret(settings)),
    )
    if limiter.shared:  # /v1/health reports the shared rate-limit store (Redis or DynamoDB)
        name = "redis" if settings.redis_url else "rate_limits"
        services.extras.setdefault("health_checks", {})[name] = limiter.health
    return services


async def ensure_bootstrap_key(services: Services) -> str | None:
    """On a first start with no keys, create one all-scope key for user ``default`` (shown once)."""
    if not services.settings.bootstrap_key or await services.storage.count_keys() > 0:
        return None
    created = await create_key(
        services.storage,
        user_id="default",
        name="bootstrap",
        scopes=list(ALL_SCOPES),
        rate_limit=services.settings.default_rate_limit,
        expires_us=None,
        request_id="bootstrap",
    )
    return created.api_key


def _redacted(url: str) -> str:
    return re.sub(r"//([^:/@]+):[^@/]*@", r"//\1:***@", url)


def _first_to_announce(services: Services) -> bool:
    """One banner for ``serve --workers N``: the first process to take a lock (per address and
    database, held while it runs) prints it; the others started beside it stay quiet."""
    settings = services.settings
    tag = hashlib.sha256(f"{settings.public_url}|{settings.database_url}".encode()).hexdigest()[:16]
    handle = open(Path(tempfile.gettempdir()) / f"triggers-api-{tag}.banner.lock", "a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return False
    services.extras["banner_lock"] = handle
    return True


def banner(settings: Settings, api_key: str | None) -> str:
    """What ``serve`` prints once the app is ready: where everything is, and a new key if any."""
    base = (settings.public_url or "http://127.0.0.1:8000").rstrip("/")
    bar = "=" * 78
    lines = [
        bar,
        f"  Triggers API {__version__} is ready",
        f"    API         {base}/v1",
    ]
    if settings.dashboard_enabled:
        lines.append(f"    Dashboard   {base}/dashboard")
    lines += [
        f"    API docs    {base}/docs",
        f"    Health      {base}/v1/health",
        f"    Metrics     {base}/metrics",
        f"    Database    {_redacted(settings.database_url)}",
        f"    Push        {settings.workflow_url or 'off (TRIGGERS_WORKFLOW_URL unset)'}",
        f"    Tracing     {settings.otel_exporter_otlp_endpoint or 'off (OTEL_EXPORTER_OTLP_ENDPOINT unset)'}",
    ]
    if api_key is not None:
        lines += [
            "",
            "  First start: created a bootstrap API key for user 'default'",
            f"  (scopes: {', '.join(ALL_SCOPES)}). It is shown ONCE; store it now:",
            "",
            f"      {api_key}",
            "",
            f"  Try:  curl -H 'X-API-Key: {api_key}' \\",
            '          -d \'{"event_type":"user.created","payload":{"id":1}}\' \\',
            f"          {base}/v1/events",
        ]
    lines.append(bar)
    return "\n" + "\n".join(lines) + "\n"


async def _every(seconds: float, job: Callable[[], Awaitable[Any]], name: str) -> None:
    while True:
        await asyncio.sleep(seconds)
        try:
            await job()
        except Exception:
            log.exception("background_job_failed", job=name)


def create_app(settings: Settings | None = None, extensions: list[AppExtension] | None = None) -> FastAPI:
    settings = settings or Settings()
    services = build_services(settings)

    archive = archive_target(settings)  # TRIGGERS_ARCHIVE_URL (s3://...) or the archive directory

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await services.storage.open()  # applies migrations: /v1/health/ready answers 200 from here
        services.extras["storage_open"] = True
        api_key = await ensure_bootstrap_key(services)
        tasks = [
            asyncio.create_task(
                _every(settings.last_used_flush_interval, services.keys.flush_last_used, "last_used")
            ),
            asyncio.create_task(
                _every(
                    settings.retention_interval,
                    lambda: sweep(
                        services.storage,
                        archive,
                        batch=settings.retention_batch,
                        audit_retention_days=settings.audit_retention_days,
                    ),
                    "retention",
                )
            ),
        ]
        for start in services.extras.get("on_startup", []):
            await start()
        log.info("service_ready", pid=os.getpid(), url=settings.public_url)
        if api_key is not None or (settings.public_url is not None and _first_to_announce(services)):
            print(banner(settings, api_key), flush=True, file=sys.stdout)  # noqa: T201 - for a person
        try:
            yield
        finally:
            for stop in reversed(services.extras.get("on_shutdown", [])):
                await stop()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            with contextlib.suppress(Exception):
                await services.keys.flush_last_used()
            services.extras["storage_open"] = False
            announced = services.extras.pop("banner_lock", None)
            if announced is not None:
                announced.close()
            await services.storage.close()

    app = TriggersAPI(
        title="Triggers API",
        version=__version__,
        description=(
            "Durable event ingestion with a pull inbox (filter, cursor pagination, acknowledge) "
            "and push delivery. Authenticate with an `X-API-Key` header."
        ),
        openapi_url="/v1/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.services = services
    app.state.settings = settings

    for router in (events_router, inbox_router, keys_router, audit_router, health_router):
        app.include_router(router)
    install_openapi(app, [EventInput, BatchInput, ErrorResponse])
    _install_error_handlers(app)

    install_dashboard(app, services)  # /v1/auth/* + /dashboard, session cookies (dashboard/)
    install_metrics(app, services)  # /metrics, /v1/metrics/summary, HTTP latency (metrics.py)
    install_stream(app, services)  # /v1/inbox/stream and the inbox long poll (inbox/stream.py)
    install_tracing(app, services)  # OpenTelemetry when OTEL_EXPORTER_OTLP_ENDPOINT is set (tracing.py)
    install_subscriptions(app, services)  # /v1/subscriptions, the SSRF guard (subscriptions/)
    install_delivery(app, services)  # push worker, replay, attempt history (delivery/)
    install_event_types(app, services)  # /v1/event-types: the schema catalog (event_types/)
    for extend in extensions or []:
        extend(app, services)

    fast_routes = {
        ("POST", "/v1/events"): make_ingest_handler(services, batch=False),
        ("POST", "/v1/events/batch"): make_ingest_handler(services, batch=True),
    }
    # The acknowledgement (DELETE /v1/events/{event_id}): the consumer's hot path.
    fast_prefix_routes = {("DELETE", ACK_PREFIX): make_ack_handler(services)}
    proxies = TrustedProxies(settings.trusted_proxies)
    app.add_middleware(
        Edge,
        max_body_bytes=settings.max_body_bytes,
        max_batch_body_bytes=settings.max_batch_body_bytes,
        fast_routes=fast_routes,
        fast_prefix_routes=fast_prefix_routes,
        trusted_proxies=proxies,
        storage_retry_after=settings.storage_retry_after,
    )
    # Middleware that must see every request, the edge's fast routes included (HTTP metrics).
    for middleware, options in services.extras.get("outer_middleware", []):
        app.add_middleware(middleware, **options)
    fast_edge = Edge(
        functools.partial(FastAPI.__call__, app),
        max_body_bytes=settings.max_body_bytes,
        max_batch_body_bytes=settings.max_batch_body_bytes,
        fast_routes=fast_routes,
        fast_prefix_routes=fast_prefix_routes,
        trusted_proxies=proxies,
        storage_retry_after=settings.storage_retry_after,
    )
    app.use_fast_routes(fast_edge, services.extras.get("outer_middleware", []))
    return app


def install_tracing(app: FastAPI, services: Services) -> None:
    """Spans only when configured: otherwise no middleware, and the ingestor's tracer stays None."""
    tracing = build_tracing(services.settings)
    if tracing is None:
        return
    services.extras["tracing"] = tracing
    services.ingestor.tracing = tracing
    # appended after the metrics middleware, so it is the outermost: its span covers everything
    services.extras.setdefault("outer_middleware", []).append((TracingMiddleware, {"tracing": tracing}))

    async def flush() -> None:
        await asyncio.to_thread(tracing.shutdown)

    services.extras.setdefault("on_shutdown", []).insert(0, flush)  # run last: after the worker


def _error_response(request: Request, error: ApiError) -> Response:
    return Response(
        api_error_body(error, request_id_of(request.scope)),
        status_code=error.status_code,
        headers=error.headers or None,
        media_type="application/json",
    )


def malformed_json(body: bytes) -> ValidationFailed:
    """The 400 for a body that does not parse: the same message and details as ``/v1/events``."""
    try:
        parse_json_body(body)
    except ValidationFailed as exc:
        return exc
    return ValidationFailed("Request body is not valid JSON", details={"body": "invalid JSON"})


def method_not_allowed(request: Request) -> MethodNotAllowed:
    """405 with an ``Allow`` listing every method the OpenAPI declares for this path."""
    table: list[tuple[re.Pattern[str], set[str]]] | None = getattr(request.app.state, "allow_table", None)
    if table is None:
        table = []
        for path, item in request.app.openapi().get("paths", {}).items():
            methods = {m.upper() for m in item if m in _HTTP_METHODS}
            if "GET" in methods:
                methods.add("HEAD")
            table.append((compile_path(path)[0], methods))
        request.app.state.allow_table = table
    allowed: set[str] = set()
    matching = [(pattern, methods) for pattern, methods in table if pattern.match(request.url.path)]
    static = [methods for pattern, methods in matching if "?P<" not in pattern.pattern]
    for methods in static or [methods for _, methods in matching]:
        allowed |= methods
    error = MethodNotAllowed(details={"method": request.method, "allowed": sorted(allowed)})
    if allowed:
        error.headers = {"Allow": ", ".join(sorted(allowed))}
    return error


_HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def _install_error_handlers(app: FastAPI) -> None:
    async def on_api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return _error_response(request, exc)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = list(exc.errors())
        if any(err.get("type") == "json_invalid" for err in errors):
            # FastAPI locates a JSON syntax error at ("body", <offset>): answer as ingestion does,
            # details.body with the parser's message, not an index leaking as a field name.
            return _error_response(request, malformed_json(await request.body()))
        details = pydantic_details(errors)
        return _error_response(request, ValidationFailed("Request validation failed", details=details))

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        cause = exc.__cause__
        if isinstance(cause, ApiError):
            return _error_response(request, cause)
        if exc.status_code == 404:
            return _error_response(request, NotFound("No such route", details={"path": request.url.path}))
        if exc.status_code == 405:
            return _error_response(request, method_not_allowed(request))
        if exc.status_code == 413:
            return _error_response(request, PayloadTooLarge())
        if exc.status_code == 400:
            return _error_response(request, ValidationFailed(str(exc.detail)))
        return Response(
            error_body("HTTP_ERROR", str(exc.detail), request_id_of(request.scope)),
            status_code=exc.status_code,
            media_type="application/json",
        )

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
