"""Health for people and orchestrators: ``/v1/health``, ``/v1/health/live``, ``/v1/health/ready``.

``/v1/health`` runs a list of checks; each returns a :class:`Check` naming its verdict. The worst
verdict wins: ``unhealthy`` (503) when the database does not answer, ``degraded`` (200, with the
reasons) when the service still takes events but something behind it is wrong (the push circuit
is open, Redis is unreachable, due events have waited longer than
``TRIGGERS_HEALTH_QUEUE_AGE_SECONDS``), ``healthy`` otherwise. Capabilities add checks through
``services.extras["health_checks"]`` (name -> async probe returning a JSON-able value, or a
:class:`Check`). ``live`` answers while the process runs; ``ready`` while it can serve (database
reachable, schema migrated: ``Storage.open`` applies migrations before the app takes requests).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from triggers_api import __version__
from triggers_api.errors import StorageError, utc_iso
from triggers_api.runtime import Services, ServicesDep
from triggers_api.storage.base import now_us

router = APIRouter(prefix="/v1", tags=["System"])

Verdict = Literal["healthy", "degraded", "unhealthy"]
_RANK: dict[str, int] = {"healthy": 0, "degraded": 1, "unhealthy": 2}


@dataclass(slots=True)
class Check:
    """One check's answer: what to show under ``checks[name]``, and what it means for the whole."""

    value: Any
    verdict: Verdict = "healthy"
    reason: str | None = None


HealthCheck = Callable[[Services], Awaitable[Check]]


class Health(BaseModel):
    status: Literal["healthy", "degraded", "unhealthy"]
    timestamp: str = Field(json_schema_extra={"format": "date-time"})
    version: str
    checks: dict[str, Any]
    reasons: list[str] = Field(
        default_factory=list, description="Why the status is not healthy (empty when it is)"
    )


class Probe(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, Any] = Field(default_factory=dict)


async def check_database(services: Services) -> Check:
    try:
        await services.storage.ping()
    except (StorageError, OSError) as exc:
        return Check(f"unavailable: {type(exc).__name__}", "unhealthy", "database unreachable")
    return Check("ok")


async def check_delivery_queue(services: Services) -> Check:
    """Due events waiting longer than the threshold: the push is not keeping up (or is stuck)."""
    settings = services.settings
    if not settings.workflow_url:
        return Check("push disabled")
    try:
        due = await services.storage.next_delivery_due(now_us())
    except (StorageError, OSError) as exc:
        return Check(f"unknown: {type(exc).__name__}")
    age = max(0.0, (now_us() - due) / 1_000_000) if due is not None else 0.0
    value = {"oldest_due_age_seconds": round(age, 3), "threshold_seconds": settings.health_queue_age_seconds}
    if age > settings.health_queue_age_seconds:
        return Check(value, "degraded", f"delivery queue: an event has waited {age:.0f} s")
    return Check(value)


def _verdict_of_extra(name: str, value: Any) -> Check:
    """Extras report plain values; the ones that mean trouble are recognised here."""
    if isinstance(value, Check):
        return value
    if name == "redis" and isinstance(value, dict) and value.get("status") != "ok":
        return Check(value, "degraded", "redis unreachable: rate limits are per process")
    if name == "delivery" and isinstance(value, dict):
        circuit = value.get("circuit")
        if isinstance(circuit, dict) and circuit.get("state") == "open":
            return Check(value, "degraded", "delivery circuit open: the workflow engine is failing")
    return Check(value)


async def check_writes(services: Services) -> Check:
    """A commit that failed for the machine's reasons (a full disk, a lost connection: issue 15)
    and has not succeeded since: the service cannot take events, so it is unhealthy."""
    failure = services.storage.write_failure()
    if failure is None:
        return Check("ok")
    return Check(f"failing: {failure}"[:300], "unhealthy", "writes failing: events cannot be stored")


#: The checks ``/v1/health`` runs, in order (another capability may append its own).
CHECKS: list[tuple[str, HealthCheck]] = [
    ("database", check_database),
    ("writes", check_writes),
    ("delivery_queue", check_delivery_queue),
]


async def run_checks(services: Services) -> tuple[Verdict, dict[str, Any], list[str]]:
    results: list[tuple[str, Check]] = [(name, await check(services)) for name, check in CHECKS]
    for name, probe in services.extras.get("health_checks", {}).items():
        results.append((name, _verdict_of_extra(name, await probe())))
    status: Verdict = "healthy"
    reasons: list[str] = []
    for _, check in results:
        if _RANK[check.verdict] > _RANK[status]:
            status = check.verdict
        if check.reason:
            reasons.append(check.reason)
    return status, {name: check.value for name, check in results}, reasons


@router.get(
    "/health",
    operation_id="healthCheck",
    summary="Overall health: healthy, degraded (200, with reasons) or unhealthy (503)",
    response_model=Health,
    responses={503: {"model": Health, "description": "The database is down"}},
    openapi_extra={"security": []},
)
async def health(services: ServicesDep) -> Response:
    status, checks, reasons = await run_checks(services)
    body = {
        "status": status,
        "timestamp": utc_iso(),
        "version": __version__,
        "checks": checks,
        "reasons": reasons,
    }
    code = 503 if status == "unhealthy" else 200
    return Response(orjson.dumps(body), status_code=code, media_type="application/json")


@router.get(
    "/health/live",
    operation_id="healthLive",
    summary="Liveness: the process is up and its event loop answers (restart it when this fails)",
    response_model=Probe,
    openapi_extra={"security": []},
)
async def live() -> Response:
    return Response(b'{"status":"ok","checks":{}}', media_type="application/json")


@router.get(
    "/health/ready",
    operation_id="healthReady",
    summary="Readiness: the database answers and its schema is migrated (send traffic when 200)",
    response_model=Probe,
    responses={503: {"model": Probe, "description": "Not ready to serve"}},
    openapi_extra={"security": []},
)
async def ready(services: ServicesDep) -> Response:
    database = await check_database(services)
    migrated = bool(services.extras.get("storage_open"))
    ok = database.verdict == "healthy" and migrated
    body = {
        "status": "ok" if ok else "unavailable",
        "checks": {"database": database.value, "migrations": "applied" if migrated else "pending"},
    }
    return Response(orjson.dumps(body), status_code=200 if ok else 503, media_type="application/json")
