"""A minimal keep-alive HTTP/1.1 client for the push worker: one URL, POST only, asyncio streams.

Why not httpx: the worker sends one kind of request to one URL, thousands of times a second, and
httpx/httpcore spent ~80 % of the worker's CPU per push (pool bookkeeping, a readability probe of
every pooled socket per request, anyio wrappers). This does only what a push needs: a pool of idle
keep-alive connections (a connection is reused only after a complete, keep-alive answer), one
write per request, the status line and headers, and at most ``BODY_KEPT`` bytes of the body
(Content-Length, chunked, or until close); a longer body is not read and its connection is closed.
The caller bounds the whole exchange with one deadline (``asyncio.timeout``); a cancelled exchange
closes its connection. Failures raise :class:`PushError` with the error class the attempt records.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

BODY_KEPT = 1024
HEAD_LIMIT = 64 * 1024  # longest status line + headers accepted


class PushError(Exception):
    """The exchange failed before a status line came back; ``kind`` is the recorded error class."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


@dataclass(slots=True)
class Answer:
    status: int
    retry_after: str | None
    body: bytes  # at most BODY_KEPT bytes


_Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class Http11Pool:
    """Keep-alive connections to one origin, POSTing to one target."""

    def __init__(
        self,
        url: str,
        *,
        max_idle: int,
        ssl_context: ssl.SSLContext | None = None,
        resolve: Callable[[str, int], Awaitable[str]] | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.tls = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.tls else 80)
        self.ssl_context = (ssl_context or ssl.create_default_context()) if self.tls else None
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host_header = f"[{self.host}]" if ":" in self.host else self.host
        if parts.port is not None:
            host_header += f":{parts.port}"
        self._request_line = f"POST {target} HTTP/1.1\r\nhost: {host_header}\r\n".encode("latin-1")
        self.max_idle = max_idle
        self._idle: list[_Conn] = []
        # Subscriptions' SSRF guard: the address to connect to, checked at connect time (it raises
        # PushError when the host now resolves to a refused address); None: connect by name.
        self._resolve = resolve

    async def post(self, headers: bytes, body: bytes) -> Answer:
        """POST ``body``; ``headers`` are ready ``name: value\\r\\n`` lines (no Content-Length)."""
        conn = self._take_idle() or await self._open()
        reader, writer = conn
        reusable = False
        try:
            try:
                writer.write(
                    b"".join((self._request_line, headers, b"content-length: %d\r\n\r\n" % len(body), body))
                )
                if writer.transport.get_write_buffer_size() > 65536:
                    await writer.drain()
                status, retry_after, length, chunked, keep_alive = await self._read_head(reader)
            except (ConnectionError, asyncio.IncompleteReadError) as exc:
                raise PushError("connection_dropped", repr(exc)) from exc
            except OSError as exc:
                raise PushError("network_error", repr(exc)) from exc
            body_kept, complete = await _read_body(reader, status, length, chunked)
            reusable = complete and keep_alive
            return Answer(status, retry_after, body_kept)
        finally:
            if reusable and len(self._idle) < self.max_idle:
                self._idle.append(conn)
            else:
                writer.close()

    def _take_idle(self) -> _Conn | None:
        while self._idle:
            reader, writer = self._idle.pop()
            if reader.at_eof() or writer.transport.is_closing():  # the server closed it meanwhile
                writer.close()
                continue
            return reader, writer
        return None

    async def _open(self) -> _Conn:
        address = self.host if self._resolve is None else await self._resolve(self.host, self.port)
        try:
            return await asyncio.open_connection(
                address,
                self.port,
                ssl=self.ssl_context,
                server_hostname=self.host if self.tls else None,
                limit=HEAD_LIMIT,
            )
        except ssl.SSLError as exc:  # before OSError: SSLError is one
            raise PushError("tls_error", repr(exc)) from exc
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            # a TLS handshake the server broke off is a TLS failure, a refused connect is not
            raise PushError(
                "tls_error" if self.tls and _after_connect(exc) else "connect_error", repr(exc)
            ) from exc
        except OSError as exc:
            raise PushError("connect_error", repr(exc)) from exc

    async def _read_head(
        self, reader: asyncio.StreamReader
    ) -> tuple[int, str | None, int | None, bool, bool]:
        """(status, Retry-After, Content-Length, chunked, keep-alive) of the final answer."""
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.LimitOverrunError as exc:
                raise PushError("connection_dropped", "answer head too long") from exc
            lines = head.decode("latin-1").split("\r\n")
            version, _, rest = lines[0].partition(" ")
            try:
                status = int(rest[:3])
            except ValueError:
                raise PushError("connection_dropped", f"not an HTTP status line: {lines[0][:80]!r}") from None
            if not version.startswith("HTTP/1."):
                raise PushError("connection_dropped", f"not HTTP/1.x: {lines[0][:80]!r}")
            if 100 <= status < 200 and status != 101:
                continue  # interim answer (100 Continue, 103 Early Hints): the real one follows
            retry_after: str | None = None
            length: int | None = None
            chunked = False
            connection = ""
            for line in lines[1:]:
                name, sep, value = line.partition(":")
                if not sep:
                    continue
                name = name.strip().lower()
                if name == "content-length":
                    try:
                        length = int(value.strip())
                    except ValueError:
                        raise PushError("connection_dropped", "bad Content-Length") from None
                elif name == "transfer-encoding":
                    chunked = "chunked" in value.lower()
                elif name == "retry-after":
                    retry_after = value.strip()
                elif name == "connection":
                    connection = value.lower()
            keep_alive = "close" not in connection if version == "HTTP/1.1" else "keep-alive" in connection
            return status, retry_after, length, chunked, keep_alive

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for _, writer in idle:
            writer.close()


def _after_connect(exc: BaseException) -> bool:
    """A reset or EOF (not a refusal) during open: the TCP connect succeeded, the handshake broke."""
    return not isinstance(exc, ConnectionRefusedError)


async def _read_body(
    reader: asyncio.StreamReader, status: int, length: int | None, chunked: bool
) -> tuple[bytes, bool]:
    """At most BODY_KEPT bytes of the body, and whether it was read to its end (reusable).

    A body that breaks off keeps what arrived: the status already stands.
    """
    if status in (204, 304):
        return b"", True
    kept = bytearray()
    try:
        if chunked:
            while True:
                size_line = await reader.readuntil(b"\r\n")
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while (await reader.readuntil(b"\r\n")) != b"\r\n":
                        pass  # trailers
                    return bytes(kept), True
                room = BODY_KEPT - len(kept)
                if size > room:
                    kept += await reader.readexactly(room)
                    return bytes(kept), False
                kept += await reader.readexactly(size)
                await reader.readexactly(2)
        if length is not None:
            if length > BODY_KEPT:
                return await reader.readexactly(BODY_KEPT), False
            return await reader.readexactly(length), True
        while len(kept) < BODY_KEPT:  # no length: the body ends when the connection does
            chunk = await reader.read(BODY_KEPT - len(kept))
            if not chunk:
                break
            kept += chunk
        return bytes(kept), False
    except asyncio.IncompleteReadError as exc:
        return bytes(kept + exc.partial)[:BODY_KEPT], False
    except (OSError, ValueError, asyncio.LimitOverrunError):
        return bytes(kept), False
