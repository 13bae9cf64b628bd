"""``GET /v1/health``: no auth; 503 when the database does not answer."""

from __future__ import annotations

from typing import Any, Literal

import orjson
from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from triggers_api import __version__
from triggers_api.errors import StorageError, utc_iso
from triggers_api.runtime import ServicesDep

router = APIRouter(prefix="/v1", tags=["System"])


class Health(BaseModel):
    status: Literal["healthy", "unhealthy"]
    timestamp: str = Field(json_schema_extra={"format": "date-time"})
    version: str
    checks: dict[str, Any]


@router.get(
    "/health",
    operation_id="healthCheck",
    response_model=Health,
    responses={503: {"model": Health, "description": "A dependency is down"}},
    openapi_extra={"security": []},
)
async def health(services: ServicesDep) -> Response:
    checks: dict[str, Any] = {}
    healthy = True
    try:
        await services.storage.ping()
        checks["database"] = "ok"
    except (StorageError, OSError) as exc:
        healthy = False
        checks["database"] = f"unavailable: {type(exc).__name__}"
    write_failure = services.storage.write_failure()  # a full disk, a lost connection (issue 15)
    if write_failure is not None:
        healthy = False
        checks["writes"] = f"failing: {write_failure}"[:300]
    for name, probe in services.extras.get("health_checks", {}).items():
        checks[name] = await probe()
    body = {
        "status": "healthy" if healthy else "unhealthy",
        "timestamp": utc_iso(),
        "version": __version__,
        "checks": checks,
    }
    return Response(orjson.dumps(body), status_code=200 if healthy else 503, media_type="application/json")
