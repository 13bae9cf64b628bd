"""The resources of each client. Every method is one :class:`~triggers_client._core.Call` builder
sent by the client, so the sync and async classes stay line-for-line the same.

To add a resource (e.g. ``subscriptions`` or ``event_types`` when the server has them): write its
``Call`` builders in ``_core.py``, a sync and an async class here, and attach both in
``_client.py``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from triggers_client import _core
from triggers_client._core import Timestamp
from triggers_client._models import (
    AckResult,
    ApiKey,
    AuditLog,
    AuditPage,
    BatchResult,
    CreatedApiKey,
    CreatedEvent,
    Event,
    EventPage,
    EventStatus,
    ReplayAccepted,
)

if TYPE_CHECKING:
    from triggers_client._client import AsyncTriggersClient, TriggersClient


class _Sync:
    def __init__(self, client: TriggersClient) -> None:
        self._client = client


class _Async:
    def __init__(self, client: AsyncTriggersClient) -> None:
        self._client = client


# -- events ---------------------------------------------------------------------------------------
class Events(_Sync):
    def create(
        self, event_type: str, payload: Mapping[str, Any], idempotency_key: str | None = None
    ) -> CreatedEvent:
        """Ingest one event (committed before this returns). Without ``idempotency_key`` a UUID is
        generated, so the client's own retries never store it twice."""
        return self._client._call(_core.create_event(event_type, payload, idempotency_key))

    def create_batch(
        self, events: Iterable[Mapping[str, Any]], idempotency_key: str | None = None
    ) -> BatchResult:
        """Up to 100 ``{"event_type", "payload"}`` items; each is accepted or refused on its own."""
        return self._client._call(_core.create_batch(events, idempotency_key))

    def get(self, event_id: str) -> Event:
        return self._client._call(_core.get_event(event_id))

    def status(self, event_id: str) -> EventStatus:
        return self._client._call(_core.event_status(event_id))

    def acknowledge(self, event_id: str) -> None:
        """Raises :class:`GoneError` when it was already acknowledged."""
        self._client._call(_core.acknowledge(event_id))

    def acknowledge_many(self, event_ids: Sequence[str]) -> list[AckResult]:
        """One result per id (sent 100 at a time)."""
        results: list[AckResult] = []
        for chunk in _core.chunks(list(event_ids)):
            page: list[AckResult] = self._client._call(_core.acknowledge_batch(chunk))
            results.extend(page)
        return results

    def replay(self, event_id: str) -> ReplayAccepted:
        """Put one dead letter back into delivery (:class:`ConflictError` if it is not one)."""
        return self._client._call(_core.replay(event_id))

    def replay_failed(
        self,
        event_type: str | None = None,
        from_timestamp: Timestamp = None,
        to_timestamp: Timestamp = None,
    ) -> int:
        """Replay every dead letter matching the filters; returns how many."""
        return self._client._call(_core.replay_failed(event_type, from_timestamp, to_timestamp))

    def list(
        self,
        event_type: str | None = None,
        status: str | None = None,
        from_timestamp: Timestamp = None,
        to_timestamp: Timestamp = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> EventPage:
        """One page of all your events in any status, newest first."""
        return self._client._call(
            _core.list_events("/v1/events", event_type, status, from_timestamp, to_timestamp, limit, cursor)
        )

    def iter(
        self,
        event_type: str | None = None,
        status: str | None = None,
        from_timestamp: Timestamp = None,
        to_timestamp: Timestamp = None,
        page_size: int = 100,
    ) -> Iterator[Event]:
        cursor: str | None = None
        while True:
            page = self.list(event_type, status, from_timestamp, to_timestamp, page_size, cursor)
            yield from page.events
            if page.next_cursor is None:
                return
            cursor = page.next_cursor


class AsyncEvents(_Async):
    async def create(
        self, event_type: str, payload: Mapping[str, Any], idempotency_key: str | None = None
    ) -> CreatedEvent:
        return await self._client._call(_core.create_event(event_type, payload, idempotency_key))

    async def create_batch(
        self, events: Iterable[Mapping[str, Any]], idempotency_key: str | None = None
    ) -> BatchResult:
        return await self._client._call(_core.create_batch(events, idempotency_key))

    async def get(self, event_id: str) -> Event:
        return await self._client._call(_core.get_event(event_id))

    async def status(self, event_id: str) -> EventStatus:
        return await self._client._call(_core.event_status(event_id))

    async def acknowledge(self, event_id: str) -> None:
        await self._client._call(_core.acknowledge(event_id))

    async def acknowledge_many(self, event_ids: Sequence[str]) -> list[AckResult]:
        results: list[AckResult] = []
        for chunk in _core.chunks(list(event_ids)):
            page: list[AckResult] = await self._client._call(_core.acknowledge_batch(chunk))
            results.extend(page)
        return results

    async def replay(self, event_id: str) -> ReplayAccepted:
        return await self._client._call(_core.replay(event_id))

    async def replay_failed(
        self,
        event_type: str | None = None,
        from_timestamp: Timestamp = None,
        to_timestamp: Timestamp = None,
    ) -> int:
        return await self._client._call(_core.replay_failed(event_type, from_timestamp, to_timestamp))

    async def list(
        self,
        event_type: str | None = None,
        status: str | None = None,
        from_timestamp: Timestamp = None,
        to_timestamp: Timestamp = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> EventPage:
        return await self._client._call(
            _core.list_events("/v1/events", event_type, status, from_timestamp, to_timestamp, limit, cursor)
        )

    async def iter(
        self,
        event_type: str | None = None,
        status: str | None = None,
        from_timestamp: Timestamp = None,
        to_timestamp: Timestamp = None,
        page_size: int = 100,
    ) -> AsyncIterator[Event]:
        cursor: str | None = None
        while True:
            page = await self.list(event_type, status, from_timestamp, to_timestamp, page_size, cursor)
            for event in page.events:
                yield event
            if page.next_cursor is None:
                return
            cursor = page.next_cursor


# -- inbox ----------------------------------------------------------------------------------------
class Inbox(_Sync):
    def list(
        self,
        event_type: str | None = None,
        status: str | None = None,
        from_timestamp: Timestamp = None,
        to_timestamp: Timestamp = None,
        limit: int = 50,
        cursor: str | None = None,
        wait: int = 0,
    ) -> EventPage:
        """One page of undelivered events, oldest first; ``wait`` long-polls up to N seconds."""
        return self._client._call(
            _core.list_events(
                "/v1/inbox", event_type, status, from_timestamp, to_timestamp, limit, cursor, wait
            )
        )

    def iter(
        self,
        event_type: str | None = None,
        status: str | None = None,
        from_timestamp: Timestamp = None,
        to_timestamp: Timestamp = None,
        page_size: int = 100,
    ) -> Iterator[Event]:
        """Every inbox event across pages (acknowledging while iterating is safe: the cursor is a
        position, not an offset)."""
        cursor: str | None = None
        while True:
            page = self.list(event_type, status, from_timestamp, to_timestamp, page_size, cursor)
            yield from page.events
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def stream(
        self, event_type: str | None = None, last_event_id: str | None = None
    ) -> Generator[Event, None, None]:
        """The live stream: every event ingested from now (or after ``last_event_id``), forever,
        reconnecting with ``Last-Event-ID`` after a disconnect, so none is lost or repeated."""
        for message in self._client._sse("/v1/inbox/stream", event_type, last_event_id):
            yield _core.parse_event_data(message)


class AsyncInbox(_Async):
    async def list(
        self,
        event_type: str | None = None,
        status: str | None = None,
        from_timestamp: Timestamp = None,
        to_timestamp: Timestamp = None,
        limit: int = 50,
        cursor: str | None = None,
        wait: int = 0,
    ) -> EventPage:
        return await self._client._call(
            _core.list_events(
                "/v1/inbox", event_type, status, from_timestamp, to_timestamp, limit, cursor, wait
            )
        )

    async def iter(
        self,
        event_type: str | None = None,
        status: str | None = None,
        from_timestamp: Timestamp = None,
        to_timestamp: Timestamp = None,
        page_size: int = 100,
    ) -> AsyncIterator[Event]:
        cursor: str | None = None
        while True:
            page = await self.list(event_type, status, from_timestamp, to_timestamp, page_size, cursor)
            for event in page.events:
                yield event
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def stream(
        self, event_type: str | None = None, last_event_id: str | None = None
    ) -> AsyncGenerator[Event, None]:
        async for message in self._client._sse("/v1/inbox/stream", event_type, last_event_id):
            yield _core.parse_event_data(message)


# -- keys and audit logs --------------------------------------------------------------------------
class Keys(_Sync):
    def list(self) -> list[ApiKey]:
        return self._client._call(_core.list_keys())

    def create(
        self,
        name: str,
        scopes: Sequence[str] | None = None,
        rate_limit: int | None = None,
        expires_at: Timestamp = None,
    ) -> CreatedApiKey:
        """A new key for your user; ``api_key`` (the plaintext) is in this answer only."""
        return self._client._call(_core.create_key(name, scopes, rate_limit, expires_at))

    def revoke(self, key_id: str) -> None:
        self._client._call(_core.revoke_key(key_id))


class AsyncKeys(_Async):
    async def list(self) -> list[ApiKey]:
        return await self._client._call(_core.list_keys())

    async def create(
        self,
        name: str,
        scopes: Sequence[str] | None = None,
        rate_limit: int | None = None,
        expires_at: Timestamp = None,
    ) -> CreatedApiKey:
        return await self._client._call(_core.create_key(name, scopes, rate_limit, expires_at))

    async def revoke(self, key_id: str) -> None:
        await self._client._call(_core.revoke_key(key_id))


class AuditLogs(_Sync):
    def list(
        self,
        event_id: str | None = None,
        action: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> AuditPage:
        """One page of your audit records, newest first."""
        return self._client._call(_core.list_audit_logs(event_id, action, limit, cursor))

    def iter(self, event_id: str | None = None, action: str | None = None) -> Iterator[AuditLog]:
        cursor: str | None = None
        while True:
            page = self.list(event_id, action, 200, cursor)
            yield from page.audit_logs
            if page.next_cursor is None:
                return
            cursor = page.next_cursor


class AsyncAuditLogs(_Async):
    async def list(
        self,
        event_id: str | None = None,
        action: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> AuditPage:
        return await self._client._call(_core.list_audit_logs(event_id, action, limit, cursor))

    async def iter(self, event_id: str | None = None, action: str | None = None) -> AsyncIterator[AuditLog]:
        cursor: str | None = None
        while True:
            page = await self.list(event_id, action, 200, cursor)
            for record in page.audit_logs:
                yield record
            if page.next_cursor is None:
                return
            cursor = page.next_cursor
