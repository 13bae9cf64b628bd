"""The HTTP edge, as one pure ASGI middleware: what every request goes through.

- gives each request an id (a sane ``X-Request-ID`` is kept, otherwise a new one) and echoes it;
- refuses bodies over the configured size with 413 before reading them whole;
- adds the rate-limit headers the auth step computed to whatever response goes out;
- turns any unexpected exception into the standard 500 body (no stack trace leaves);
- logs one structured line per request;
- behind a reverse proxy listed in ``TRIGGERS_TRUSTED_PROXIES``, takes the client address and
  scheme from ``X-Forwarded-For``/``X-Forwarded-Proto`` (from anyone else they are ignored, so
  ``source_ip``, audit addresses and ``Secure`` cookies cannot be spoofed);
- hands the ingestion routes to their lean handler (see ``events/fastpath.py``) without the
  framework's routing and dependency machinery, which caps a process near 6,000 req/s.

Pure ASGI rather than ``BaseHTTPMiddleware``: no extra task or body copy per request.
"""

from __future__ import annotations

import ipaddress
import random
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import structlog

from triggers_api.errors import (
    ApiError,
    PayloadTooLarge,
    StorageUnavailableError,
    api_error_body,
    error_body,
    storage_unavailable,
)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
FastHandler = Callable[[Scope, Receive, Send], Awaitable[None]]

log = structlog.get_logger("triggers_api.access")

_SANE_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._:\-]{1,128}$")


def request_state(scope: Scope) -> dict[str, Any]:
    state: dict[str, Any] = scope.setdefault("state", {})
    return state


def request_id_of(scope: Scope) -> str:
    return str(request_state(scope).get("request_id", ""))


async def send_json(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            + (headers or []),
        }
    )
    await send({"type": "http.response.body", "body": body})


async def send_api_error(send: Send, scope: Scope, error: ApiError) -> None:
    headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in error.headers.items()]
    await send_json(send, error.status_code, api_error_body(error, request_id_of(scope)), headers)


class Edge:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        max_batch_body_bytes: int,
        fast_routes: dict[tuple[str, str], FastHandler] | None = None,
        trusted_proxies: TrustedProxies | None = None,
        storage_retry_after: int = 5,
    ) -> None:
        self.app = app
        self.storage_retry_after = storage_retry_after
        self.max_body = max_body_bytes
        self.max_batch_body = max_batch_body_bytes
        self.fast_routes = fast_routes or {}
        self.proxies = trusted_proxies if trusted_proxies else None

    def body_limit(self, path: str) -> int:
        return self.max_batch_body if path.endswith("/batch") else self.max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        if self.proxies is not None:
            self.proxies.apply(scope)
        state = request_state(scope)
        request_id = _incoming_request_id(scope) or _new_request_id()
        state["request_id"] = request_id
        rid_header = (b"x-request-id", request_id.encode())
        status_holder = [0]
        response_started = [False]

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                response_started[0] = True
                status_holder[0] = message["status"]
                headers = list(message.get("headers", []))
                headers.append(rid_header)
                extra = state.get("response_headers")
                if extra:
                    headers.extend(extra)
                message["headers"] = headers
            await send(message)

        path: str = scope.get("path", "")
        limit = self.body_limit(path)
        try:
            declared = _content_length(scope)
            if declared is not None and declared > limit:
                raise PayloadTooLarge(
                    f"Request body exceeds {limit} bytes",
                    details={"max_bytes": limit, "received_bytes": declared},
                )
            state["body_limit"] = limit
            limited_receive = _limited(receive, limit)
            handler = self.fast_routes.get((scope["method"], path))
            if handler is not None:
                await handler(scope, limited_receive, send_wrapper)
            else:
                if scope["method"] in ("POST", "PUT", "PATCH"):
                    _treat_curl_bodies_as_json(scope)
                await self.app(scope, limited_receive, send_wrapper)
        except ApiError as exc:
            if not response_started[0]:
                await send_api_error(send_wrapper, scope, exc)
        except StorageUnavailableError as exc:  # a full disk, a database restart: retry later
            log.warning("storage_unavailable", request_id=request_id, path=path, error=str(exc)[:300])
            if not response_started[0]:
                await send_api_error(send_wrapper, scope, storage_unavailable(self.storage_retry_after))
        except ConnectionAbortedError:  # the client went away (or was cut off) mid-request
            pass
        except Exception:
            log.exception("unhandled_error", request_id=request_id, method=scope.get("method"), path=path)
            if not response_started[0]:
                await send_json(
                    send_wrapper,
                    500,
                    error_body("INTERNAL_ERROR", "An internal error occurred", request_id),
                )
        finally:
            log.info(
                "request",
                request_id=request_id,
                user_id=state.get("user_id"),
                method=scope.get("method"),
                path=path,
                status=status_holder[0],
                latency_ms=round((time.perf_counter() - started) * 1000, 3),
            )


IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    """The proxies whose forwarding headers are believed (``TRIGGERS_TRUSTED_PROXIES``).

    Only when the connecting peer is one of them: the client is the right-most address in
    ``X-Forwarded-For`` that is not itself a trusted proxy (a client can prepend anything, never
    append), and the scheme is ``X-Forwarded-Proto``. A request from anyone else keeps its own
    peer address and scheme, whatever headers it sends.
    """

    def __init__(self, cidrs: str) -> None:
        self.networks: tuple[IPNetwork, ...] = tuple(
            ipaddress.ip_network(part.strip(), strict=False) for part in cidrs.split(",") if part.strip()
        )

    def __bool__(self) -> bool:
        return bool(self.networks)

    def trusts(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.strip().strip("[]"))
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in network for network in self.networks)

    def apply(self, scope: Scope) -> None:
        client = scope.get("client")
        if not client or not self.trusts(str(client[0])):
            return
        forwarded_for = forwarded_proto = None
        for name, value in scope.get("headers", ()):
            if name == b"x-forwarded-for":  # several headers: one list, in order
                text = value.decode("latin-1")
                forwarded_for = text if forwarded_for is None else f"{forwarded_for},{text}"
            elif name == b"x-forwarded-proto":
                forwarded_proto = value.decode("latin-1")
        if forwarded_for is not None:
            hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
            for hop in reversed(hops):
                if not self.trusts(hop):
                    if _is_ip(hop):
                        scope["client"] = (hop.strip("[]"), 0)
                    break
            else:
                if hops and _is_ip(hops[0]):  # every hop is a trusted proxy: the first one sent it
                    scope["client"] = (hops[0].strip("[]"), 0)
        if forwarded_proto is not None:
            proto = forwarded_proto.split(",")[-1].strip().lower()
            if proto in ("http", "https"):
                scope["scheme"] = proto


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return False
    return True


def _new_request_id() -> str:
    """32 random hex characters, like ``uuid4().hex`` at a tenth of the cost (no system call):
    a correlation id must be unique, not unguessable."""
    return f"{random.getrandbits(128):032x}"


#: What ``curl -d`` sends by default, or nothing: the JSON routes read such bodies as JSON, like
#: the ingestion routes do, so the README's curl examples work as written (docs/architecture.md).
_CURL_DEFAULT_TYPES = (b"application/x-www-form-urlencoded", b"text/plain")


def _treat_curl_bodies_as_json(scope: Scope) -> None:
    headers = scope.get("headers", [])
    for index, (name, value) in enumerate(headers):
        if name == b"content-type":
            if value.split(b";", 1)[0].strip().lower() in _CURL_DEFAULT_TYPES:
                headers = list(headers)
                headers[index] = (b"content-type", b"application/json")
                scope["headers"] = headers
            return
    scope["headers"] = [*headers, (b"content-type", b"application/json")]


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            return value.decode("ascii") if _SANE_REQUEST_ID.match(value) else None
    return None


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _limited(receive: Receive, limit: int) -> Receive:
    """Counts streamed body bytes and stops at ``limit`` (for chunked or lying uploads)."""
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise PayloadTooLarge(f"Request body exceeds {limit} bytes", details={"max_bytes": limit})
        return message

    return wrapped


async def read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionAbortedError("client disconnected")
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)
