"""The resources of each client. Every method is one :class:`~triggers_client._core.Call` builder
sent by the client, so the sync and async classes stay line-for-line the same.

To add a resource: write its ``Call`` builders in ``_core.py``, a sync and an async class here,
and attach both in ``_client.py``.
"""

from __future__ import annotations

import builtins
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
    CreatedSubscription,
    Event,
    EventPage,
    EventStatus,
    EventType,
    EventTypeVersion,
    InferredSchema,
    ReplayAccepted,
    Subscription,
    SubscriptionTest,
    ValidationResult,
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


# -- subscriptions --------------------------------------------------------------------------------
class Subscriptions(_Sync):
    def create(
        self,
        target_url: str,
        event_types: Sequence[str] | None = None,
        filter: Mapping[str, Any] | None = None,
        description: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> CreatedSubscription:
        """Subscribe ``target_url`` to ``event_types`` (exact, or ``order.*``; none: every type);
        ``signing_secret`` is in this answer only. :class:`TriggersError` with code
        ``DESTINATION_NOT_ALLOWED`` when the server refuses the target (private address, ...)."""
        return self._client._call(
            _core.create_subscription(target_url, event_types, filter, description, metadata)
        )

    def list(self) -> list[Subscription]:
        return self._client._call(_core.list_subscriptions())

    def get(self, subscription_id: str) -> Subscription:
        return self._client._call(_core.get_subscription(subscription_id))

    def update(
        self,
        subscription_id: str,
        *,
        target_url: str | None = None,
        event_types: Sequence[str] | None = None,
        filter: Mapping[str, Any] | None = None,
        clear_filter: bool = False,
        description: str | None = None,
        status: str | None = None,
    ) -> Subscription:
        """Change only the fields given; ``status`` "paused" or "active" (which re-enables a
        disabled one); ``clear_filter=True`` removes the filter."""
        return self._client._call(
            _core.update_subscription(
                subscription_id, target_url, event_types, filter, clear_filter, description, status
            )
        )

    def delete(self, subscription_id: str) -> None:
        """Unsubscribe; pending deliveries to it are cancelled."""
        self._client._call(_core.delete_subscription(subscription_id))

    def rotate_secret(self, subscription_id: str) -> str:
        """The new signing secret; the old one keeps signing alongside it for 24 h."""
        return self._client._call(_core.rotate_subscription_secret(subscription_id))

    def test(self, subscription_id: str) -> SubscriptionTest:
        """Queue a ``triggers.test`` event for this subscription only."""
        return self._client._call(_core.send_subscription_test(subscription_id))


class AsyncSubscriptions(_Async):
    async def create(
        self,
        target_url: str,
        event_types: Sequence[str] | None = None,
        filter: Mapping[str, Any] | None = None,
        description: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> CreatedSubscription:
        return await self._client._call(
            _core.create_subscription(target_url, event_types, filter, description, metadata)
        )

    async def list(self) -> list[Subscription]:
        return await self._client._call(_core.list_subscriptions())

    async def get(self, subscription_id: str) -> Subscription:
        return await self._client._call(_core.get_subscription(subscription_id))

    async def update(
        self,
        subscription_id: str,
        *,
        target_url: str | None = None,
        event_types: Sequence[str] | None = None,
        filter: Mapping[str, Any] | None = None,
        clear_filter: bool = False,
        description: str | None = None,
        status: str | None = None,
    ) -> Subscription:
        return await self._client._call(
            _core.update_subscription(
                subscription_id, target_url, event_types, filter, clear_filter, description, status
            )
        )

    async def delete(self, subscription_id: str) -> None:
        await self._client._call(_core.delete_subscription(subscription_id))

    async def rotate_secret(self, subscription_id: str) -> str:
        return await self._client._call(_core.rotate_subscription_secret(subscription_id))

    async def test(self, subscription_id: str) -> SubscriptionTest:
        return await self._client._call(_core.send_subscription_test(subscription_id))


# -- event types ----------------------------------------------------------------------------------
class EventTypes(_Sync):
    def put(
        self,
        event_type: str,
        schema: Mapping[str, Any],
        mode: str | None = None,
        description: str | None = None,
    ) -> EventType:
        """Register or update the type's JSON Schema; ``mode`` "enforce" (the server's default),
        "warn" or "off". An invalid schema raises :class:`ValidationError`."""
        return self._client._call(_core.put_event_type(event_type, schema, mode, description))

    def list(self) -> list[EventType]:
        """Registered types, and types sent in the last 30 days without a schema."""
        return self._client._call(_core.list_event_types())

    def get(self, event_type: str) -> EventType:
        return self._client._call(_core.get_event_type(event_type))

    def versions(self, event_type: str) -> builtins.list[EventTypeVersion]:
        """Every schema version the type had, oldest first."""
        return self._client._call(_core.event_type_versions(event_type))

    def delete(self, event_type: str) -> None:
        """Unregister the type: validation stops (versions and audit records are kept)."""
        self._client._call(_core.delete_event_type(event_type))

    def infer(self, event_type: str) -> InferredSchema:
        """A schema inferred from your most recent events of the type."""
        return self._client._call(_core.infer_event_type(event_type))

    def validate(
        self, event_type: str, payload: Mapping[str, Any], schema: Mapping[str, Any] | None = None
    ) -> ValidationResult:
        """Dry run against the registered schema (or ``schema``, a draft); stores nothing."""
        return self._client._call(_core.validate_payload(event_type, payload, schema))


class AsyncEventTypes(_Async):
    async def put(
        self,
        event_type: str,
        schema: Mapping[str, Any],
        mode: str | None = None,
        description: str | None = None,
    ) -> EventType:
        return await self._client._call(_core.put_event_type(event_type, schema, mode, description))

    async def list(self) -> list[EventType]:
        return await self._client._call(_core.list_event_types())

    async def get(self, event_type: str) -> EventType:
        return await self._client._call(_core.get_event_type(event_type))

    async def versions(self, event_type: str) -> builtins.list[EventTypeVersion]:
        return await self._client._call(_core.event_type_versions(event_type))

    async def delete(self, event_type: str) -> None:
        await self._client._call(_core.delete_event_type(event_type))

    async def infer(self, event_type: str) -> InferredSchema:
        return await self._client._call(_core.infer_event_type(event_type))

    async def validate(
        self, event_type: str, payload: Mapping[str, Any], schema: Mapping[str, Any] | None = None
    ) -> ValidationResult:
        return await self._client._call(_core.validate_payload(event_type, payload, schema))
