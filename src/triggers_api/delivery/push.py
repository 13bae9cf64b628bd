"""One push of one event to the workflow engine, and what its answer means.

The request is the seed's ``Event`` JSON, POSTed with the Standard Webhooks headers (signed when a
secret is set) and a bearer token when one is configured. The whole attempt, connect to last
body byte, is bounded by one deadline: per-phase timeouts alone would let a receiver that
trickles bytes hold a worker slot forever. Only the first KiB of the answer is read and kept.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass
from enum import StrEnum

import httpx
import orjson
import structlog

from triggers_api import __version__
from triggers_api.delivery.schedule import parse_retry_after
from triggers_api.delivery.signing import Signer
from triggers_api.events.service import render_event
from triggers_api.storage.base import EventRecord

log = structlog.get_logger(__name__)

BODY_KEPT = 1024
USER_AGENT = f"triggers-api/{__version__}"


class Verdict(StrEnum):
    DELIVERED = "delivered"  # 2xx
    RETRY = "retry"  # 408, 429, 5xx, 3xx, transport errors: try again per the schedule
    REFUSED = "refused"  # any other 4xx: the engine refused this event; do not retry


@dataclass(slots=True)
class PushResult:
    verdict: Verdict
    duration_s: float
    status: int | None = None
    error: str | None = None  # error class: "timeout", "connect_error", "tls_error", "http_503", ...
    body: bytes = b""
    retry_after: float | None = None

    @property
    def engine_failure(self) -> bool:
        """Counts against the circuit breaker (a refusal of one event does not)."""
        return self.verdict is Verdict.RETRY


def classify_status(status: int) -> Verdict:
    if 200 <= status < 300:
        return Verdict.DELIVERED
    if status in (408, 429) or status >= 500 or status < 200 or 300 <= status < 400:
        return Verdict.RETRY
    return Verdict.REFUSED


def transport_error_class(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return "timeout"
    cause: BaseException | None = exc
    while cause is not None:  # TLS failures surface as ConnectError caused by an ssl.SSLError
        if isinstance(cause, ssl.SSLError):
            return "tls_error"
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, httpx.ConnectError):
        return "connect_error"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "connection_dropped"
    if isinstance(exc, httpx.ReadError | httpx.WriteError | httpx.NetworkError):
        return "network_error"
    if isinstance(exc, httpx.HTTPError):
        return "http_error"
    return "internal_error"


class Pusher:
    def __init__(
        self,
        client: httpx.AsyncClient,
        url: str,
        *,
        timeout: float,
        token: str | None = None,
        signer: Signer | None = None,
    ) -> None:
        self.client = client
        self.url = url
        self.timeout = timeout
        self.token = token
        self.signer = signer

    def request_headers(self, event_id: str, body: bytes, timestamp: int) -> dict[str, str]:
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "webhook-id": event_id,
            "webhook-timestamp": str(timestamp),
        }
        if self.signer is not None:
            headers["webhook-signature"] = self.signer.signature(event_id, timestamp, body)
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        return headers

    async def push(self, event: EventRecord) -> PushResult:
        body = orjson.dumps(render_event(event))
        headers = self.request_headers(event.event_id, body, int(time.time()))
        started = time.perf_counter()
        status: int | None = None
        retry_after: str | None = None
        kept = b""
        try:
            async with asyncio.timeout(self.timeout):
                async with self.client.stream("POST", self.url, content=body, headers=headers) as response:
                    status = response.status_code
                    retry_after = response.headers.get("retry-after")
                    kept = await _read_head(response)
        except Exception as exc:  # every failure of the attempt is an outcome, never a crash
            if status is None:
                error = transport_error_class(exc)
                if error == "internal_error":
                    log.exception("delivery_push_crashed", event_id=event.event_id)
                return PushResult(Verdict.RETRY, time.perf_counter() - started, error=error)
            # the engine answered, then the body broke off: its status stands
        duration = time.perf_counter() - started
        verdict = classify_status(status)
        return PushResult(
            verdict,
            duration,
            status=status,
            error=None if verdict is Verdict.DELIVERED else f"http_{status}",
            body=kept,
            retry_after=parse_retry_after(retry_after) if verdict is Verdict.RETRY else None,
        )


async def _read_head(response: httpx.Response) -> bytes:
    """The first KiB of the body; the rest is not read (the connection is then not reused)."""
    kept = bytearray()
    async for chunk in response.aiter_bytes():
        kept += chunk
        if len(kept) >= BODY_KEPT:
            break
    return bytes(kept[:BODY_KEPT])
