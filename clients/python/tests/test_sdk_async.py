"""``AsyncTriggersClient``: the same surface, awaited, against the same live server."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from conftest import FlakyProxy, Server
from triggers_client import (
    APIError,
    AsyncTriggersClient,
    AuthenticationError,
    BatchItemError,
    ConflictError,
    CreatedEvent,
    Event,
    GoneError,
    NotFoundError,
    ValidationError,
)


def client_of(url: str, server: Server, **kwargs: object) -> AsyncTriggersClient:
    return AsyncTriggersClient(base_url=url, api_key=server.api_key, retry_backoff=0.01, **kwargs)  # type: ignore[arg-type]


async def test_async_events_inbox_and_acknowledgement(server: Server, event_type: str) -> None:
    async with client_of(server.url, server) as client:
        created = await client.events.create(event_type, {"n": 1})
        event = await client.events.get(created.event_id)
        assert isinstance(event, Event) and event.payload == {"n": 1}
        assert (await client.events.status(created.event_id)).status == "received"
        batch = await client.events.create_batch(
            [{"event_type": event_type, "payload": {"n": n}} for n in (2, 3, 4)]
            + [{"event_type": "bad type!", "payload": {}}]
        )
        assert (batch.success_count, batch.failure_count) == (3, 1)
        assert isinstance(batch.results[3], BatchItemError)
        ids = [created.event_id] + [r.event_id for r in batch.results if isinstance(r, CreatedEvent)]
        page = await client.inbox.list(event_type=event_type, limit=3)
        rest = await client.inbox.list(event_type=event_type, limit=3, cursor=page.next_cursor)
        assert [e.event_id for e in page.events + rest.events] == ids and rest.next_cursor is None
        assert [e.event_id async for e in client.inbox.iter(event_type=event_type, page_size=1)] == ids
        assert [e.event_id async for e in client.events.iter(event_type=event_type, page_size=3)] == ids[::-1]
        assert (await client.events.list(event_type=event_type, limit=2)).has_more
        await client.events.acknowledge(ids[0])
        with pytest.raises(GoneError):
            await client.events.acknowledge(ids[0])
        results = await client.events.acknowledge_many(ids)
        assert [r.result for r in results] == ["already_acknowledged"] + ["acknowledged"] * 3
        assert (await client.inbox.list(event_type=event_type)).events == []
        with pytest.raises(ConflictError):
            await client.events.replay((await client.events.create(event_type, {})).event_id)
        assert await client.events.replay_failed(event_type=event_type) == 0


async def test_async_keys_audit_and_errors(server: Server, event_type: str) -> None:
    async with client_of(server.url, server) as client:
        key = await client.keys.create("async-test", scopes=["events:read"])
        assert key.key_id in [k.key_id for k in await client.keys.list()]
        await client.keys.revoke(key.key_id)
        async with AsyncTriggersClient(base_url=server.url, api_key=key.api_key, max_retries=0) as revoked:
            with pytest.raises(AuthenticationError):
                await revoked.inbox.list()
        created = await client.events.create(event_type, {})
        logs = await client.audit_logs.list(event_id=created.event_id)
        assert [r.action for r in logs.audit_logs] == ["event.created"]
        assert [r.log_id async for r in client.audit_logs.iter(event_id=created.event_id)] == [
            logs.audit_logs[0].log_id
        ]
        with pytest.raises(NotFoundError):
            await client.events.status(str(uuid.uuid4()))
        with pytest.raises(ValidationError):
            await client.inbox.list(limit=0)


async def test_async_retries_and_single_storage(proxy: FlakyProxy, server: Server, event_type: str) -> None:
    async with client_of(proxy.url, server, max_retries=3) as client:
        proxy.fail_next(2, status=502)
        assert (await client.inbox.list(event_type=event_type)).events == []
        assert proxy.count == 3
        proxy.fail_next(2, mode="drop")
        created = await client.events.create(event_type, {"once": True})
        assert proxy.count == 3 and created.replayed
        proxy.fail_next(9, status=503)
        with pytest.raises(APIError):
            await client.events.get(created.event_id)
        assert proxy.count == 4
    async with client_of(server.url, server) as direct:
        assert [e.event_id async for e in direct.inbox.iter(event_type=event_type)] == [created.event_id]


async def test_async_stream_resumes_after_the_connection_drops(
    proxy: FlakyProxy, server: Server, event_type: str
) -> None:
    async with client_of(server.url, server) as producer, client_of(proxy.url, server) as consumer:
        anchor = await producer.events.create(event_type, {"i": -1})
        stream = consumer.inbox.stream(event_type=event_type, last_event_id=anchor.event_id)
        sent = [(await producer.events.create(event_type, {"i": i})).event_id for i in range(2)]
        got = [(await stream.__anext__()).event_id for _ in range(2)]
        assert proxy.cut_streams() == 1  # the connection drops under the client
        sent += [(await producer.events.create(event_type, {"i": i})).event_id for i in range(2, 5)]
        got += [(await asyncio.wait_for(stream.__anext__(), 30)).event_id for _ in range(3)]
        await stream.aclose()
    assert got == sent
