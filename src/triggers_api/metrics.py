"""Metrics: Prometheus text at ``GET /metrics``, and a per-user JSON summary for the dashboard.

Each app has its own registry (no process-global state, so several apps can live in one test
process). Counters and histograms are fed where things happen: the ingestion hook (events
stored, commit latency), the HTTP edge (request latency by route) and the delivery worker
(outcomes, attempt duration, stored-to-delivered latency, circuit state). Depths are read from
the database at scrape time, so they are right whichever process did the work. With several
API processes (``--workers N``) each process exports its own counters; sum them in Prometheus.
"""

from __future__ import annotations

import hmac
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

import orjson
from fastapi import APIRouter, FastAPI, Request, Response
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from pydantic import BaseModel, Field

from triggers_api.errors import Unauthorized, utc_iso
from triggers_api.events.service import us_to_iso
from triggers_api.openapi import AUTHED, errors
from triggers_api.runtime import KeysManager, Services, ServicesDep
from triggers_api.storage.base import EventRecord, now_us

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[
    [Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]
]

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
DELIVERY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, 7200.0)
HOUR_US = 3_600_000_000
MINUTE_US = 60_000_000


class IngestLatencies:
    """Recent commit latencies per user, for the dashboard's p95 over the last hour.

    Bounded: each user's most recent ``per_user`` ingest requests, for at most ``max_users``
    users (a few MB at worst). Kept in this process's memory: a restart forgets it, and each API
    process knows its own requests. Good enough for a dashboard figure; Prometheus has the
    fleet-wide histogram (``triggers_ingest_commit_seconds``).
    """

    def __init__(self, per_user: int = 256, max_users: int = 2_000) -> None:
        self.per_user = per_user
        self.max_users = max_users
        self._samples: dict[str, deque[tuple[float, float]]] = {}

    def add(self, user_id: str, seconds: float, at: float) -> None:
        samples = self._samples.get(user_id)
        if samples is None:
            if len(self._samples) >= self.max_users:
                self._samples.pop(next(iter(self._samples)))  # forget the longest-known user
            samples = self._samples[user_id] = deque(maxlen=self.per_user)
        samples.append((at, seconds))

    def p95(self, user_id: str, since: float) -> float | None:
        values = sorted(s for at, s in self._samples.get(user_id, ()) if at >= since)
        if not values:
            return None
        return values[min(len(values) - 1, math.ceil(0.95 * len(values)) - 1)]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.events_ingested = Counter("triggers_events_ingested", "Events stored", registry=r)
        self.ingest_latency = Histogram(
            "triggers_ingest_commit_seconds",
            "From an ingest request's timestamp to its durable commit",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.http_requests = Histogram(
            "triggers_http_request_duration_seconds",
            "HTTP request latency by route",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.deliveries = Counter(
            "triggers_deliveries",
            "Push attempts by outcome (delivered, retry, failed)",
            ["outcome"],
            registry=r,
        )
        self.attempt_duration = Histogram(
            "triggers_delivery_attempt_duration_seconds",
            "Duration of one push attempt",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.delivery_latency = Histogram(
            "triggers_delivery_latency_seconds",
            "From an event's ingestion to its successful push",
            buckets=DELIVERY_BUCKETS,
            registry=r,
        )
        self.queue_depth = Gauge(
            "triggers_delivery_queue_depth", "Events waiting for delivery (received, queued)", registry=r
        )
        self.dead_letter_depth = Gauge(
            "triggers_dead_letter_depth", "Dead-lettered events (failed)", registry=r
        )
        self.circuit_state = Gauge(
            "triggers_circuit_state", "Push circuit breaker: 0 closed, 1 half-open, 2 open", registry=r
        )
        self.circuit_opened = Counter("triggers_circuit_opened", "Times the push circuit opened", registry=r)
        # Fan-out (issue 10): per destination; label values are bounded (delivery/destinations.py).
        self.destination_deliveries = Counter(
            "triggers_destination_deliveries",
            "Fan-out push attempts by destination (workflow, a subscription id, or other) and outcome",
            ["destination", "outcome"],
            registry=r,
        )
        self.destination_circuit_state = Gauge(
            "triggers_destination_circuit_state",
            "Circuit breaker per destination: 0 closed, 1 half-open, 2 open",
            ["destination"],
            registry=r,
        )
        self.rate_limit_fail_open = Counter(
            "triggers_rate_limit_fail_open",
            "Requests served without a rate limit because the counter store (Redis) failed",
            registry=r,
        )
        self._fail_open_seen = 0
        self.user_latency = IngestLatencies()

    def observe_stored(self, records: Sequence[EventRecord]) -> None:
        """The ingestion hook: runs right after a commit, on the hot path, so it stays tiny."""
        if not records:
            return
        now = now_us()
        seconds = max(0, now - records[0].ts_us) / 1_000_000
        self.events_ingested.inc(len(records))
        self.ingest_latency.observe(seconds)
        self.user_latency.add(records[0].user_id, seconds, now / 1_000_000)

    async def refresh(self, services: Services) -> None:
        failures = services.limiter.failures  # counted by the limiter itself, on the hot path
        if failures > self._fail_open_seen:
            self.rate_limit_fail_open.inc(failures - self._fail_open_seen)
            self._fail_open_seen = failures
        depths = await services.storage.delivery_depths(None)
        self.queue_depth.set(depths.pending)
        self.dead_letter_depth.set(depths.dead_letters)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class HttpMetrics:
    """Outermost ASGI middleware: every request's latency, labelled by route template."""

    def __init__(self, app: ASGIApp, metrics: Metrics, fast_paths: frozenset[str]) -> None:
        self.app = app
        self.metrics = metrics
        self.fast_paths = fast_paths

    async def __call__(
        self,
        scope: Scope,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def observe(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observe)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None)
            if path is None:
                path = scope.get("path", "") if scope.get("path") in self.fast_paths else "unmatched"
            self.metrics.http_requests.labels(scope.get("method", ""), path, str(status[0])).observe(
                time.perf_counter() - started
            )


def metrics_of(services: Services) -> Metrics:
    metrics: Metrics = services.extras["metrics"]
    return metrics


router = APIRouter(tags=["System"])


@router.get(
    "/metrics",
    operation_id="prometheusMetrics",
    summary="Prometheus metrics (text exposition format); restrict at the network edge",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Metrics"},
        **errors(401),
    },
    openapi_extra={"security": []},
)
async def prometheus_metrics(request: Request, services: ServicesDep) -> Response:
    token = services.settings.metrics_token
    if token is not None:
        supplied = request.headers.get("authorization", "")
        expected = f"Bearer {token.get_secret_value()}"
        if not hmac.compare_digest(supplied.encode(), expected.encode()):
            raise Unauthorized("GET /metrics requires the metrics bearer token")
    metrics = metrics_of(services)
    await metrics.refresh(services)
    for refresh in services.extras.get("metrics_refreshers", []):
        refresh()
    return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


class MinuteCount(BaseModel):
    minute: str = Field(json_schema_extra={"format": "date-time"})
    count: int


class DeliverySummary(BaseModel):
    attempts: int
    delivered: int
    success_rate: float | None = Field(description="delivered / attempts over the window; null without any")


class MetricsSummary(BaseModel):
    window_seconds: int
    generated_at: str = Field(json_schema_extra={"format": "date-time"})
    events_per_minute: list[MinuteCount] = Field(description="The last 60 minutes, oldest first")
    events_last_hour: int
    delivery: DeliverySummary
    queue_depth: int
    dead_letter_depth: int
    ingest_latency_p95_ms: float | None = Field(
        description="p95 ingest commit latency of your recent requests (last hour, this API process)"
    )
    circuit: dict[str, Any] | None = Field(description="The in-process push worker's circuit breaker, if any")


@router.get(
    "/v1/metrics/summary",
    operation_id="metricsSummary",
    summary="The user's own figures for the dashboard: last hour of events, delivery, depths, p95",
    response_model=MetricsSummary,
    responses=errors(*AUTHED),
)
async def metrics_summary(services: ServicesDep, principal: KeysManager) -> Response:
    user = principal.user_id
    now = now_us()
    until = (now // MINUTE_US + 1) * MINUTE_US  # the end of the current minute
    since = until - HOUR_US
    counts = await services.storage.count_events_by_bucket(user, since, until, MINUTE_US)
    attempts = await services.storage.count_attempts(user, now - HOUR_US)
    depths = await services.storage.delivery_depths(user)
    p95 = metrics_of(services).user_latency.p95(user, (now - HOUR_US) / 1_000_000)
    circuit = services.extras.get("circuit_snapshot")
    body = {
        "window_seconds": 3600,
        "generated_at": utc_iso(),
        "events_per_minute": [
            {"minute": us_to_iso(since + i * MINUTE_US), "count": c} for i, c in enumerate(counts)
        ],
        "events_last_hour": sum(counts),
        "delivery": {
            "attempts": attempts.total,
            "delivered": attempts.delivered,
            "success_rate": round(attempts.delivered / attempts.total, 4) if attempts.total else None,
        },
        "queue_depth": depths.pending,
        "dead_letter_depth": depths.dead_letters,
        "ingest_latency_p95_ms": round(p95 * 1000, 3) if p95 is not None else None,
        "circuit": circuit() if circuit is not None else None,
    }
    return Response(orjson.dumps(body), media_type="application/json")


def install(app: FastAPI, services: Services) -> None:
    """Join the app: the registry, the ingestion hook, the routes and the outermost middleware."""
    metrics = Metrics()
    services.extras["metrics"] = metrics
    services.ingestor.on_stored.append(metrics.observe_stored)
    app.include_router(router)
    fast_paths = frozenset({"/v1/events", "/v1/events/batch"})
    services.extras.setdefault("outer_middleware", []).append(
        (HttpMetrics, {"metrics": metrics, "fast_paths": fast_paths})
    )
