"""OpenTelemetry tracing: on when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set, absent otherwise.

One trace runs from a producer's ``POST /v1/events`` to the workflow engine:

- :class:`TracingMiddleware` (outermost ASGI middleware, so the lean ingestion path is covered)
  opens a SERVER span per request, continuing a W3C ``traceparent`` the client sent;
- the ingestor opens a ``storage.commit`` child span around the durable write and stores the
  server span's ``traceparent`` in the event's ``metadata``;
- the push worker opens a CLIENT span ``delivery.push`` per attempt whose parent is that stored
  context, and sends its own ``traceparent`` with the push.

Spans go to the SDK's OTLP/HTTP exporter through a batch processor (a background thread), so a
request never waits for the collector. When tracing is off nothing here is imported on the hot
path: the middleware is not installed and the ingestor's and worker's ``tracer`` are ``None``
(one ``is None`` test each). Without tracing, a ``traceparent`` the producer sent is still kept
with the event and forwarded with the push unchanged, so the engine can join the producer's trace.

Each app owns its :class:`TracerProvider` (no global provider), like metrics own their registry.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, Tracer

    from triggers_api.config import Settings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: W3C Trace Context ``traceparent`` (version 00 and later-version headers read as 00).
TRACEPARENT = re.compile(r"^(?!ff)[0-9a-f]{2}-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$")


def valid_traceparent(value: str | None) -> str | None:
    """The header when it is a well-formed W3C traceparent, else None (ignored, per the spec)."""
    if value is None or len(value) < 55 or not TRACEPARENT.match(value[:55]):
        return None
    return value[:55]


def traceparent_of_metadata(metadata: bytes) -> str | None:
    """The ``traceparent`` kept in an event's metadata JSON (a byte search first: most have none)."""
    if b'"traceparent"' not in metadata:
        return None
    import orjson

    value = orjson.loads(metadata).get("traceparent")
    return value if isinstance(value, str) else None


@dataclass(slots=True)
class Tracing:
    """One app's tracer provider and tracer."""

    provider: TracerProvider
    tracer: Tracer

    def current_traceparent(self) -> str | None:
        """The ``traceparent`` of the current span (what the event keeps and children continue)."""
        from opentelemetry import trace

        context = trace.get_current_span().get_span_context()
        if not context.is_valid:
            return None
        return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"

    @contextmanager
    def span_from(self, name: str, traceparent: str | None, **attributes: Any) -> Iterator[Span]:
        """A CLIENT span whose parent is the stored ``traceparent`` (a new trace without one)."""
        from opentelemetry.trace import SpanKind

        parent = _extract(traceparent)
        with self.tracer.start_as_current_span(
            name, context=parent, kind=SpanKind.CLIENT, attributes=attributes
        ) as span:
            yield span

    def shutdown(self) -> None:
        """Export what is buffered, stop the exporter thread."""
        self.provider.shutdown()


def _extract(traceparent: str | None) -> Context | None:
    if traceparent is None:
        return None
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    return TraceContextTextMapPropagator().extract({"traceparent": traceparent})


def build_tracing(settings: Settings, service_name: str = "triggers-api") -> Tracing | None:
    """The SDK with its OTLP/HTTP exporter when the endpoint is set; None (tracing off) otherwise.

    The exporter reads the other standard variables itself (``OTEL_EXPORTER_OTLP_HEADERS``,
    ``..._TIMEOUT``, ``..._TRACES_ENDPOINT``); the resource reads ``OTEL_SERVICE_NAME`` and
    ``OTEL_RESOURCE_ATTRIBUTES``; the sampler ``OTEL_TRACES_SAMPLER``.
    """
    endpoint = settings.otel_exporter_otlp_endpoint
    if not endpoint or os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from triggers_api import __version__

    attributes: dict[str, str] = {"service.version": __version__}
    if not os.environ.get("OTEL_SERVICE_NAME"):
        attributes["service.name"] = service_name
    provider = TracerProvider(resource=Resource.create(attributes))
    traces_endpoint = None if os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") else endpoint
    if traces_endpoint is not None:
        traces_endpoint = traces_endpoint.rstrip("/") + "/v1/traces"
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=traces_endpoint)))
    return Tracing(provider, provider.get_tracer("triggers_api", __version__))


class TracingMiddleware:
    """Outermost ASGI middleware: one SERVER span per HTTP request, named ``METHOD /route``."""

    def __init__(self, app: ASGIApp, tracing: Tracing) -> None:
        self.app = app
        self.tracing = tracing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        from opentelemetry import context as otel_context
        from opentelemetry import trace
        from opentelemetry.trace import SpanKind, Status, StatusCode

        incoming = None
        for name, value in scope.get("headers", ()):
            if name == b"traceparent":
                incoming = valid_traceparent(value.decode("latin-1"))
                break
        method = scope.get("method", "")
        path = scope.get("path", "")
        span = self.tracing.tracer.start_span(
            f"{method} {path}",
            context=_extract(incoming),
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": path},
            start_time=time.time_ns(),
        )
        token = otel_context.attach(trace.set_span_in_context(span))
        status = [0]

        async def observe(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observe)
        except BaseException as exc:
            span.record_exception(exc)
            raise
        finally:
            route = getattr(scope.get("route"), "path", None)
            if route is not None:
                span.update_name(f"{method} {route}")
                span.set_attribute("http.route", route)
            if status[0]:
                span.set_attribute("http.response.status_code", status[0])
                if status[0] >= 500:
                    span.set_status(Status(StatusCode.ERROR))
            otel_context.detach(token)
            span.end()
