"""The running service's parts, built once in the lifespan, and the FastAPI dependencies on them."""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request

from triggers_api.auth import KeyResolver, Principal, RateLimiter, Scope
from triggers_api.config import Settings
from triggers_api.edge import request_state
from triggers_api.errors import RateLimitExceeded
from triggers_api.events.service import Ingestor
from triggers_api.inbox.cursors import CursorCodec
from triggers_api.storage.base import Storage


@dataclass
class Services:
    settings: Settings
    storage: Storage
    keys: KeyResolver
    limiter: RateLimiter
    ingestor: Ingestor
    cursors: CursorCodec
    extras: dict[str, Any] = field(default_factory=dict)


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def authenticate_scope(
    services: Services, scope: MutableMapping[str, Any], api_key: str | None
) -> Principal:
    """Resolve the key, count it against its rate limit, and note what the edge must echo.

    Without an ``X-API-Key``, a ``session_resolver`` registered in ``services.extras`` (the
    dashboard's session cookie) may authenticate the request instead.
    """
    # Behind the Lambda authorizer only (installed by ``aws.lambda_api``, never by ``serve``):
    # the authorizer's context names the caller; the resolver answers None when there is none.
    context_resolver = services.extras.get("authorizer_context_resolver")
    principal: Principal | None = await context_resolver(scope) if context_resolver is not None else None
    if principal is None:
        session_resolver = services.extras.get("session_resolver")
        if api_key is None and session_resolver is not None:
            principal = await session_resolver(scope)
        else:
            principal = await services.keys.resolve(api_key)
    state = request_state(scope)
    state["user_id"] = principal.user_id
    state["principal"] = principal
    headers = await _hit(services, principal, state)
    state["response_headers"] = headers
    return principal


async def _hit(services: Services, principal: Principal, state: dict[str, Any]) -> list[tuple[bytes, bytes]]:
    try:
        return await services.limiter.hit(principal)
    except RateLimitExceeded as exc:
        headers = exc.headers
        if headers:
            state["response_headers"] = [
                (b"ratelimit-policy", headers["RateLimit-Policy"].encode()),
                (b"ratelimit", headers["RateLimit"].encode()),
            ]
            exc.headers = {"Retry-After": headers["Retry-After"]}
        raise


def require(scope_name: str) -> Any:
    async def dependency(request: Request) -> Principal:
        services = get_services(request)
        principal = await authenticate_scope(services, request.scope, request.headers.get("x-api-key"))
        principal.require(scope_name)
        return principal

    dependency.__name__ = f"require_{scope_name.replace(':', '_')}"
    return Depends(dependency)


EventsWriter = Annotated[Principal, require(Scope.EVENTS_WRITE)]
EventsReader = Annotated[Principal, require(Scope.EVENTS_READ)]
KeysManager = Annotated[Principal, require(Scope.KEYS_MANAGE)]
SubscriptionsManager = Annotated[Principal, require(Scope.SUBSCRIPTIONS_MANAGE)]


def client_ip(scope: MutableMapping[str, Any]) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None
