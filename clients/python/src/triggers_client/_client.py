"""``TriggersClient`` (blocking) and ``AsyncTriggersClient``: one surface, two ways of sending."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from types import TracebackType
from typing import Any, Callable, TypeVar

import httpx

from triggers_client import _core
from triggers_client._core import Call, ClientConfig, SSEMessage
from triggers_client._errors import APIConnectionError
from triggers_client._resources import (
    AsyncAuditLogs,
    AsyncEvents,
    AsyncEventTypes,
    AsyncInbox,
    AsyncKeys,
    AsyncSubscriptions,
    AuditLogs,
    Events,
    EventTypes,
    Inbox,
    Keys,
    Subscriptions,
)

T = TypeVar("T")
STREAM_READ_TIMEOUT = 60.0  # seconds without a byte (the server sends a heartbeat every 15 s)
MAX_RECONNECT_DELAY = 5.0


class TriggersClient:
    """The Triggers API over HTTP: ``events``, ``inbox``, ``keys``, ``audit_logs``, ``subscriptions``,
    ``event_types``.

    Retries connection errors, 408, 429 (honouring ``Retry-After``) and 5xx with exponential
    backoff and jitter, up to ``max_retries`` times, for requests that are safe to repeat (GET,
    DELETE, and POSTs carrying an idempotency key, which ``events.create`` always sends).
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 10.0,
        max_retries: int = 3,
        *,
        retry_backoff: float = 0.5,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._config = ClientConfig.resolve(base_url, api_key, timeout, max_retries, retry_backoff)
        self._http = httpx.Client(
            base_url=self._config.base_url,
            headers=self._config.headers(),
            timeout=timeout,
            transport=transport,
        )
        self.events = Events(self)
        self.inbox = Inbox(self)
        self.keys = Keys(self)
        self.audit_logs = AuditLogs(self)
        self.subscriptions = Subscriptions(self)
        self.event_types = EventTypes(self)

    @property
    def base_url(self) -> str:
        return self._config.base_url

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> TriggersClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _call(self, call: Call[T]) -> T:
        return call.parse(self._send(call))

    def _send(self, call: Call[Any]) -> httpx.Response:
        config = self._config
        attempt = 0
        while True:
            try:
                response = self._http.request(
                    call.method, call.path, params=call.query(), json=call.json, headers=dict(call.headers)
                )
            except httpx.TransportError as exc:
                if attempt >= config.max_retries or not _core.transport_retry_safe(call, exc):
                    raise APIConnectionError(f"{type(exc).__name__}: {exc}") from exc
                time.sleep(_core.backoff_delay(attempt, config.retry_backoff))
                attempt += 1
                continue
            if response.status_code < 400 or _core.succeeded_earlier(call, attempt, response):
                return response
            delay = _core.retry_delay(call, attempt, config.retry_backoff, response)
            if delay is None or attempt >= config.max_retries:
                raise _core.error_from_response(response)
            time.sleep(delay)
            attempt += 1

    def _sse(
        self,
        path: str,
        event_type: str | None,
        last_event_id: str | None,
        on_connect: Callable[[], None] | None = None,
    ) -> Iterator[SSEMessage]:
        """Every message of the stream, reconnecting with ``Last-Event-ID`` whenever it breaks."""
        failures = 0
        timeout = httpx.Timeout(self._config.timeout, read=STREAM_READ_TIMEOUT)
        while True:
            params, headers = _core.stream_request(event_type, last_event_id)
            try:
                with self._http.stream(
                    "GET", path, params=params, headers=headers, timeout=timeout
                ) as response:
                    if response.status_code >= 400:
                        response.read()
                        if _core.stream_failure_is_final(response):
                            raise _core.error_from_response(response)
                        failures += 1
                    else:
                        failures = 0
                        if on_connect is not None:
                            on_connect()
                        decoder = _core.SSEDecoder()
                        for line in response.iter_lines():
                            message = decoder.feed(line)
                            if message is not None:
                                if message.id:
                                    last_event_id = message.id
                                yield message
            except httpx.TransportError:
                failures += 1
            time.sleep(_reconnect_delay(failures, self._config.retry_backoff))


class AsyncTriggersClient:
    """The same surface as :class:`TriggersClient`, with ``await`` (and ``async for``)."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 10.0,
        max_retries: int = 3,
        *,
        retry_backoff: float = 0.5,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._config = ClientConfig.resolve(base_url, api_key, timeout, max_retries, retry_backoff)
        self._http = httpx.AsyncClient(
            base_url=self._config.base_url,
            headers=self._config.headers(),
            timeout=timeout,
            transport=transport,
        )
        self.events = AsyncEvents(self)
        self.inbox = AsyncInbox(self)
        self.keys = AsyncKeys(self)
        self.audit_logs = AsyncAuditLogs(self)
        self.subscriptions = AsyncSubscriptions(self)
        self.event_types = AsyncEventTypes(self)

    @property
    def base_url(self) -> str:
        return self._config.base_url

    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncTriggersClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _call(self, call: Call[T]) -> T:
        return call.parse(await self._send(call))

    async def _send(self, call: Call[Any]) -> httpx.Response:
        config = self._config
        attempt = 0
        while True:
            try:
                response = await self._http.request(
                    call.method, call.path, params=call.query(), json=call.json, headers=dict(call.headers)
                )
            except httpx.TransportError as exc:
                if attempt >= config.max_retries or not _core.transport_retry_safe(call, exc):
                    raise APIConnectionError(f"{type(exc).__name__}: {exc}") from exc
                await asyncio.sleep(_core.backoff_delay(attempt, config.retry_backoff))
                attempt += 1
                continue
            if response.status_code < 400 or _core.succeeded_earlier(call, attempt, response):
                return response
            delay = _core.retry_delay(call, attempt, config.retry_backoff, response)
            if delay is None or attempt >= config.max_retries:
                raise _core.error_from_response(response)
            await asyncio.sleep(delay)
            attempt += 1

    async def _sse(
        self, path: str, event_type: str | None, last_event_id: str | None
    ) -> AsyncIterator[SSEMessage]:
        failures = 0
        timeout = httpx.Timeout(self._config.timeout, read=STREAM_READ_TIMEOUT)
        while True:
            params, headers = _core.stream_request(event_type, last_event_id)
            try:
                async with self._http.stream(
                    "GET", path, params=params, headers=headers, timeout=timeout
                ) as response:
                    if response.status_code >= 400:
                        await response.aread()
                        if _core.stream_failure_is_final(response):
                            raise _core.error_from_response(response)
                        failures += 1
                    else:
                        failures = 0
                        decoder = _core.SSEDecoder()
                        async for line in response.aiter_lines():
                            message = decoder.feed(line)
                            if message is not None:
                                if message.id:
                                    last_event_id = message.id
                                yield message
            except httpx.TransportError:
                failures += 1
            await asyncio.sleep(_reconnect_delay(failures, self._config.retry_backoff))


def _reconnect_delay(failures: int, base: float) -> float:
    """A stream that ended cleanly reconnects after ``base``; repeated failures back off (capped)."""
    if failures == 0:
        return base
    return min(MAX_RECONNECT_DELAY, _core.backoff_delay(failures - 1, base))
