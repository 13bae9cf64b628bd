"""The live inbox: ``GET /v1/inbox/stream`` (Server-Sent Events) and the ``?wait=N`` long poll.

Both read the database, never an in-memory queue, so nothing is lost to a restart or to an
event stored by another process: a stream keeps the *position* (commit order, see
``Storage.events_after``) of the last event it sent and asks for what came after. The
:class:`StreamHub` only decides *when* to ask: at once when this process stores an event for
the user (the ingestion hook); when another process does, as soon as the backend tells
(``Storage.listen_for_events``: LISTEN/NOTIFY on PostgreSQL), else within
``stream_poll_interval`` (one cheap head query per process, shared by every open stream).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Annotated

import orjson
import structlog
from fastapi import APIRouter, FastAPI, Header, Query
from fastapi.responses import StreamingResponse

from triggers_api.delivery.signals import on_exit_signal
from triggers_api.errors import ValidationFailed
from triggers_api.events.schemas import EVENT_TYPE_PATTERN
from triggers_api.events.service import parse_uuid, render_event
from triggers_api.inbox import service
from triggers_api.openapi import AUTHED, errors
from triggers_api.runtime import EventsReader, Services, ServicesDep
from triggers_api.storage.base import EventQuery, EventRecord, Storage, StreamItem

log = structlog.get_logger(__name__)

PAGE = 200  # events read per query while catching up


class StreamHub:
    def __init__(self, storage: Storage, poll_interval: float) -> None:
        self.storage = storage
        self.poll_interval = poll_interval
        self.closing = asyncio.Event()
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._head: int | None = None
        self._poller: asyncio.Task[None] | None = None

    @contextlib.contextmanager
    def subscribe(self, user_id: str) -> Iterator[asyncio.Event]:
        """An event set whenever the user may have new events (and when the hub closes)."""
        signal = asyncio.Event()
        self._waiters.setdefault(user_id, set()).add(signal)
        try:
            yield signal
        finally:
            waiters = self._waiters.get(user_id)
            if waiters is not None:
                waiters.discard(signal)
                if not waiters:
                    del self._waiters[user_id]

    def notify(self, records: Sequence[EventRecord]) -> None:
        """The ingestion hook (after commit): wake this process's streams of those users."""
        if not self._waiters:
            return
        for user_id in {r.user_id for r in records}:
            for signal in self._waiters.get(user_id, ()):
                signal.set()

    def notify_user(self, user_id: str) -> None:
        for signal in self._waiters.get(user_id, ()):
            signal.set()

    def on_storage_event(self, user_ids: frozenset[str] | None) -> None:
        """Another process committed events (backends that can tell, e.g. LISTEN/NOTIFY)."""
        if user_ids is None:
            self._notify_all()
        else:
            for user_id in user_ids:
                self.notify_user(user_id)

    def _notify_all(self) -> None:
        for waiters in self._waiters.values():
            for signal in waiters:
                signal.set()

    def close(self) -> None:
        """End every stream (shutdown): clients reconnect elsewhere with ``Last-Event-ID``."""
        self.closing.set()
        self._notify_all()

    async def start(self) -> None:
        self.storage.listen_for_events(self.on_storage_event)
        self._poller = asyncio.create_task(self._poll(), name="stream-head-poller")

    async def stop(self) -> None:
        self.close()
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)

    async def _poll(self) -> None:
        """Notice events committed by other processes: one head query per interval, only while
        someone listens."""
        while True:
            await asyncio.sleep(self.poll_interval)
            if not self._waiters:
                self._head = None
                continue
            try:
                head = await self.storage.stream_head()
            except Exception as exc:  # the database may be down for a moment: streams wait
                log.warning("stream_head_failed", error=type(exc).__name__)
                continue
            if self._head is not None and head != self._head:
                self._notify_all()
            self._head = head


def hub_of(services: Services) -> StreamHub | None:
    hub: StreamHub | None = services.extras.get("stream_hub")
    return hub


async def _wait(signal: asyncio.Event, timeout: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(signal.wait(), timeout)


# -- long poll ------------------------------------------------------------------------------------
async def page_or_wait(
    services: Services, query: EventQuery, kind: str, wait: float
) -> tuple[list[EventRecord], str | None]:
    """One inbox page; when it is empty and ``wait`` > 0, hold the request until matching events
    exist or ``wait`` seconds pass. Re-queries at least every second, so changes no notification
    announces (a dead letter, another process's write) are seen too."""
    hub = hub_of(services)
    wait = min(wait, services.settings.inbox_max_wait)
    if wait <= 0 or hub is None:
        return await service.page(services.storage, query, kind, services.cursors)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    with hub.subscribe(query.user_id) as signal:
        while True:
            signal.clear()
            rows, cursor = await service.page(services.storage, query, kind, services.cursors)
            remaining = deadline - loop.time()
            if rows or remaining <= 0 or hub.closing.is_set():
                return rows, cursor
            await _wait(signal, min(remaining, 1.0))


# -- Server-Sent Events ---------------------------------------------------------------------------
def sse_frame(item: StreamItem) -> bytes:
    return (
        b"id: "
        + item.event.event_id.encode()
        + b"\ndata: "
        + orjson.dumps(render_event(item.event))
        + b"\n\n"
    )


async def sse_body(
    services: Services, hub: StreamHub, user_id: str, event_type: str | None, position: int
) -> AsyncIterator[bytes]:
    storage = services.storage
    heartbeat = services.settings.stream_heartbeat
    loop = asyncio.get_running_loop()
    with hub.subscribe(user_id) as signal:
        yield b"retry: 1000\n: connected\n\n"
        last_sent = loop.time()
        while not hub.closing.is_set():
            signal.clear()
            # Every event up to the head read *before* the query is visible to the query, so
            # when the page is not full the stream may skip to that head: a quiet user's stream
            # then never rescans the other users' rows it already passed.
            head = await storage.stream_head()
            items = await storage.events_after(user_id, position, event_type, PAGE)
            if items:
                position = items[-1].position
                yield b"".join(sse_frame(item) for item in items)
                last_sent = loop.time()
                if len(items) == PAGE:
                    continue  # catching up: read on without waiting
            position = max(position, head)
            idle = loop.time() - last_sent
            if idle >= heartbeat:
                yield b": heartbeat\n\n"
                last_sent = loop.time()
                continue
            await _wait(signal, heartbeat - idle)


router = APIRouter(prefix="/v1", tags=["Inbox"])


@router.get(
    "/inbox/stream",
    operation_id="streamInbox",
    summary="Live stream (Server-Sent Events) of every event ingested from now on, in ingestion order",
    description=(
        "Each event is sent as `id: <event_id>` and `data: <the event JSON, as GET /v1/events/{id}>`, "
        "in ingestion (commit) order, whatever its later delivery status. Reconnect with "
        "`Last-Event-ID` to resume right after that event, without gaps or repeats. A comment "
        "line is sent as a heartbeat every 15 s. Behind API Gateway (the AWS deployment), which "
        "buffers responses, it answers 501 `STREAM_UNAVAILABLE` instead: long-poll "
        "`GET /v1/inbox?wait=25` there."
    ),
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}, "description": "The stream"},
        **errors(*AUTHED, 501),
    },
)
async def stream_inbox(
    services: ServicesDep,
    principal: EventsReader,
    event_type: Annotated[
        str | None,
        Query(
            description="Only events of this type", min_length=1, max_length=128, pattern=EVENT_TYPE_PATTERN
        ),
    ] = None,
    last_event_id: Annotated[
        str | None,
        Header(
            alias="Last-Event-ID", description="Resume after this event (sent by EventSource on reconnect)"
        ),
    ] = None,
) -> StreamingResponse:
    hub = hub_of(services)
    assert hub is not None
    user_id = principal.user_id
    if last_event_id:
        try:
            event_id = parse_uuid(last_event_id.strip())
        except ValidationFailed:
            event_id = None
        position = await services.storage.stream_position(user_id, event_id) if event_id else None
        if position is None:
            raise ValidationFailed(
                "Last-Event-ID does not name one of your events",
                details={"Last-Event-ID": "unknown event id; reconnect without it to start from now"},
            )
    else:
        position = await services.storage.stream_start()
    return StreamingResponse(
        sse_body(services, hub, user_id, event_type, position),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def install(app: FastAPI, services: Services) -> None:
    hub = StreamHub(services.storage, services.settings.stream_poll_interval)
    services.extras["stream_hub"] = hub
    services.ingestor.on_stored.append(hub.notify)
    app.include_router(router)
    services.extras.setdefault("on_startup", []).append(hub.start)
    services.extras.setdefault("on_shutdown", []).append(hub.stop)
    on_exit_signal(services, hub.close)
