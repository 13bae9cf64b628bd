"""One push of one event to the workflow engine, and what its answer means.

The request is the seed's ``Event`` JSON, POSTed with the Standard Webhooks headers (signed when a
secret is set) and a bearer token when one is configured. The whole attempt, connect to last
body byte, is bounded by one deadline: per-phase timeouts alone would let a receiver that
trickles bytes hold a worker slot forever. Only the first KiB of the answer is read and kept
(the HTTP/1.1 client is ``http11.py``).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass
from enum import StrEnum

import orjson
import structlog

from triggers_api import __version__
from triggers_api.delivery.http11 import Http11Pool, PushError
from triggers_api.delivery.schedule import parse_retry_after
from triggers_api.delivery.signing import Signer
from triggers_api.events.service import render_event
from triggers_api.storage.base import EventRecord

log = structlog.get_logger(__name__)

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
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, PushError):
        return exc.kind
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLError):
            return "tls_error"
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, OSError):
        return "network_error"
    return "internal_error"


class Pusher:
    """Pushes events to one URL; the headers that never change are built once."""

    def __init__(
        self,
        pool: Http11Pool,
        *,
        timeout: float,
        token: str | None = None,
        signer: Signer | None = None,
    ) -> None:
        self.pool = pool
        self.timeout = timeout
        self.signer = signer
        fixed = f"content-type: application/json\r\nuser-agent: {USER_AGENT}\r\n"
        if token:
            fixed += f"authorization: Bearer {token}\r\n"
        self._fixed = fixed.encode("latin-1")

    def request_headers(
        self, event_id: str, body: bytes, timestamp: int, traceparent: str | None = None
    ) -> bytes:
        signature = (
            f"webhook-signature: {self.signer.signature(event_id, timestamp, body)}\r\n"
            if self.signer is not None
            else ""
        )
        trace = f"traceparent: {traceparent}\r\n" if traceparent is not None else ""
        return self._fixed + (
            f"webhook-id: {event_id}\r\nwebhook-timestamp: {timestamp}\r\n{signature}{trace}"
        ).encode("latin-1")

    async def push(self, event: EventRecord, traceparent: str | None = None) -> PushResult:
        """``traceparent``: the W3C trace context the engine continues (see ``tracing.py``)."""
        body = orjson.dumps(render_event(event))
        headers = self.request_headers(event.event_id, body, int(time.time()), traceparent)
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout):
                answer = await self.pool.post(headers, body)
        except Exception as exc:  # every failure of the attempt is an outcome, never a crash
            error = transport_error_class(exc)
            if error == "internal_error":
                log.exception("delivery_push_crashed", event_id=event.event_id)
            return PushResult(Verdict.RETRY, time.perf_counter() - started, error=error)
        duration = time.perf_counter() - started
        status = answer.status
        verdict = classify_status(status)
        return PushResult(
            verdict,
            duration,
            status=status,
            error=None if verdict is Verdict.DELIVERED else f"http_{status}",
            body=answer.body,
            retry_after=parse_retry_after(answer.retry_after) if verdict is Verdict.RETRY else None,
        )
