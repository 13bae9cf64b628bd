"""``handler(event, context)``: the whole FastAPI app behind API Gateway (REST proxy events).

- **Once per container.** Mangum runs with ``lifespan="off"`` (with it on, Mangum would run the
  app's startup and shutdown on every invocation). The app, its storage and its clients are
  built on the container's first invocation and opened there, on the container's one event loop
  (what the lifespan does under ``serve``: open the storage, run the startup hooks), then reused.
  The delivery worker is not started (the SQS worker function delivers), nor is the bootstrap
  key created (``docs/deploy-aws.md``: the first key), nor the retention sweep (TTL + the
  archiver replace it). ``last_used_at`` is flushed at the end of an invocation once per
  ``last_used_flush_interval``: a frozen container runs no timers.
- **The authorizer's context.** API Gateway ran ``lambda_authorizer`` already; its context
  (``user_id``, ``key_id``, ``scopes`` space-separated, ``rate_limit``) names the caller, so the
  key is not looked up by hash again. Its decision may be cached for 5 minutes, so the key is
  confirmed still active by ``key_id`` (one consistent read of that key, cached at most
  ``key_cache_ttl`` <= 1 s per container): a revoked key is refused within a second. Only this
  entry point installs that trust (:func:`install_authorizer_context`); ``triggers-api serve``
  never does, so no header or body can claim an identity there.
- **Buffered responses.** ``GET /v1/inbox/stream`` answers 501 ``STREAM_UNAVAILABLE`` (API Gateway
  buffers a Lambda's response whole: an endless SSE response would time out, not stream), and
  the long poll (``GET /v1/inbox?wait=N``) holds at most :data:`LONG_POLL_MAX_S`, below API
  Gateway's 29 s integration timeout.
- **Logs, metrics, traces.** Powertools' Logger carries API Gateway's request id as the
  correlation id, and the same id becomes the app's request id (``X-Request-ID``) unless the
  client sent a sane one. Each invocation emits ``EventsIngested`` (the events the ingestion path
  stored, counted by its ``on_stored`` hook) and, on a cold start, Powertools' ``ColdStart`` as
  EMF; X-Ray gets the ``## handler`` subsegment annotated with the request id, and every
  DynamoDB/SQS call (``aws/observability.py``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, MutableMapping
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from fastapi import FastAPI
from mangum import Mangum
from starlette.types import Receive, Send
from starlette.types import Scope as AsgiScope

from triggers_api.auth import Principal
from triggers_api.aws import observability as obs
from triggers_api.aws.container import ContainerLoop
from triggers_api.config import Settings
from triggers_api.errors import ApiError, Unauthorized
from triggers_api.runtime import EventsReader, Services
from triggers_api.storage.base import EventRecord, now_us

#: Longest ``GET /v1/inbox?wait=N`` hold under Lambda: API Gateway ends the integration at 29 s,
#: and the last re-query plus the response must fit in the remaining seconds.
LONG_POLL_MAX_S = 25.0
STREAM_PATH = "/v1/inbox/stream"

SERVICE = obs.service_name("api")
tracer = obs.tracer_for("api")
metrics = obs.metrics_for("api")

LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


class StreamUnavailable(ApiError):
    status_code, code = 501, "STREAM_UNAVAILABLE"
    default_message = (
        "The live stream is not served behind API Gateway (responses are buffered): "
        "long-poll GET /v1/inbox?wait=25 instead"
    )


def lambda_settings(settings: Settings | None = None) -> Settings:
    """The deployment's settings, with what a Lambda container must not do switched off."""
    base = settings or Settings()
    return base.model_copy(
        update={
            "delivery_in_process": False,
            "bootstrap_key": False,
            "inbox_max_wait": min(base.inbox_max_wait, LONG_POLL_MAX_S),
        }
    )


def authorizer_context(scope: MutableMapping[str, Any]) -> dict[str, Any] | None:
    """The REST API authorizer's context of this request (set by API Gateway, never by a client)."""
    event = scope.get("aws.event")
    if not isinstance(event, dict):
        return None
    request_context = event.get("requestContext")
    context = request_context.get("authorizer") if isinstance(request_context, dict) else None
    if not isinstance(context, dict) or "key_id" not in context:
        return None
    return context


class AuthorizerContextResolver:
    """Turns the authorizer's context into a :class:`Principal`, confirming the key is active."""

    def __init__(self, services: Services) -> None:
        self._services = services
        self._ttl = services.settings.key_cache_ttl
        self._active: dict[str, tuple[bool, float]] = {}  # key_id NUL user_id -> (active, valid until)
        self.reads = 0  # key reads made (tests, metrics)

    async def __call__(self, scope: MutableMapping[str, Any]) -> Principal | None:
        context = authorizer_context(scope)
        if context is None:
            return None  # a route without the authorizer (health, dashboard login): usual path
        try:
            principal = Principal(
                key_id=str(context["key_id"]),
                user_id=str(context["user_id"]),
                scopes=frozenset(str(context.get("scopes", "")).split()),
                rate_limit=int(str(context["rate_limit"])),
            )
        except (KeyError, ValueError):
            raise Unauthorized("Missing or invalid API key") from None
        if not await self._still_active(principal):
            raise Unauthorized("Missing or invalid API key")
        self._services.keys.note_use(principal.key_id, now_us())
        return principal

    async def _still_active(self, principal: Principal) -> bool:
        now = time.monotonic()
        # cached per (key, user) pair: a confirmation of a key never vouches for another user's context
        cache_key = f"{principal.key_id}\x00{principal.user_id}"
        hit = self._active.get(cache_key)
        if hit is not None and hit[1] > now:
            return hit[0]
        self.reads += 1
        # one consistent read of (user_id, key_id): a revocation counts from the next read on, and
        # a context naming another user's key finds nothing
        record = await self._services.storage.get_key(principal.user_id, principal.key_id)
        active = (
            record is not None
            and record.is_active
            and (record.expires_us is None or record.expires_us > now_us())
        )
        if self._ttl > 0:
            if len(self._active) > 10_000:
                self._active.clear()
            self._active[cache_key] = (active, now + self._ttl)
        return active


def install_authorizer_context(app: FastAPI, services: Services) -> None:
    """The Lambda entry point's app extension: trust the authorizer, refuse the stream."""
    services.extras["authorizer_context_resolver"] = AuthorizerContextResolver(services)

    async def stream_unavailable(principal: EventsReader) -> None:
        raise StreamUnavailable(details={"use": "GET /v1/inbox?wait=25", "max_wait_seconds": LONG_POLL_MAX_S})

    # Ahead of the real route (authenticated first: a bad key is still 401, a missing scope 403).
    app.router.add_api_route(STREAM_PATH, stream_unavailable, methods=["GET"], include_in_schema=False)
    app.router.routes.insert(0, app.router.routes.pop())


class LambdaApp:
    """The ASGI app plus what the lifespan would do, done once on the first request."""

    def __init__(self, settings: Settings) -> None:
        from triggers_api.app import create_app

        self.app = create_app(settings, extensions=[install_authorizer_context])
        self.services: Services = self.app.state.services
        self.started = False
        self._flushed = time.monotonic()
        self.ingested = 0  # events stored since the last take_ingested()
        self.services.ingestor.on_stored.append(self._count_stored)

    def _count_stored(self, records: list[EventRecord]) -> None:
        self.ingested += len(records)

    def take_ingested(self) -> int:
        """The events stored since the last call (one invocation's, called once per invocation)."""
        count, self.ingested = self.ingested, 0
        return count

    async def start(self) -> None:
        services = self.services
        await services.storage.open()
        services.extras["storage_open"] = True
        for start in services.extras.get("on_startup", []):
            await start()
        self.started = True

    async def stop(self) -> None:
        """Not called by Lambda (a container is frozen, then dropped): for tests and local use."""
        services = self.services
        for stop in reversed(services.extras.get("on_shutdown", [])):
            await stop()
        await services.keys.flush_last_used()
        services.extras["storage_open"] = False
        await services.storage.close()
        self.started = False

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        if not self.started:
            await self.start()
        await self.app(scope, receive, send)
        if time.monotonic() - self._flushed >= self.services.settings.last_used_flush_interval:
            self._flushed = time.monotonic()
            await self.services.keys.flush_last_used()


def _carry_request_id(event: dict[str, Any]) -> None:
    """API Gateway's request id becomes the app's (X-Request-ID) unless the client sent one."""
    request_id = (event.get("requestContext") or {}).get("requestId")
    headers = event.get("headers") or {}
    if not request_id or any(name.lower() == "x-request-id" for name in headers):
        return
    event["headers"] = {**headers, "X-Request-ID": str(request_id)}
    multi = event.get("multiValueHeaders")
    if isinstance(multi, dict):
        event["multiValueHeaders"] = {**multi, "X-Request-ID": [str(request_id)]}


class ApiFunction:
    """One container's API function: its loop, its app, Mangum and the logger."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.container = ContainerLoop()
        self.container.activate()  # Mangum takes the current loop
        self.app = LambdaApp(lambda_settings(settings))
        self.mangum = Mangum(self.app, lifespan="off")
        self.logger = Logger(service=SERVICE, child=False)
        self._invoke = obs.instrument(
            self._handle,
            logger=self.logger,
            tracer=tracer,
            metrics=metrics,
            correlation_id_path=correlation_paths.API_GATEWAY_REST,
        )

    def _handle(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.container.activate()
        _carry_request_id(event)
        request_id = (event.get("requestContext") or {}).get("requestId")
        if request_id:
            tracer.put_annotation("request_id", str(request_id))
        self.app.take_ingested()  # nothing from outside an invocation (tests' own writes) counts
        try:
            return self.mangum(event, context)
        finally:
            ingested = self.app.take_ingested()
            metrics.add_metric(name=obs.EVENTS_INGESTED, unit=MetricUnit.Count, value=ingested)

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        response: dict[str, Any] = self._invoke(event, context)
        return response

    def close(self) -> None:
        """For tests: close the storage and the loop."""
        if self.app.started:
            self.container.run(self.app.stop())
        self.container.close()


_function: ApiFunction | None = None


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The Lambda entry point (``triggers_api.aws.lambda_api.handler``)."""
    global _function
    if _function is None:
        _function = ApiFunction()
    return _function(event, context)
