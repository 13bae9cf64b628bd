"""``/v1/auth/*``: log in with an API key, refresh, look at and end the dashboard session."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from triggers_api.auth import Scope
from triggers_api.errors import UnsupportedMediaType
from triggers_api.openapi import errors
from triggers_api.runtime import ServicesDep
from triggers_api.storage.base import ApiKeyRecord

from .session import IssuedSession, SessionManager
from .tokens import Claims

router = APIRouter(prefix="/v1/auth", tags=["Dashboard session"])


class LoginInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    api_key: str = Field(min_length=1, max_length=256, description="An active key with keys:manage")


class SessionInfo(BaseModel):
    user_id: str
    key_id: str
    key_name: str
    key_prefix: str
    scopes: list[str]
    expires_at: str = Field(description="When the session token expires (refreshed while in use)")
    refresh_expires_at: str = Field(description="After this, the user must log in again")
    csrf_token: str = Field(description="Echo in X-CSRF-Token on cookie-authenticated POST/PUT/DELETE")


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def manager_of(request: Request) -> SessionManager:
    manager: SessionManager = request.app.state.services.extras["sessions"]
    return manager


def _info(manager: SessionManager, claims: Claims, record: ApiKeyRecord) -> bytes:
    return orjson.dumps(
        {
            "user_id": claims.user_id,
            "key_id": record.key_id,
            "key_name": record.name,
            "key_prefix": record.key_prefix,
            "scopes": list(record.scopes),
            "expires_at": _iso(claims.exp),
            "refresh_expires_at": _iso(claims.auth_time + manager.settings.session_max_age_seconds),
            "csrf_token": claims.csrf,
        }
    )


def _session_response(request: Request, manager: SessionManager, issued: IssuedSession) -> Response:
    response = Response(_info(manager, issued.claims, issued.record), media_type="application/json")
    for value in manager.set_cookie_headers(request.scope, issued):
        response.headers.append("set-cookie", value)
    response.headers["cache-control"] = "no-store"
    return response


@router.post(
    "/session",
    operation_id="createSession",
    summary="Exchange an API key with keys:manage for a dashboard session (cookies)",
    response_model=SessionInfo,
    responses=errors(400, 401, 403, 413, 415, 500),
    openapi_extra={"security": []},
)
async def create_session(body: LoginInput, request: Request, services: ServicesDep) -> Response:
    # A JSON content type cannot be sent cross-site without a CORS preflight (which we never
    # grant), so a hostile page cannot log a victim into the attacker's account.
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "application/json":
        raise UnsupportedMediaType("Content-Type must be application/json", details={"content_type": media})
    principal = await services.keys.resolve(body.api_key)
    principal.require(Scope.KEYS_MANAGE)
    manager = manager_of(request)
    record = await manager.live_key(principal.key_id, principal.user_id)
    return _session_response(request, manager, manager.issue(record))


@router.get(
    "/session",
    operation_id="getSession",
    summary="The current dashboard session (401 when there is none)",
    response_model=SessionInfo,
    responses=errors(401, 500),
    openapi_extra={"security": []},
)
async def get_session(request: Request) -> Response:
    manager = manager_of(request)
    claims = manager.current(request.scope)
    record = await manager.live_key(claims.key_id, claims.user_id)
    response = Response(_info(manager, claims, record), media_type="application/json")
    response.headers["cache-control"] = "no-store"
    return response


@router.post(
    "/refresh",
    operation_id="refreshSession",
    summary="A fresh session token from the refresh cookie (until 7 days after login)",
    response_model=SessionInfo,
    responses=errors(401, 403, 500),
    openapi_extra={"security": []},
)
async def refresh_session(request: Request) -> Response:
    manager = manager_of(request)
    return _session_response(request, manager, await manager.refresh(request.scope))


@router.post(
    "/logout",
    status_code=204,
    operation_id="deleteSession",
    summary="End the dashboard session and clear its cookies",
    responses=errors(500),
    openapi_extra={"security": []},
)
async def logout(request: Request) -> Response:
    """Always 204: logging out of a session that already ended is not an error.

    No CSRF check: a forged logout only logs the user out, and refusing it would leave the
    cookies of a half-expired session in place.
    """
    manager = manager_of(request)
    claims = manager.any_claims(request.scope)
    if claims is not None:
        manager.end(claims)
    response = Response(status_code=204)
    for value in manager.clear_cookie_headers(request.scope):
        response.headers.append("set-cookie", value)
    response.headers["cache-control"] = "no-store"
    return response
