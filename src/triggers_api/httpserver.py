"""The HTTP server's guard rails against slow and hostile clients (``TRIGGERS_HTTP_*``).

uvicorn (httptools) serves the API. On its own it bounds only the idle time *between* requests
of a kept-alive connection: a client that sends its headers a byte a second, never finishes its
body, opens thousands of idle connections or stops reading a stream it asked for would each hold
a connection (and, for the stream, a growing buffer) for ever. :class:`GuardedHttpToolsProtocol`
is uvicorn's protocol with those bounds added, per connection and without touching the app:

* ``http_header_timeout``: from the connection (or a request's first byte) to its last header,
  then 408 and close; ``http_max_header_bytes``: request line and headers at most, then 431;
* ``http_body_timeout``: from the last header to the last body byte, then 408 and close;
* ``http_max_connections``: beyond it the connection idle the longest is closed to make room
  (nginx does the same with kept-alive connections); when none is idle the newcomer gets 503;
* ``http_write_buffer_bytes`` / ``http_write_timeout``: a response (an SSE stream) waits while
  the client's unsent bytes exceed the buffer; a client that leaves it full longer is dropped
  (``abort``: the buffer is freed at once, not kept until a reader that never comes).

Errors leave in the one error shape (``errors.error_body``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from triggers_api.config import Settings
from triggers_api.errors import error_body

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class HttpLimits:
    header_timeout: float
    body_timeout: float
    max_connections: int
    max_header_bytes: int
    write_buffer_bytes: int
    write_timeout: float

    @classmethod
    def from_settings(cls, settings: Settings) -> HttpLimits:
        return cls(
            header_timeout=settings.http_header_timeout,
            body_timeout=settings.http_body_timeout,
            max_connections=settings.http_max_connections,
            max_header_bytes=settings.http_max_header_bytes,
            write_buffer_bytes=settings.http_write_buffer_bytes,
            write_timeout=settings.http_write_timeout,
        )


_limits: HttpLimits | None = None


def limits() -> HttpLimits:
    """Read once per process from the environment, like the app's Settings (``cli.app_factory``)."""
    global _limits
    if _limits is None:
        _limits = HttpLimits.from_settings(Settings())
    return _limits


_REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large", 503: b"Service Unavailable"}


def _refusal(status: int, code: str, message: str) -> bytes:
    body = error_body(code, message, "")
    return (
        b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n"
        % (status, _REASONS[status], len(body))
        + body
    )


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with header/body deadlines, a header size cap, a connection
    cap that evicts idle connections first, and a write-stall deadline (see the module doc)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits()
        self._deadline: asyncio.TimerHandle | None = None  # header, body or write-stall deadline
        self._in_headers = True  # reading a request line + headers (or waiting for the first)
        self._header_bytes = 0
        self._idle_since: float | None = time.monotonic()  # None while a request is in flight

    # -- connection lifecycle ------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        transport.set_write_buffer_limits(high=self.limits.write_buffer_bytes)
        if len(self.connections) > self.limits.max_connections and not self._evict_idle():
            log.warning(
                "http_connection_refused", reason="max_connections", limit=self.limits.max_connections
            )
            self._refuse(503, "SERVICE_UNAVAILABLE", "Too many open connections; retry later")
            return
        self._arm(self.limits.header_timeout, self._header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _evict_idle(self) -> bool:
        """Close the connection idle the longest (not this one); False when none is idle."""
        oldest: GuardedHttpToolsProtocol | None = None
        for other in self.connections:
            if other is self or not isinstance(other, GuardedHttpToolsProtocol) or other._idle_since is None:
                continue
            if oldest is None or other._idle_since < (oldest._idle_since or 0.0):
                oldest = other
        if oldest is None:
            return False
        oldest._drop("evicted_idle")
        return True

    # -- reading ------------------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if self._in_headers:
            self._header_bytes += len(data)
        super().data_received(data)
        # Still in the headers after parsing this chunk (body bytes in it do not count then).
        if self._in_headers and self._header_bytes > self.limits.max_header_bytes:
            log.warning("http_client_cut_off", reason="header_bytes", client=self.client)
            self._refuse(
                431, "HEADERS_TOO_LARGE", f"Request headers exceed {self.limits.max_header_bytes} bytes"
            )

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._idle_since = None
        self._in_headers = True
        if self._deadline is None:  # a kept-alive connection's next request: its own deadline
            self._arm(self.limits.header_timeout, self._header_timeout)

    def on_headers_complete(self) -> None:
        self._in_headers = False
        self._header_bytes = 0
        self._arm(self.limits.body_timeout, self._body_timeout)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._idle_since = time.monotonic()
        self._in_headers = True
        self._header_bytes = 0

    def _header_timeout(self) -> None:
        self._deadline = None
        if self._header_bytes == 0 and self.cycle is None:  # never said a word: just close
            self._drop("header_timeout")
            return
        log.warning("http_client_cut_off", reason="header_timeout", client=self.client)
        self._refuse(
            408, "REQUEST_TIMEOUT", f"Request headers not received within {self.limits.header_timeout} s"
        )

    def _body_timeout(self) -> None:
        self._deadline = None
        log.warning("http_client_cut_off", reason="body_timeout", client=self.client)
        cycle = self.cycle
        if cycle is not None and not cycle.response_started:
            cycle.response_started = cycle.response_complete = True  # the app's own answer is moot
            self.transport.write(
                _refusal(
                    408, "REQUEST_TIMEOUT", f"Request body not received within {self.limits.body_timeout} s"
                )
            )
        if cycle is not None:
            cycle.disconnected = True
            cycle.message_event.set()  # the app's receive() returns http.disconnect
        self.transport.close()

    # -- writing ------------------------------------------------------------------------------------
    def pause_writing(self) -> None:
        super().pause_writing()
        if self._deadline is None:  # (a read deadline still armed covers this connection already)
            self._arm(self.limits.write_timeout, self._write_timeout, writing=True)

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._write_deadline:
            self._disarm()

    def _write_timeout(self) -> None:
        self._deadline = None
        log.warning(
            "http_client_dropped",
            reason="write_timeout",
            client=self.client,
            unsent_bytes=self.transport.get_write_buffer_size(),
        )
        self._drop("write_timeout")

    # -- helpers ------------------------------------------------------------------------------------
    _write_deadline = False  # the armed deadline is the write-stall one

    def _arm(self, seconds: float, callback: Callable[[], None], *, writing: bool = False) -> None:
        self._disarm()
        self._write_deadline = writing
        self._deadline = self.loop.call_later(seconds, callback)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._write_deadline = False

    def _refuse(self, status: int, code: str, message: str) -> None:
        self._disarm()
        if not self.transport.is_closing():
            self.transport.write(_refusal(status, code, message))
            self.transport.close()

    def _drop(self, reason: str) -> None:
        """Abort: the connection and whatever it had not sent are gone at once."""
        self._disarm()
        if self.cycle is not None:
            self.cycle.disconnected = True
            self.cycle.message_event.set()
        self.connections.discard(self)
        self.transport.abort()
