"""``subscriptions`` and ``event_types`` on both clients, against the session's live server."""

from __future__ import annotations

import json
import uuid

import pytest

from conftest import FlakyProxy, Receiver, Server
from triggers_client import (
    APIError,
    AsyncTriggersClient,
    CreatedSubscription,
    EventType,
    EventTypeVersion,
    NotFoundError,
    Subscription,
    TriggersClient,
    TriggersError,
    ValidationError,
    webhooks,
)

SCHEMA = {
    "type": "object",
    "properties": {"order_id": {"type": "string"}, "amount": {"type": "number", "minimum": 0}},
    "required": ["order_id", "amount"],
}


def client_of(server: Server) -> TriggersClient:
    return TriggersClient(base_url=server.url, api_key=server.api_key, retry_backoff=0.01)


def async_client_of(server: Server) -> AsyncTriggersClient:
    return AsyncTriggersClient(base_url=server.url, api_key=server.api_key, retry_backoff=0.01)


def test_subscriptions_every_method(server: Server, receiver: Receiver, event_type: str) -> None:
    with client_of(server) as client:
        created = client.subscriptions.create(
            receiver.url,
            event_types=[event_type, "sdk.*"],
            filter={"payload.amount": {"$gte": 100}},
            description="sdk test",
            metadata={"team": "sdk"},
        )
        assert isinstance(created, CreatedSubscription)
        assert created.signing_secret.startswith("whsec_") and created.status == "active"
        assert (created.target_url, created.event_types, created.filter, created.metadata) == (
            receiver.url,
            [event_type, "sdk.*"],
            {"payload.amount": {"$gte": 100}},
            {"team": "sdk"},
        )
        assert created.created_at.tzinfo is not None

        got = client.subscriptions.get(created.subscription_id)
        assert isinstance(got, Subscription) and got.subscription_id == created.subscription_id
        assert got.description == "sdk test" and got.health is not None
        assert created.subscription_id in [s.subscription_id for s in client.subscriptions.list()]

        paused = client.subscriptions.update(created.subscription_id, status="paused", description="later")
        assert (paused.status, paused.description, paused.filter) == (
            "paused",
            "later",
            {"payload.amount": {"$gte": 100}},
        )
        cleared = client.subscriptions.update(created.subscription_id, clear_filter=True, status="active")
        assert (cleared.status, cleared.filter) == ("active", None)

        secret = client.subscriptions.rotate_secret(created.subscription_id)
        assert secret.startswith("whsec_") and secret != created.signing_secret

        sent = client.subscriptions.test(created.subscription_id)
        uuid.UUID(sent.event_id)
        push = receiver.wait_for(1)[0]
        event = webhooks.verify(push.body, push.headers, secret)
        assert (event.event_id, event.event_type) == (sent.event_id, "triggers.test")
        assert json.loads(push.body)["event_id"] == sent.event_id

        client.subscriptions.delete(created.subscription_id)
        with pytest.raises(NotFoundError):
            client.subscriptions.get(created.subscription_id)
        assert created.subscription_id not in [s.subscription_id for s in client.subscriptions.list()]


def test_subscription_errors(server: Server, receiver: Receiver) -> None:
    with client_of(server) as client:
        unknown = str(uuid.uuid4())
        for call in (
            lambda: client.subscriptions.get(unknown),
            lambda: client.subscriptions.update(unknown, status="paused"),
            lambda: client.subscriptions.delete(unknown),
            lambda: client.subscriptions.rotate_secret(unknown),
            lambda: client.subscriptions.test(unknown),
        ):
            with pytest.raises(NotFoundError) as missing:
                call()
            assert (missing.value.status, missing.value.code) == (404, "NOT_FOUND")
        with pytest.raises(ValidationError) as invalid:
            client.subscriptions.create(receiver.url, filter={"payload.amount": {"$bogus": 1}})
        assert invalid.value.status == 400 and "filter.payload.amount.$bogus" in invalid.value.details
        with pytest.raises(TriggersError) as refused:  # private, and not in the allowlist
            client.subscriptions.create("http://10.1.2.3:8080/hook")
        assert (refused.value.status, refused.value.code) == (400, "DESTINATION_NOT_ALLOWED")
        assert "http://10.1.2.3:8080/hook" not in [s.target_url for s in client.subscriptions.list()]


def test_retries_repeat_only_what_is_safe_to_repeat(
    proxy: FlakyProxy, server: Server, receiver: Receiver, event_type: str
) -> None:
    with TriggersClient(base_url=proxy.url, api_key=server.api_key, retry_backoff=0.01) as client:
        proxy.fail_next(1)  # a PUT of a schema is idempotent: retried, one version stored
        assert client.event_types.put(event_type, SCHEMA).version == 1
        assert proxy.count == 2
        assert [v.version for v in client.event_types.versions(event_type)] == [1]
        created = client.subscriptions.create(receiver.url, event_types=[event_type])
        proxy.fail_next(1)  # PATCH sets fields: retried
        assert client.subscriptions.update(created.subscription_id, status="paused").status == "paused"
        assert proxy.count == 2
        for call in (
            lambda: client.subscriptions.create(receiver.url),  # would subscribe twice
            lambda: client.subscriptions.rotate_secret(created.subscription_id),  # would rotate twice
        ):
            proxy.fail_next(1)
            with pytest.raises(APIError):
                call()
            assert proxy.count == 1
        client.subscriptions.delete(created.subscription_id)


def test_event_types_every_method(server: Server, event_type: str) -> None:
    with client_of(server) as client:
        first = client.event_types.put(event_type, SCHEMA, mode="enforce", description="orders")
        assert isinstance(first, EventType)
        assert (first.event_type, first.version, first.schema, first.mode, first.description) == (
            event_type,
            1,
            SCHEMA,
            "enforce",
            "orders",
        )
        loose = {**SCHEMA, "required": ["order_id"]}
        second = client.event_types.put(event_type, loose, mode="warn")
        assert (second.version, second.mode) == (2, "warn")

        got = client.event_types.get(event_type)
        assert (got.version, got.schema, got.mode) == (2, loose, "warn")
        assert event_type in [t.event_type for t in client.event_types.list()]
        versions = client.event_types.versions(event_type)
        assert all(isinstance(v, EventTypeVersion) for v in versions)
        assert [(v.version, v.schema, v.mode) for v in versions] == [
            (1, SCHEMA, "enforce"),
            (2, loose, "warn"),
        ]

        ok = client.event_types.validate(event_type, {"order_id": "o1"})
        assert (ok.valid, ok.errors, ok.version) == (True, [], 2)
        draft = client.event_types.validate(event_type, {"order_id": "o1", "amount": -1}, schema=SCHEMA)
        assert not draft.valid and draft.version is None
        assert [e.path for e in draft.errors] == ["/payload/amount"] and draft.errors[0].message

        client.events.create(event_type, {"order_id": "o2", "amount": 3.5})
        inferred = client.event_types.infer(event_type)
        assert inferred.sample_size == 1
        assert inferred.schema["properties"]["amount"]["type"] == "number"

        client.event_types.delete(event_type)
        after = client.event_types.get(event_type)  # still seen (an event was sent), no schema now
        assert (after.schema, after.version, after.events_last_24h) == (None, None, 1)


def test_event_type_errors(server: Server, event_type: str) -> None:
    with client_of(server) as client:
        with pytest.raises(NotFoundError) as missing:
            client.event_types.get(event_type)  # never registered nor seen
        assert (missing.value.status, missing.value.code) == (404, "NOT_FOUND")
        with pytest.raises(NotFoundError):
            client.event_types.delete(event_type)
        with pytest.raises(ValidationError) as invalid:
            client.event_types.put(event_type, {"type": "no-such-type"})
        assert invalid.value.status == 400 and invalid.value.details


async def test_async_subscriptions_and_event_types(
    server: Server, receiver: Receiver, event_type: str
) -> None:
    async with async_client_of(server) as client:
        created = await client.subscriptions.create(receiver.url, event_types=[event_type])
        assert isinstance(created, CreatedSubscription) and created.signing_secret.startswith("whsec_")
        assert (await client.subscriptions.get(created.subscription_id)).target_url == receiver.url
        assert created.subscription_id in [s.subscription_id for s in await client.subscriptions.list()]
        updated = await client.subscriptions.update(created.subscription_id, event_types=["sdk.*"])
        assert updated.event_types == ["sdk.*"]
        secret = await client.subscriptions.rotate_secret(created.subscription_id)
        sent = await client.subscriptions.test(created.subscription_id)
        push = receiver.wait_for(1)[0]
        assert webhooks.verify(push.body, push.headers, secret).event_id == sent.event_id
        await client.subscriptions.delete(created.subscription_id)
        with pytest.raises(NotFoundError):
            await client.subscriptions.get(created.subscription_id)
        with pytest.raises(TriggersError) as refused:
            await client.subscriptions.create("http://10.1.2.3:8080/hook")
        assert refused.value.code == "DESTINATION_NOT_ALLOWED"
        with pytest.raises(ValidationError):
            await client.subscriptions.create(receiver.url, filter={"nowhere.x": 1})

        registered = await client.event_types.put(event_type, SCHEMA)
        assert (registered.version, registered.mode) == (1, "enforce")
        assert (await client.event_types.get(event_type)).schema == SCHEMA
        assert event_type in [t.event_type for t in await client.event_types.list()]
        assert [v.version for v in await client.event_types.versions(event_type)] == [1]
        result = await client.event_types.validate(event_type, {"order_id": "o1"})
        assert not result.valid and result.version == 1
        await client.events.create(event_type, {"order_id": "o1", "amount": 1})
        assert (await client.event_types.infer(event_type)).sample_size == 1
        await client.event_types.delete(event_type)
        assert (await client.event_types.get(event_type)).schema is None
        with pytest.raises(NotFoundError):
            await client.event_types.get(f"{event_type}.unknown")
        with pytest.raises(ValidationError):
            await client.event_types.put(event_type, {"type": 12})
