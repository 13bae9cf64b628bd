"""The lean ASGI handler for ``DELETE /v1/events/{event_id}`` (acknowledge one event).

Acknowledging is the consumer's hot path, as ingestion is the producer's: the architecture's
pull loop reads a page and DELETEs each processed event. Through FastAPI's routing, dependency
injection and middleware stack an acknowledgement cost about three times the CPU of an ingest.
This handler keeps the documented contract (the FastAPI route in ``router.py`` declares it in
OpenAPI and shares :func:`~triggers_api.inbox.service.acknowledge`) with the checks in the same
order: authentication (401), rate limit (429), scope (403), the id (400, 405), then 404 / 410 / 204.
"""

from __future__ import annotations

from triggers_api.auth import Scope
from triggers_api.edge import FastHandler, Receive, Send, request_id_of
from triggers_api.edge import Scope as AsgiScope
from triggers_api.errors import EventGone, NotFound
from triggers_api.events.service import parse_event_id
from triggers_api.inbox.service import acknowledge
from triggers_api.runtime import Services, authenticate_scope, client_ip
from triggers_api.storage.base import AckResult

#: ``DELETE`` on this prefix followed by one path segment is an acknowledgement.
ACK_PREFIX = "/v1/events/"


class _Route:
    """What the HTTP metrics read from ``scope["route"]`` to label a request by its template."""

    __slots__ = ("path",)

    def __init__(self, path: str) -> None:
        self.path = path


_ACK_ROUTE = _Route("/v1/events/{event_id}")
_NO_CONTENT_START = {"type": "http.response.start", "status": 204, "headers": []}
_EMPTY_BODY = {"type": "http.response.body", "body": b""}


def make_ack_handler(services: Services) -> FastHandler:
    async def handle(scope: AsgiScope, receive: Receive, send: Send) -> None:
        scope["route"] = _ACK_ROUTE
        api_key = None
        for name, value in scope["headers"]:
            if name == b"x-api-key":
                api_key = value.decode("latin-1")
                break
        principal = await authenticate_scope(services, scope, api_key)
        principal.require(Scope.EVENTS_READ)
        event_id = scope["path"][len(ACK_PREFIX) :]
        canonical = parse_event_id(event_id)
        (result,) = await acknowledge(
            services.storage,
            principal.user_id,
            [canonical],
            request_id=request_id_of(scope),
            ip_address=client_ip(scope),
            via="delete",
        )
        if result is AckResult.NOT_FOUND:
            raise NotFound("Event not found", details={"event_id": event_id})
        if result is AckResult.ALREADY_ACKNOWLEDGED:
            raise EventGone("The event was already acknowledged", details={"event_id": canonical})
        await send(dict(_NO_CONTENT_START, headers=[]))
        await send(dict(_EMPTY_BODY))

    return handle
