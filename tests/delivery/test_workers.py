"""Workers as real processes: SIGKILL loses nothing, two workers never double-deliver, SIGTERM
drains, and ``serve`` runs the worker unless told ``--no-worker``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import free_port, make_settings, new_key, services_of, start_server
from tests.delivery.conftest import (
    eventually,
    log_of,
    process_env,
    spawn,
    stop_process,
    wait_exit,
)
from tests.delivery.receiver import Hang, Receiver, Respond, always
from triggers_api.app import create_app
from triggers_api.config import Settings
from triggers_api.storage.base import EventQuery, Storage, now_us

pytestmark = pytest.mark.slow


@contextlib.asynccontextmanager
async def ingest_app(
    tmp_path: Path,
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str], Storage, Settings]]:
    """The API without a worker of its own: events wait for the worker processes."""
    settings = make_settings(tmp_path, delivery_in_process=False)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            auth = {"X-API-Key": await new_key(app)}
            yield client, auth, services_of(app).storage, settings


async def ingest_many(client: httpx.AsyncClient, auth: dict[str, str], count: int) -> list[str]:
    ids: list[str] = []
    while len(ids) < count:
        size = min(100, count - len(ids))
        response = await client.post(
            "/v1/events/batch",
            json={
                "events": [{"event_type": "load.item", "payload": {"i": len(ids) + j}} for j in range(size)]
            },
            headers=auth,
        )
        assert response.status_code == 201, response.text
        ids += [r["event_id"] for r in response.json()["results"]]
    return ids


async def statuses(storage: Storage) -> dict[str, str]:
    rows = await storage.list_events(EventQuery(user_id="alice", limit=10_000))
    return {r.event_id: r.status for r in rows}


def stopped_line(tmp_path: Path, name: str) -> dict[str, Any]:
    """The worker's last structured log line, ``delivery_worker_stopped``."""
    for line in log_of(tmp_path, name).splitlines():
        if line.startswith("{") and '"delivery_worker_stopped"' in line:
            parsed: dict[str, Any] = json.loads(line)
            return parsed
    raise AssertionError(f"{name} never logged delivery_worker_stopped")


def worker_env(settings: Settings, receiver: Receiver, **extra: str) -> dict[str, str]:
    return process_env(
        settings,
        TRIGGERS_WORKFLOW_URL=receiver.url,
        TRIGGERS_RETRY_SCHEDULE="0.05,0.05,0.05",
        TRIGGERS_RETRY_JITTER="0",
        TRIGGERS_DELIVERY_POLL_INTERVAL="0.05",
        **extra,
    )


async def test_a_worker_killed_mid_delivery_loses_nothing(tmp_path: Path, receiver: Receiver) -> None:
    receiver.script = always(Hang(60))  # the first worker's pushes never come back
    async with ingest_app(tmp_path) as (client, auth, storage, settings):
        ids = await ingest_many(client, auth, 12)
        env = worker_env(
            settings,
            receiver,
            TRIGGERS_LEASE_SECONDS="3",
            TRIGGERS_DELIVERY_TIMEOUT="2.5",
            TRIGGERS_DELIVERY_CONCURRENCY="4",
        )
        first = spawn(tmp_path, "worker-1", ["worker"], env)
        second = None
        try:
            await receiver.wait_for(lambda r: len(r.requests) >= 4)  # four pushes in flight
            in_flight = set(receiver.ids())
            first.send_signal(signal.SIGKILL)  # no cleanup, no lease released
            assert await wait_exit(first) == -signal.SIGKILL
            assert receiver.answered == []  # it died mid-delivery
            leased = await statuses(storage)
            assert all(leased[event_id] == "queued" for event_id in in_flight)

            receiver.script = always(Respond(200))  # the engine is fine; the worker was not
            receiver.release_hangs()
            second = spawn(tmp_path, "worker-2", ["worker"], env)
            await receiver.wait_for(lambda r: set(r.delivered_ids()) >= set(ids), timeout=40)
            final = await eventually(
                lambda: statuses(storage), lambda s: all(s[i] == "delivered" for i in ids), timeout=20
            )
            assert set(final) == set(ids)
            for event_id in in_flight:  # taken over once its lease expired
                record = await storage.get_event("alice", event_id)
                assert record is not None and record.delivered_us is not None
            assert len(set(receiver.delivered_ids())) == len(ids)
        finally:
            stop_process(first)
            if second is not None:
                second.send_signal(signal.SIGTERM)
                await wait_exit(second)


async def test_two_workers_never_deliver_an_event_twice(tmp_path: Path, receiver: Receiver) -> None:
    receiver.script = always(Respond(200, delay=0.005))
    async with ingest_app(tmp_path) as (client, auth, storage, settings):
        ids = await ingest_many(client, auth, 200)
        env = worker_env(settings, receiver, TRIGGERS_DELIVERY_CONCURRENCY="4")
        workers = [spawn(tmp_path, f"pair-{n}", ["worker"], env) for n in (1, 2)]
        try:
            await receiver.wait_for(lambda r: len(r.delivered_ids()) >= len(ids), timeout=60)
            await eventually(lambda: statuses(storage), lambda s: all(v == "delivered" for v in s.values()))
            await asyncio.sleep(0.3)  # anything doubled would have arrived by now
            pushed = receiver.ids()
            assert sorted(pushed) == sorted(ids)  # each exactly once
            logs = [log_of(tmp_path, f"pair-{n}") for n in (1, 2)]
            assert all("delivery_worker_started" in text for text in logs)
        finally:
            for worker in workers:
                worker.send_signal(signal.SIGTERM)
            for worker in workers:
                assert await wait_exit(worker) == 0


async def test_sigterm_lets_an_in_flight_push_finish(tmp_path: Path, receiver: Receiver) -> None:
    receiver.script = always(Respond(200, b"ok", delay=1.0))
    async with ingest_app(tmp_path) as (client, auth, storage, settings):
        (event_id,) = await ingest_many(client, auth, 1)
        worker = spawn(
            tmp_path, "drain", ["worker"], worker_env(settings, receiver, TRIGGERS_DELIVERY_GRACE="10")
        )
        try:
            await receiver.wait_for(lambda r: len(r.requests) == 1)
            worker.send_signal(signal.SIGTERM)
            assert await wait_exit(worker) == 0
            record = await storage.get_event("alice", event_id)
            assert record is not None and record.status == "delivered"
            assert receiver.delivered_ids() == [event_id]
            assert stopped_line(tmp_path, "drain")["released"] == 0
        finally:
            stop_process(worker)


async def test_sigterm_past_the_grace_period_releases_the_lease(tmp_path: Path, receiver: Receiver) -> None:
    receiver.script = always(Hang(60))
    async with ingest_app(tmp_path) as (client, auth, storage, settings):
        (event_id,) = await ingest_many(client, auth, 1)
        env = worker_env(
            settings,
            receiver,
            TRIGGERS_DELIVERY_GRACE="0.3",
            TRIGGERS_DELIVERY_TIMEOUT="30",
            TRIGGERS_LEASE_SECONDS="600",
        )
        worker = spawn(tmp_path, "release", ["worker"], env)
        try:
            await receiver.wait_for(lambda r: len(r.requests) == 1)
            worker.send_signal(signal.SIGTERM)
            assert await wait_exit(worker) == 0
            # without the release it would stay leased for 10 minutes; released, it is due now
            due = await storage.next_delivery_due(now_us())
            assert due is not None and due <= now_us()
            assert await storage.list_attempts("alice", event_id) == []  # no retry was spent
            assert stopped_line(tmp_path, "release")["released"] == 1
            (claim,) = await storage.claim_due_events("test", now_us(), now_us() + 1_000_000, 5)
            assert claim.event.event_id == event_id and claim.attempts == 0
        finally:
            stop_process(worker)
            receiver.release_hangs()


async def test_serve_pushes_in_process_unless_told_not_to(tmp_path: Path, receiver: Receiver) -> None:
    env = {"TRIGGERS_WORKFLOW_URL": receiver.url, "TRIGGERS_DELIVERY_POLL_INTERVAL": "0.05"}
    server = await asyncio.to_thread(start_server, tmp_path, None, env)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            auth = {"X-API-Key": server.api_key}
            health = (await client.get("/v1/health")).json()["checks"]["delivery"]
            assert health["push"] == "enabled" and health["worker"] == "running"
            event = await client.post("/v1/events", json={"event_type": "a.b", "payload": {}}, headers=auth)
            event_id = event.json()["event_id"]
            await receiver.wait_for(lambda r: r.delivered_ids() == [event_id])
            await eventually(
                lambda: client.get(f"/v1/events/{event_id}/status", headers=auth),
                lambda r: r.json()["status"] == "delivered",
            )
    finally:
        await asyncio.to_thread(server.stop)

    # same database, --no-worker: events wait for a separate `triggers-api worker`
    port = free_port()
    quiet = spawn(tmp_path, "no-worker", ["serve", "--port", str(port), "--no-worker"], {**server.env, **env})
    worker = None
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            await eventually(lambda: _health(client), lambda h: h is not None)
            health = (await client.get("/v1/health")).json()["checks"]["delivery"]
            assert health == {"push": "enabled", "worker": "external"}
            auth = {"X-API-Key": server.api_key}
            event = await client.post("/v1/events", json={"event_type": "a.b", "payload": {}}, headers=auth)
            waiting = event.json()["event_id"]
            await asyncio.sleep(0.5)
            assert waiting not in receiver.ids()
            worker = spawn(tmp_path, "external", ["worker"], {**server.env, **env})
            await receiver.wait_for(lambda r: waiting in r.delivered_ids())
    finally:
        stop_process(quiet)
        if worker is not None:
            worker.send_signal(signal.SIGTERM)
            await wait_exit(worker)


async def _health(client: httpx.AsyncClient) -> dict[str, object] | None:
    try:
        response = await client.get("/v1/health")
    except httpx.HTTPError:
        return None
    return response.json() if response.status_code == 200 else None  # type: ignore[no-any-return]


async def test_the_worker_command_without_a_workflow_url_pushes_to_subscriptions_only(tmp_path: Path) -> None:
    env = process_env(make_settings(tmp_path))
    env.pop("TRIGGERS_WORKFLOW_URL", None)
    process = spawn(tmp_path, "no-url", ["worker"], env)
    try:
        deadline = time.monotonic() + 60
        started = ("fanout_worker_started", "delivery_worker_started")  # the SQS consumer on DynamoDB
        while not any(line in log_of(tmp_path, "no-url") for line in started):
            assert process.poll() is None, log_of(tmp_path, "no-url")
            assert time.monotonic() < deadline, log_of(tmp_path, "no-url")
            await asyncio.sleep(0.1)
        assert "pushing to subscriptions only" in log_of(tmp_path, "no-url")
        process.send_signal(signal.SIGTERM)
        assert await wait_exit(process) == 0
    finally:
        stop_process(process)
