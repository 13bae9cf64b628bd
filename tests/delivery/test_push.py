"""Pushing to the workflow engine: the request, and what each kind of answer leads to."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
from standardwebhooks import Webhook

from tests.conftest import free_port
from tests.delivery.conftest import SECRET, TOKEN, Pushing, eventually, pushing_app
from tests.delivery.receiver import Drop, Hang, Receiver, Respond, always, fail_then_succeed
from triggers_api import __version__


async def test_a_push_is_signed_per_standard_webhooks_and_carries_the_event(pushing: Pushing) -> None:
    event_id = await pushing.ingest("user.created", {"user_id": "usr_1", "email": "jane@example.com"})
    await pushing.receiver.wait_for(lambda r: len(r.requests) >= 1)
    (request,) = pushing.receiver.requests
    assert request.method == "POST" and request.path == "/v1/triggers/event"
    # verified by the independent reference library, exactly as a receiver would
    verified = Webhook(SECRET).verify(request.body, request.headers)
    assert verified["event_id"] == event_id
    assert request.headers["webhook-id"] == event_id
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"] == f"triggers-api/{__version__}"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    body = request.json()
    assert body["event_type"] == "user.created" and body["user_id"] == "alice"
    assert body["payload"] == {"user_id": "usr_1", "email": "jane@example.com"}
    assert set(body) >= {"timestamp", "ttl", "retry_count", "metadata", "status", "delivered_at"}
    # a tampered body no longer verifies
    forged = request.body.replace(b"jane", b"mallory")
    try:
        Webhook(SECRET).verify(forged, request.headers)
    except Exception as exc:
        assert type(exc).__name__ == "WebhookVerificationError"
    else:
        raise AssertionError("a tampered body verified")


async def test_without_secret_or_token_a_push_carries_neither(tmp_path: Path, receiver: Receiver) -> None:
    async with pushing_app(tmp_path, receiver, signing_secret=None, workflow_token=None) as p:
        event_id = await p.ingest()
        await receiver.wait_for(lambda r: len(r.requests) >= 1)
        headers = receiver.requests[0].headers
        assert headers["webhook-id"] == event_id and "webhook-timestamp" in headers
        assert "webhook-signature" not in headers and "authorization" not in headers


async def test_a_2xx_marks_delivered_removes_from_inbox_keeps_the_event(pushing: Pushing) -> None:
    event_id = await pushing.ingest()
    status = await pushing.wait_status(event_id, "delivered")
    assert status["delivered_at"] is not None and status["acknowledged_at"] is None
    assert status["retry_count"] == 0
    (attempt,) = status["attempts"]
    assert attempt["attempt"] == 1 and attempt["outcome"] == "delivered"
    assert attempt["response_status"] == 200 and attempt["response_body"] == '{"ok":true}'
    assert attempt["error"] is None and attempt["duration_ms"] >= 0
    inbox = (await pushing.client.get("/v1/inbox", headers=pushing.auth)).json()
    assert inbox["events"] == []
    got = await pushing.client.get(f"/v1/events/{event_id}", headers=pushing.auth)
    assert got.status_code == 200 and got.json()["status"] == "delivered"
    assert got.json()["payload"] == {"n": 1}
    (log,) = await pushing.audit("event.delivered")
    assert log["event_id"] == event_id and log["details"]["status"] == 200
    # acknowledging a pushed event afterwards drops its payload, as for any event
    assert (await pushing.client.delete(f"/v1/events/{event_id}", headers=pushing.auth)).status_code == 204
    assert (await pushing.client.get(f"/v1/events/{event_id}", headers=pushing.auth)).status_code == 404
    after = await pushing.status(event_id)
    assert after["delivered_at"] == status["delivered_at"] and after["acknowledged_at"] is not None


async def test_failures_are_retried_with_the_same_id_and_recorded(pushing: Pushing) -> None:
    pushing.receiver.script = fail_then_succeed(2)
    event_id = await pushing.ingest()
    status = await pushing.wait_status(event_id, "delivered")
    requests = [r for r in pushing.receiver.requests if r.event_id == event_id]
    assert len(requests) == 3
    for request in requests:  # each attempt signed afresh, same idempotency id
        Webhook(SECRET).verify(request.body, request.headers)
    assert status["retry_count"] == 2 and status["last_retry_at"] is not None
    assert [a["outcome"] for a in status["attempts"]] == ["retry", "retry", "delivered"]
    assert [a["response_status"] for a in status["attempts"]] == [503, 503, 200]
    assert status["attempts"][0]["error"] == "http_503"
    assert status["attempts"][0]["response_body"] == "engine busy"
    started = [a["started_at"] for a in status["attempts"]]
    assert started == sorted(started)
    assert status["last_retry_at"] == status["attempts"][2]["started_at"]


async def test_a_response_body_is_kept_to_its_first_kib(pushing: Pushing) -> None:
    pushing.receiver.script = fail_then_succeed(1, Respond(500, b"x" * 5000))
    event_id = await pushing.ingest()
    status = await pushing.wait_status(event_id, "delivered")
    assert status["attempts"][0]["response_body"] == "x" * 1024


async def test_a_hang_past_the_timeout_is_retried(tmp_path: Path, receiver: Receiver) -> None:
    receiver.script = fail_then_succeed(1, Hang(10))
    async with pushing_app(tmp_path, receiver, delivery_timeout=0.3) as p:
        event_id = await p.ingest()
        status = await p.wait_status(event_id, "delivered")
        assert [a["error"] for a in status["attempts"]] == ["timeout", None]
        assert status["attempts"][0]["response_status"] is None


async def test_a_dropped_connection_is_retried(pushing: Pushing) -> None:
    pushing.receiver.script = fail_then_succeed(2, Drop())
    event_id = await pushing.ingest()
    status = await pushing.wait_status(event_id, "delivered")
    assert [a["error"] for a in status["attempts"]] == ["connection_dropped", "connection_dropped", None]


async def test_408_and_5xx_are_retried_until_the_schedule_is_exhausted(pushing: Pushing) -> None:
    answers = iter([408, 500, 502, 504])
    pushing.receiver.script = lambda request, seen: Respond(next(answers))
    event_id = await pushing.ingest()
    status = await pushing.wait_status(event_id, "failed")
    assert [a["response_status"] for a in status["attempts"]] == [408, 500, 502, 504]
    assert [a["outcome"] for a in status["attempts"]] == ["retry", "retry", "retry", "failed"]
    assert status["retry_count"] == 3  # three retries after the first attempt: the schedule
    dead = (await pushing.client.get("/v1/inbox", params={"status": "failed"}, headers=pushing.auth)).json()
    assert [e["event_id"] for e in dead["events"]] == [event_id]
    (log,) = await pushing.audit("event.delivery_failed")
    assert log["event_id"] == event_id
    assert log["details"]["reason"] == "retries_exhausted" and log["details"]["attempt"] == 4
    await asyncio.sleep(0.3)  # well past the compressed schedule: nothing more is sent
    assert len(pushing.receiver.requests) == 4


async def test_an_unreachable_engine_is_retried_then_dead_lettered(
    tmp_path: Path, receiver: Receiver
) -> None:
    closed = f"http://127.0.0.1:{free_port()}/v1/triggers/event"  # nothing listens there
    async with pushing_app(tmp_path, receiver, workflow_url=closed, retry_schedule="0.02") as p:
        event_id = await p.ingest()
        status = await p.wait_status(event_id, "failed")
        assert [a["error"] for a in status["attempts"]] == ["connect_error", "connect_error"]


async def test_a_tls_failure_is_retried_then_dead_lettered(tmp_path: Path, receiver: Receiver) -> None:
    async def not_tls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")  # no TLS spoken here
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(not_tls, "127.0.0.1", 0)
    tls_url = f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1/triggers/event"
    try:
        async with pushing_app(tmp_path, receiver, workflow_url=tls_url, retry_schedule="0.02") as p:
            event_id = await p.ingest()
            status = await p.wait_status(event_id, "failed")
            assert [a["error"] for a in status["attempts"]] == ["tls_error", "tls_error"]
    finally:
        server.close()


async def test_a_refusal_fails_at_once_with_its_reason(pushing: Pushing) -> None:
    pushing.receiver.script = always(Respond(410, b"no such zap"))
    event_id = await pushing.ingest()
    status = await pushing.wait_status(event_id, "failed")
    (attempt,) = status["attempts"]
    assert attempt["response_status"] == 410 and attempt["error"] == "http_410"
    assert attempt["response_body"] == "no such zap" and attempt["outcome"] == "failed"
    assert status["retry_count"] == 0
    (log,) = await pushing.audit("event.delivery_failed")
    details = dict(log["details"])
    # the fan-out worker (every delivery on DynamoDB) also names the destination
    assert details.pop("destination", "workflow") == "workflow"
    assert details == {"attempt": 1, "status": 410, "reason": "refused", "error": "http_410"}
    got = await pushing.client.get(f"/v1/events/{event_id}", headers=pushing.auth)
    assert got.json()["status"] == "failed"  # a dead letter stays readable, and in the inbox
    inbox = (await pushing.client.get("/v1/inbox", headers=pushing.auth)).json()
    assert [e["event_id"] for e in inbox["events"]] == [event_id]


async def test_a_larger_retry_after_is_honoured(pushing: Pushing) -> None:
    pushing.receiver.script = fail_then_succeed(1, Respond(429, headers={"Retry-After": "1"}))
    event_id = await pushing.ingest()
    status = await pushing.wait_status(event_id, "delivered")
    first, second = pushing.receiver.requests
    assert second.at - first.at >= 0.95  # the 50 ms schedule gave way to the engine's 1 s
    assert [a["response_status"] for a in status["attempts"]] == [429, 200]


async def test_status_becomes_queued_when_handed_to_delivery(tmp_path: Path, receiver: Receiver) -> None:
    receiver.script = always(Hang(10))
    async with pushing_app(tmp_path, receiver, delivery_timeout=5.0, lease_seconds=10) as p:
        event_id = await p.ingest()
        await receiver.wait_for(lambda r: len(r.requests) >= 1)
        status = await p.status(event_id)
        assert status["status"] == "queued" and status["attempts"] == []
        inbox = (await p.client.get("/v1/inbox", params={"status": "queued"}, headers=p.auth)).json()
        assert [e["event_id"] for e in inbox["events"]] == [event_id]
        receiver.release_hangs()


async def test_many_events_are_all_delivered_once(pushing: Pushing) -> None:
    ids = []
    for i in range(20):
        response = await pushing.client.post(
            "/v1/events/batch",
            json={"events": [{"event_type": "bulk.item", "payload": {"i": i, "j": j}} for j in range(5)]},
            headers=pushing.auth,
        )
        assert response.status_code == 201
        ids += [r["event_id"] for r in response.json()["results"]]
    await pushing.receiver.wait_for(lambda r: len(r.delivered_ids()) >= len(ids), timeout=30)
    assert sorted(pushing.receiver.delivered_ids()) == sorted(ids)
    payloads = {orjson.loads(r.body)["event_id"] for r in pushing.receiver.requests}
    assert payloads == set(ids)
    await eventually(
        lambda: pushing.storage.delivery_depths("alice"), lambda d: d.pending == 0 and d.dead_letters == 0
    )
