"""The blocking client against a live server: every method, pagination, each error, retries."""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path

import pytest
from standardwebhooks import Webhook

import triggers_client
from conftest import WEBHOOK_SECRET, FlakyProxy, Received, Receiver, Server, make_server
from triggers_client import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    BatchItemError,
    ConflictError,
    CreatedEvent,
    GoneError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    TriggersClient,
    TriggersError,
    ValidationError,
    webhooks,
)


def client_of(server: Server, **kwargs: object) -> TriggersClient:
    return TriggersClient(base_url=server.url, api_key=server.api_key, retry_backoff=0.01, **kwargs)  # type: ignore[arg-type]


def test_event_lifecycle_create_get_status_acknowledge(server: Server, event_type: str) -> None:
    with client_of(server) as client:
        created = client.events.create(event_type, {"order": 42, "items": ["a", "b"]})
        assert isinstance(created, CreatedEvent) and created.status == "received" and not created.replayed
        event = client.events.get(created.event_id)
        assert (event.event_id, event.event_type, event.payload) == (
            created.event_id,
            event_type,
            {"order": 42, "items": ["a", "b"]},
        )
        assert event.timestamp == created.timestamp and event.timestamp.tzinfo is not None
        assert event.metadata.api_version
        status = client.events.status(created.event_id)
        assert (status.event_id, status.status, status.acknowledged_at) == (
            created.event_id,
            "received",
            None,
        )
        client.events.acknowledge(created.event_id)
        assert client.events.status(created.event_id).acknowledged_at is not None
        with pytest.raises(GoneError) as gone:
            client.events.acknowledge(created.event_id)
        assert (gone.value.status, gone.value.code) == (410, "EVENT_GONE") and gone.value.request_id
        with pytest.raises(NotFoundError):
            client.events.get(created.event_id)  # acknowledged: the payload is gone


def test_explicit_idempotency_key_replays_the_first_answer(server: Server, event_type: str) -> None:
    with client_of(server) as client:
        first = client.events.create(event_type, {"n": 1}, idempotency_key="order-1")
        again = client.events.create(event_type, {"n": 1}, idempotency_key="order-1")
        assert again.event_id == first.event_id and again.replayed
        with pytest.raises(ValidationError) as reused:  # same key, other body: 422
            client.events.create(event_type, {"n": 2}, idempotency_key="order-1")
        assert (reused.value.status, reused.value.code) == (422, "IDEMPOTENCY_KEY_REUSED")
        assert len(client.inbox.list(event_type=event_type).events) == 1


def test_create_batch_gives_one_result_per_item(server: Server, event_type: str) -> None:
    with client_of(server) as client:
        result = client.events.create_batch(
            [
                {"event_type": event_type, "payload": {"i": 0}},
                {"event_type": "bad type!", "payload": {}},
                {"event_type": event_type, "payload": {"i": 2}},
            ]
        )
        assert (result.success_count, result.failure_count) == (2, 1)
        first, refused, third = result.results
        assert isinstance(first, CreatedEvent) and isinstance(third, CreatedEvent)
        assert (
            isinstance(refused, BatchItemError) and refused.index == 1 and refused.code == "VALIDATION_ERROR"
        )
        assert [e.payload for e in client.inbox.iter(event_type=event_type)] == [{"i": 0}, {"i": 2}]


def test_inbox_and_events_paginate_across_pages(server: Server, event_type: str) -> None:
    with client_of(server) as client:
        batch = client.events.create_batch(
            [{"event_type": event_type, "payload": {"i": i}} for i in range(7)]
        )
        ids = [r.event_id for r in batch.results if isinstance(r, CreatedEvent)]
        pages = []
        cursor = None
        while True:
            page = client.inbox.list(event_type=event_type, limit=3, cursor=cursor)
            pages.append([e.event_id for e in page.events])
            if page.next_cursor is None:
                assert not page.has_more
                break
            assert page.has_more
            cursor = page.next_cursor
        assert [len(p) for p in pages] == [3, 3, 1]
        assert [i for p in pages for i in p] == ids  # oldest first, no gap, no repeat
        assert [e.event_id for e in client.inbox.iter(event_type=event_type, page_size=2)] == ids
        assert [e.event_id for e in client.events.iter(event_type=event_type, page_size=2)] == ids[::-1]
        newest = client.events.list(event_type=event_type, limit=4)
        assert [e.event_id for e in newest.events] == ids[:2:-1] and newest.next_cursor
        assert client.inbox.list(event_type=event_type, status="failed").events == []


def test_inbox_time_filters(server: Server, event_type: str) -> None:
    with client_of(server) as client:
        first = client.events.create(event_type, {"i": 1})
        time.sleep(0.01)
        second = client.events.create(event_type, {"i": 2})
        later = client.inbox.list(event_type=event_type, from_timestamp=second.timestamp)
        assert [e.event_id for e in later.events] == [second.event_id]
        earlier = client.inbox.list(event_type=event_type, to_timestamp=first.timestamp.isoformat())
        assert [e.event_id for e in earlier.events] == [first.event_id]


def test_acknowledge_many_reports_each_id(server: Server, event_type: str) -> None:
    with client_of(server) as client:
        ids = [client.events.create(event_type, {"i": i}).event_id for i in range(3)]
        unknown = str(uuid.uuid4())
        results = client.events.acknowledge_many([*ids[:2], unknown])
        assert [(r.event_id, r.result) for r in results] == [
            (ids[0], "acknowledged"),
            (ids[1], "acknowledged"),
            (unknown, "not_found"),
        ]
        assert [r.result for r in client.events.acknowledge_many(ids)] == [
            "already_acknowledged",
            "already_acknowledged",
            "acknowledged",
        ]
        assert client.inbox.list(event_type=event_type).events == []


def test_keys_list_create_revoke(server: Server) -> None:
    with client_of(server) as client:
        created = client.keys.create("sdk-test", scopes=["events:write"], rate_limit=500)
        assert created.api_key.startswith("tk_") and created.scopes == ["events:write"]
        assert created.key_id in [k.key_id for k in client.keys.list()]
        with TriggersClient(base_url=server.url, api_key=created.api_key) as writer:
            writer.events.create("sdk.keytest", {})
            with pytest.raises(PermissionDeniedError) as denied:
                writer.inbox.list()
            assert (denied.value.status, denied.value.code) == (403, "FORBIDDEN")
        client.keys.revoke(created.key_id)
        revoked = next(k for k in client.keys.list() if k.key_id == created.key_id)
        assert not revoked.is_active and revoked.revoked_at is not None
        with TriggersClient(base_url=server.url, api_key=created.api_key, max_retries=0) as writer:
            with pytest.raises(AuthenticationError) as unauthorized:
                writer.events.create("sdk.keytest", {})
        assert (unauthorized.value.status, unauthorized.value.code) == (401, "UNAUTHORIZED")


def test_audit_logs_list_and_iter(server: Server, event_type: str) -> None:
    with client_of(server) as client:
        created = client.events.create(event_type, {})
        client.events.acknowledge(created.event_id)
        records = client.audit_logs.list(event_id=created.event_id)
        assert {r.action for r in records.audit_logs} >= {"event.created", "event.acknowledged"}
        assert all(r.event_id == created.event_id for r in records.audit_logs)
        page = client.audit_logs.list(limit=1)
        assert len(page.audit_logs) == 1 and page.has_more
        second = client.audit_logs.list(limit=1, cursor=page.next_cursor)
        assert second.audit_logs[0].log_id != page.audit_logs[0].log_id
        assert len(list(client.audit_logs.iter(action="event.acknowledged"))) >= 1


def test_errors_map_to_their_classes(server: Server, event_type: str) -> None:
    with client_of(server) as client:
        with pytest.raises(ValidationError) as invalid:
            client.events.create("bad type!", {})
        assert (invalid.value.status, invalid.value.code) == (400, "VALIDATION_ERROR")
        assert invalid.value.details and invalid.value.request_id
        with pytest.raises(NotFoundError) as missing:
            client.events.get(str(uuid.uuid4()))
        assert (missing.value.status, missing.value.code) == (404, "NOT_FOUND")
        received = client.events.create(event_type, {})
        with pytest.raises(ConflictError) as conflict:  # not a dead letter
            client.events.replay(received.event_id)
        assert (conflict.value.status, conflict.value.code) == (409, "EVENT_NOT_REPLAYABLE")
        assert all(isinstance(e, TriggersError) for e in (invalid.value, missing.value, conflict.value))
    with TriggersClient(base_url=server.url, api_key="tk_" + "x" * 43, max_retries=0) as stranger:
        with pytest.raises(AuthenticationError):
            stranger.inbox.list()


def test_rate_limit_error_carries_retry_after(server: Server) -> None:
    with client_of(server) as admin:
        limited = admin.keys.create("sdk-limited", rate_limit=1)
    with TriggersClient(base_url=server.url, api_key=limited.api_key, max_retries=0) as client:
        client.inbox.list()
        with pytest.raises(RateLimitError) as limit:
            client.inbox.list()
    assert (limit.value.status, limit.value.code) == (429, "RATE_LIMIT_EXCEEDED")
    assert limit.value.retry_after is not None and limit.value.retry_after > 0


def test_connection_error_after_retries() -> None:
    with TriggersClient(
        base_url=f"http://127.0.0.1:{_closed_port()}", api_key="tk_x", max_retries=2, retry_backoff=0.01
    ) as client:
        with pytest.raises(APIConnectionError):
            client.inbox.list()


def _closed_port() -> int:
    from conftest import free_port

    return free_port()


def test_settings_come_from_the_environment(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIGGERS_BASE_URL", server.url)
    monkeypatch.setenv("TRIGGERS_API_KEY", server.api_key)
    with TriggersClient() as client:
        assert client.base_url == server.url
        assert isinstance(client.keys.list(), list)
    monkeypatch.delenv("TRIGGERS_API_KEY")
    with pytest.raises(TriggersError):
        TriggersClient()


# -- retries, counted at the proxy (the server side of the client) --------------------------------
def test_retries_5xx_until_success(proxy: FlakyProxy, server: Server, event_type: str) -> None:
    with TriggersClient(
        base_url=proxy.url, api_key=server.api_key, max_retries=3, retry_backoff=0.01
    ) as client:
        proxy.fail_next(2, status=503)
        page = client.inbox.list(event_type=event_type)
        assert page.events == [] and proxy.count == 3
        proxy.fail_next(1, status=429, **{"Retry-After": "0"})
        created = client.events.create(event_type, {"a": 1})
        assert proxy.count == 2
        proxy.fail_next(5, status=500)
        with pytest.raises(APIError) as failed:
            client.events.get(created.event_id)
        assert failed.value.status == 500 and failed.value.request_id == "req_injected"
        assert proxy.count == 4  # the first try and max_retries=3 more


def test_a_retried_create_stores_once(proxy: FlakyProxy, server: Server, event_type: str) -> None:
    """The server stores the event but the answer is lost twice: the retries carry the same
    generated idempotency key, so the third answer replays the first and nothing is stored twice."""
    with TriggersClient(
        base_url=proxy.url, api_key=server.api_key, max_retries=3, retry_backoff=0.01
    ) as client:
        proxy.fail_next(2, mode="drop")
        created = client.events.create(event_type, {"once": True})
        assert proxy.count == 3 and created.replayed
        proxy.fail_next(1, mode="drop")
        batch = client.events.create_batch([{"event_type": event_type, "payload": {"batch": True}}])
        assert proxy.count == 2 and batch.replayed
    with client_of(server) as direct:
        payloads = [e.payload for e in direct.inbox.iter(event_type=event_type)]
    assert payloads == [{"once": True}, {"batch": True}]


def test_a_retried_acknowledgement_whose_answer_was_lost_succeeds(
    proxy: FlakyProxy, server: Server, event_type: str
) -> None:
    with client_of(server) as direct:
        event_id = direct.events.create(event_type, {}).event_id
    with TriggersClient(
        base_url=proxy.url, api_key=server.api_key, max_retries=2, retry_backoff=0.01
    ) as client:
        proxy.fail_next(1, mode="drop")  # acknowledged on the server; the 204 is lost
        client.events.acknowledge(event_id)  # the retry's 410 means "already done"
        assert proxy.count == 2
        with pytest.raises(GoneError):  # a first attempt's 410 is still an error
            client.events.acknowledge(event_id)


def test_unsafe_posts_are_not_retried(proxy: FlakyProxy, server: Server) -> None:
    with TriggersClient(
        base_url=proxy.url, api_key=server.api_key, max_retries=3, retry_backoff=0.01
    ) as client:
        proxy.fail_next(1, status=503)
        with pytest.raises(APIError):
            client.keys.create("never-twice")
        assert proxy.count == 1
        proxy.fail_next(1, mode="drop")
        with pytest.raises(APIConnectionError):
            client.events.replay_failed(event_type="nothing.here")
        assert proxy.count == 1


# -- the live stream --------------------------------------------------------------------------------
def test_stream_resumes_after_the_server_drops_the_connection(server: Server, event_type: str) -> None:
    with client_of(server) as client:
        anchor = client.events.create(event_type, {"i": -1})
        stream = client.inbox.stream(event_type=event_type, last_event_id=anchor.event_id)
        sent = [client.events.create(event_type, {"i": i}).event_id for i in range(3)]
        got = [next(stream).event_id for _ in range(3)]
        server.stop()  # the server goes away (SIGTERM ends its streams): the connection drops
        server.start()  # same port, same database
        sent += [client.events.create(event_type, {"i": i}).event_id for i in range(3, 6)]
        client.events.create("other.type", {})  # filtered out
        got += [next(stream).event_id for _ in range(3)]
        stream.close()
    assert got == sent


# -- receivers ------------------------------------------------------------------------------------
def test_webhooks_verify_accepts_the_reference_signature_and_refuses_tampering() -> None:
    body = json.dumps(
        {
            "event_id": str(uuid.uuid4()),
            "user_id": "u",
            "event_type": "a.b",
            "payload": {"x": 1},
            "status": "queued",
            "timestamp": "2026-01-01T00:00:00.000001Z",
            "ttl": 1,
            "retry_count": 0,
            "metadata": {"api_version": "v1", "correlation_id": "c"},
        }
    ).encode()
    now = int(time.time())
    headers = webhooks.sign(body, "msg_1", WEBHOOK_SECRET, timestamp=now)
    Webhook(WEBHOOK_SECRET).verify(body, headers)  # the reference library agrees with our signer
    assert webhooks.verify(body, headers, WEBHOOK_SECRET).payload == {"x": 1}
    with pytest.raises(webhooks.WebhookVerificationError):
        webhooks.verify(body.replace(b'"x": 1', b'"x": 2'), headers, WEBHOOK_SECRET)
    stale = webhooks.sign(body, "msg_1", WEBHOOK_SECRET, timestamp=now - 3600)
    with pytest.raises(webhooks.WebhookVerificationError):
        webhooks.verify(body, stale, WEBHOOK_SECRET)
    with pytest.raises(webhooks.WebhookVerificationError):
        webhooks.verify(body, {"webhook-id": "msg_1"}, WEBHOOK_SECRET)


def test_pushed_events_verify_and_dead_letters_replay(tmp_path: Path) -> None:
    """The server pushes to a receiver that checks each request with ``webhooks.verify`` and
    refuses it (400), so every event becomes a dead letter; then ``replay`` and ``replay_failed``."""
    verified: list[str] = []
    lock = threading.Lock()

    def refuse_after_verifying(request: Received) -> int:
        event = webhooks.verify(request.body, request.headers, WEBHOOK_SECRET)
        with lock:
            verified.append(event.event_id)
        return 400

    receiver = Receiver(refuse_after_verifying)
    server = make_server(
        tmp_path / "push",
        TRIGGERS_WORKFLOW_URL=receiver.url,
        TRIGGERS_SIGNING_SECRET=WEBHOOK_SECRET,
        TRIGGERS_DELIVERY_POLL_INTERVAL="0.05",
    )
    try:
        with client_of(server) as client:
            ids = [client.events.create("push.test", {"i": i}).event_id for i in range(2)]
            receiver.wait_for(2)
            _wait_until(lambda: all(client.events.status(i).status == "failed" for i in ids))
            assert sorted(verified) == sorted(ids)
            accepted = client.events.replay(ids[0])
            assert (accepted.event_id, accepted.status) == (ids[0], "queued")
            receiver.wait_for(3)
            _wait_until(lambda: client.events.status(ids[0]).status == "failed")
            assert client.events.replay_failed(event_type="push.test") == 2
            receiver.wait_for(5)
            assert client.events.replay_failed(event_type="no.such.type") == 0
            assert len(client.events.status(ids[0]).attempts) >= 2
    finally:
        server.stop()
        receiver.close()


def _wait_until(condition: object, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_version_is_exported() -> None:
    assert triggers_client.__version__
