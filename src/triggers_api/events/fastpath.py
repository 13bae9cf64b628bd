"""The lean ASGI handler for ``POST /v1/events`` and ``POST /v1/events/batch``.

It keeps the documented contract (the FastAPI routes in ``router.py`` declare it in OpenAPI and
share :class:`~triggers_api.events.service.Ingestor`) but skips routing, dependency injection and
response-model serialisation, which are most of a request's CPU at thousands of requests/s.
"""

from __future__ import annotations

from triggers_api.edge import FastHandler, Receive, Scope, Send, read_body, request_id_of, send_json
from triggers_api.errors import UnsupportedMediaType
from triggers_api.events.service import IngestContext, check_idempotency_key
from triggers_api.runtime import Services, authenticate_scope, client_ip
from triggers_api.tracing import valid_traceparent

#: Content types a JSON body may arrive with. ``curl -d`` sends form-urlencoded by default, and
#: refusing the README's own example would help nobody; the body must still be a JSON object.
JSON_LIKE = (b"application/json", b"application/x-www-form-urlencoded", b"text/plain")


def content_type_ok(value: bytes | None) -> bool:
    if value is None:
        return True
    media = value.split(b";", 1)[0].strip().lower()
    return media in JSON_LIKE or (media.startswith(b"application/") and media.endswith(b"+json"))


def make_ingest_handler(services: Services, batch: bool) -> FastHandler:
    async def handle(scope: Scope, receive: Receive, send: Send) -> None:
        api_key = content_type = idem = agent = traceparent = None
        for name, value in scope["headers"]:
            if name == b"x-api-key":
                api_key = value.decode("latin-1")
            elif name == b"content-type":
                content_type = value
            elif name == b"idempotency-key":
                idem = value.decode("latin-1")
            elif name == b"user-agent":
                agent = value.decode("latin-1")
            elif name == b"traceparent":
                traceparent = valid_traceparent(value.decode("latin-1"))
        principal = await authenticate_scope(services, scope, api_key)
        if not content_type_ok(content_type):
            raise UnsupportedMediaType(
                "Content-Type must be application/json",
                details={"content_type": (content_type or b"").decode("latin-1")[:100]},
            )
        ctx = IngestContext(
            principal=principal,
            request_id=request_id_of(scope),
            source_ip=client_ip(scope),
            user_agent=agent,
            idempotency_key=check_idempotency_key(idem),
            path=scope["path"],
            traceparent=traceparent,
        )
        body = await read_body(receive)
        result = await services.ingestor.ingest(ctx, body, batch)
        extra = [(b"idempotent-replayed", b"true")] if result.replayed else None
        await send_json(send, result.status, result.body, extra)

    return handle
