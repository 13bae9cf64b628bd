"""One status for pull and push: acknowledgement, replay and dead letters, seen from both sides."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.conftest import new_key
from tests.delivery.conftest import Pushing, eventually, pushing_app
from tests.delivery.receiver import Receiver, Respond, always
from triggers_api.storage.base import now_us


async def test_acknowledging_cancels_pending_retries(tmp_path: Path, receiver: Receiver) -> None:
    receiver.script = always(Respond(503))
    async with pushing_app(tmp_path, receiver, retry_schedule="0.8,0.3,0.3") as p:
        event_id = await p.ingest()
        await p.wait_attempts(event_id, 1)
        assert (await p.client.delete(f"/v1/events/{event_id}", headers=p.auth)).status_code == 204
        assert await p.storage.next_delivery_due(now_us() + 10**9) is None  # nothing left to push
        await asyncio.sleep(2.0)  # longer than the whole schedule: no retry may follow
        assert receiver.ids() == [event_id]
        status = await p.status(event_id)
        assert status["status"] == "delivered" and status["acknowledged_at"] is not None
        assert len(status["attempts"]) == 1 and status["attempts"][0]["outcome"] == "retry"


async def test_a_push_finishing_after_the_ack_does_not_resurrect_the_event(
    tmp_path: Path, receiver: Receiver
) -> None:
    receiver.script = always(Respond(200, b"taken", delay=1.0))
    async with pushing_app(tmp_path, receiver, delivery_timeout=3.0, lease_seconds=5.0) as p:
        event_id = await p.ingest()
        await receiver.wait_for(lambda r: len(r.requests) == 1)  # the push is in flight
        assert (await p.client.delete(f"/v1/events/{event_id}", headers=p.auth)).status_code == 204
        status = await p.wait_attempts(event_id, 1)
        assert status["attempts"][0]["outcome"] == "delivered"
        assert status["status"] == "delivered" and status["acknowledged_at"] is not None
        assert status["delivered_at"] == status["acknowledged_at"]  # the ack came first
        assert (await p.client.get(f"/v1/events/{event_id}", headers=p.auth)).status_code == 404
        inbox = (await p.client.get("/v1/inbox", headers=p.auth)).json()
        assert inbox["events"] == []
        assert await p.audit("event.delivered") == []  # nothing changed: nothing audited
        assert (await p.client.delete(f"/v1/events/{event_id}", headers=p.auth)).status_code == 410


async def test_replaying_one_dead_letter_gives_it_a_fresh_schedule(pushing: Pushing) -> None:
    pushing.receiver.script = lambda request, seen: Respond(500) if seen <= 4 else Respond(200)
    event_id = await pushing.ingest()
    await pushing.wait_status(event_id, "failed")
    assert len(pushing.receiver.requests) == 4
    replay = await pushing.client.post(f"/v1/events/{event_id}/replay", headers=pushing.auth)
    assert replay.status_code == 202, replay.text
    assert replay.json() == {"event_id": event_id, "status": "queued", "message": "Event queued for delivery"}
    status = await pushing.wait_status(event_id, "delivered")
    assert [a["outcome"] for a in status["attempts"]] == ["retry", "retry", "retry", "failed", "delivered"]
    assert status["retry_count"] == 4
    (log,) = await pushing.audit("event.replayed")
    assert log["event_id"] == event_id and log["details"] == {"via": "single"}
    # delivered now: not a dead letter any more
    again = await pushing.client.post(f"/v1/events/{event_id}/replay", headers=pushing.auth)
    assert again.status_code == 409 and again.json()["error"]["code"] == "EVENT_NOT_REPLAYABLE"


async def test_a_replayed_event_can_fail_through_a_whole_new_schedule(pushing: Pushing) -> None:
    pushing.receiver.script = always(Respond(503))
    event_id = await pushing.ingest()
    await pushing.wait_status(event_id, "failed")
    assert (
        await pushing.client.post(f"/v1/events/{event_id}/replay", headers=pushing.auth)
    ).status_code == 202
    status = await eventually(
        lambda: pushing.status(event_id), lambda s: s["status"] == "failed" and len(s["attempts"]) == 8
    )
    assert [a["outcome"] for a in status["attempts"]][3:] == ["failed", "retry", "retry", "retry", "failed"]


async def test_bulk_replay_takes_the_matching_dead_letters_of_the_caller(pushing: Pushing) -> None:
    pushing.receiver.script = lambda request, seen: Respond(410) if seen == 1 else Respond(200)
    a1 = await pushing.ingest("a.thing")
    b1 = await pushing.ingest("b.thing")
    a2 = await pushing.ingest("a.thing")
    for event_id in (a1, b1, a2):
        await pushing.wait_status(event_id, "failed")
    other_key = await new_key(pushing.app, "bob")
    bob = {"X-API-Key": other_key}
    none = await pushing.client.post("/v1/events/replay", json={}, headers=bob)
    assert none.status_code == 202 and none.json() == {"replayed": 0}  # bob has no dead letters
    assert (await pushing.client.post(f"/v1/events/{a1}/replay", headers=bob)).status_code == 404
    replayed = await pushing.client.post(
        "/v1/events/replay", json={"event_type": "a.thing"}, headers=pushing.auth
    )
    assert replayed.status_code == 202 and replayed.json() == {"replayed": 2}
    await pushing.wait_status(a1, "delivered")
    await pushing.wait_status(a2, "delivered")
    assert (await pushing.status(b1))["status"] == "failed"
    dead = (await pushing.client.get("/v1/inbox", params={"status": "failed"}, headers=pushing.auth)).json()
    assert [e["event_id"] for e in dead["events"]] == [b1]
    logs = await pushing.audit("event.replayed")
    assert sorted(log["event_id"] for log in logs) == sorted([a1, a2])
    assert all(log["details"] == {"via": "bulk"} for log in logs)
    window = {"from_timestamp": "2000-01-01T00:00:00Z", "to_timestamp": "2001-01-01T00:00:00Z"}
    assert (await pushing.client.post("/v1/events/replay", json=window, headers=pushing.auth)).json() == {
        "replayed": 0
    }
    everything = await pushing.client.post("/v1/events/replay", json={}, headers=pushing.auth)
    assert everything.json() == {"replayed": 1}
    await pushing.wait_status(b1, "delivered")


async def test_replay_errors_have_the_documented_shape(pushing: Pushing) -> None:
    event_id = await pushing.ingest()
    await pushing.wait_status(event_id, "delivered")
    cases = [
        (f"/v1/events/{event_id}/replay", None, 409, "EVENT_NOT_REPLAYABLE"),
        ("/v1/events/0190f8a0-0000-7000-8000-000000000000/replay", None, 404, "NOT_FOUND"),
        ("/v1/events/not-a-uuid/replay", None, 400, "VALIDATION_ERROR"),
        ("/v1/events/replay", {"event_type": "bad type!"}, 400, "VALIDATION_ERROR"),
        ("/v1/events/replay", {"surprise": 1}, 400, "VALIDATION_ERROR"),
        ("/v1/events/replay", {"from_timestamp": "yesterday"}, 400, "VALIDATION_ERROR"),
    ]
    for path, body, status, code in cases:
        response = await pushing.client.post(path, json=body, headers=pushing.auth)
        assert response.status_code == status, (path, response.text)
        error = response.json()["error"]
        assert error["code"] == code and error["request_id"] and error["timestamp"]
    assert (await pushing.client.delete(f"/v1/events/{event_id}", headers=pushing.auth)).status_code == 204
    gone = await pushing.client.post(f"/v1/events/{event_id}/replay", headers=pushing.auth)
    assert gone.status_code == 410 and gone.json()["error"]["code"] == "EVENT_GONE"
    reader = {"X-API-Key": await new_key(pushing.app, "alice", scopes=("events:read",))}
    forbidden = await pushing.client.post("/v1/events/replay", json={}, headers=reader)
    assert forbidden.status_code == 403
    assert (await pushing.client.post("/v1/events/replay", json={})).status_code == 401
    wrong_method = await pushing.client.get("/v1/events/replay", headers=pushing.auth)
    assert wrong_method.status_code == 405


async def test_an_idle_worker_is_woken_by_ingestion_and_replay(tmp_path: Path, receiver: Receiver) -> None:
    # with a 60 s poll, only the wake-ups can explain deliveries within the deadlines
    receiver.script = lambda request, seen: (
        Respond(410) if request.json()["event_type"] == "refused" and seen == 1 else Respond(200)
    )
    async with pushing_app(tmp_path, receiver, delivery_poll_interval=60) as p:
        await asyncio.sleep(0.2)  # let the worker go idle
        event_id = await p.ingest()
        await p.wait_status(event_id, "delivered", timeout=10)
        refused = await p.ingest("refused")
        await p.wait_status(refused, "failed", timeout=10)
        await asyncio.sleep(0.2)
        assert (await p.client.post(f"/v1/events/{refused}/replay", headers=p.auth)).status_code == 202
        await p.wait_status(refused, "delivered", timeout=10)
