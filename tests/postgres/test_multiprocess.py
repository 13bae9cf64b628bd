"""Two API processes and two delivery workers, real OS processes, on one PostgreSQL and one Redis.

5,000 events go in through both APIs at once and reach a loopback receiver exactly once, with the
two workers sharing the queue; one per-key rate limit holds across both APIs; then a worker is
killed with SIGKILL in the middle of a run and still no event is lost (its leases expire and the
other worker pushes what it held: at-least-once, so those few may arrive twice, never zero times).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import orjson
import pytest

from tests.conftest import free_port
from tests.delivery.receiver import Received, Receiver, Respond
from tests.postgres.schemas import redis_url
from triggers_api.delivery.worker import RECORDING_PER_SLOT

pytestmark = pytest.mark.slow

SINGLES = 200  # single-event requests
BATCHES = 48  # batch requests of BATCH_SIZE
BATCH_SIZE = 100
CONCURRENCY = 16  # client requests in flight
LEASE_SECONDS = 8  # long enough that a CPU-starved worker (2 shared cores) keeps its leases
WORKER_CONCURRENCY = 8


class Fleet:
    """The processes of one deployment; all are stopped (and their logs kept) at the end."""

    def __init__(self, tmp_path: Path, env: dict[str, str]) -> None:
        self.tmp_path = tmp_path
        self.env = env
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "triggers_api.cli", *args],
            env=self.env,
            cwd=self.tmp_path,
            capture_output=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr.decode()
        return done.stdout.decode()

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = open(self.tmp_path / f"{name}.log", "ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "triggers_api.cli", *args],
            env=self.env,
            cwd=self.tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.processes[name] = process
        return process

    def api(self, name: str) -> str:
        port = free_port()
        process = self.start(name, "serve", "--port", str(port), "--no-worker")
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert process.poll() is None, self.log(name)
            try:
                if httpx.get(f"{url}/v1/health", timeout=1).status_code == 200:
                    return url
            except httpx.HTTPError:
                time.sleep(0.1)
        raise AssertionError(f"{name} did not come up: {self.log(name)}")

    def worker(self, name: str) -> int:
        port = free_port()
        self.start(name, "worker", "--metrics-port", str(port))
        return port

    def log(self, name: str) -> str:
        return (self.tmp_path / f"{name}.log").read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def fleet(tmp_path: Path, pg_url: str, pg_schema: str) -> Iterator[Fleet]:
    env = {
        **os.environ,
        "TRIGGERS_DATABASE_URL": pg_url,
        "TRIGGERS_DATABASE_SCHEMA": pg_schema,
        "TRIGGERS_REDIS_URL": redis_url(),
        "TRIGGERS_DATABASE_POOL_MAX": "6",
        "TRIGGERS_ARCHIVE_DIR": str(tmp_path / "archive"),
        "TRIGGERS_BOOTSTRAP_KEY": "false",
        "TRIGGERS_LOG_LEVEL": "WARNING",
        "TRIGGERS_LEASE_SECONDS": str(LEASE_SECONDS),
        "TRIGGERS_DELIVERY_TIMEOUT": "5",  # below the lease, as the settings require
        "TRIGGERS_DELIVERY_CONCURRENCY": str(WORKER_CONCURRENCY),
        "TRIGGERS_RETRY_SCHEDULE": "0.2,0.5,1,2",
        "TRIGGERS_SESSION_SECRET": "multiprocess-test-session-secret-0123456789",
    }
    fleet = Fleet(tmp_path, env)
    try:
        yield fleet
    finally:
        fleet.stop()  # before the schema is dropped


def delivered_by(metrics_port: int) -> int:
    text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
    for line in text.splitlines():
        if line.startswith('triggers_deliveries_total{outcome="delivered"}'):
            return int(float(line.rsplit(" ", 1)[1]))
    return 0


async def send_load(apis: list[str], api_key: str, tag: str, singles: int, batches: int) -> list[str]:
    """Singles and batches, spread over every API, CONCURRENCY requests in flight."""
    gate = asyncio.Semaphore(CONCURRENCY)
    ids: list[str] = []
    headers = {"X-API-Key": api_key}
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=CONCURRENCY * 2)) as client:

        async def single(n: int) -> None:
            async with gate:
                body = {"event_type": "load.single", "payload": {"tag": tag, "n": n}}
                r = await client.post(f"{apis[n % len(apis)]}/v1/events", json=body, headers=headers)
            assert r.status_code == 201, r.text
            ids.append(r.json()["event_id"])

        async def batch(n: int) -> None:
            events = [
                {"event_type": "load.batch", "payload": {"tag": tag, "n": n, "i": i}}
                for i in range(BATCH_SIZE)
            ]
            async with gate:
                r = await client.post(
                    f"{apis[n % len(apis)]}/v1/events/batch", json={"events": events}, headers=headers
                )
            assert r.status_code == 201, r.text
            body = r.json()
            assert body["success_count"] == BATCH_SIZE, body
            ids.extend(item["event_id"] for item in body["results"])

        await asyncio.gather(*(single(n) for n in range(singles)), *(batch(n) for n in range(batches)))
    return ids


async def test_two_apis_and_two_workers_on_one_postgres(fleet: Fleet, pg_url: str, pg_schema: str) -> None:
    slow = {"on": False}

    def script(request: Received, seen: int) -> Respond:
        # while a worker is killed, answers take a little while, so pushes are in flight
        return Respond(200, b'{"ok":true}', delay=0.05 if slow["on"] else 0.0)

    receiver = Receiver(script)
    fleet.env["TRIGGERS_WORKFLOW_URL"] = await receiver.start()
    try:
        fleet.cli("migrate")
        load_key = orjson.loads(
            fleet.cli(
                "keys", "create", "--user-id", "mp", "--name", "load", "--rate-limit", "1000000", "--json"
            )
        )["api_key"]
        limited_key = orjson.loads(
            fleet.cli(
                "keys", "create", "--user-id", "mp", "--name", "limited", "--rate-limit", "30", "--json"
            )
        )["api_key"]
        apis = [fleet.api("api-1"), fleet.api("api-2")]
        metrics_ports = [fleet.worker("worker-1"), fleet.worker("worker-2")]

        # -- one key, one budget, whichever API process answers -------------------------------------
        async with httpx.AsyncClient(timeout=30) as client:
            statuses = [
                (await client.get(f"{apis[i % 2]}/v1/inbox", headers={"X-API-Key": limited_key})).status_code
                for i in range(40)
            ]
        assert statuses.count(200) == 30 and statuses.count(429) == 10, statuses
        assert statuses[:30] == [200] * 30

        # -- 5,000 events through both APIs at once: every one delivered exactly once ------------------
        ids = await send_load(apis, load_key, "a", SINGLES, BATCHES)
        assert len(ids) == len(set(ids)) == SINGLES + BATCHES * BATCH_SIZE == 5000, len(ids)
        wanted = set(ids)
        await receiver.wait_for(lambda r: wanted <= set(r.delivered_ids()), timeout=180)
        await asyncio.sleep(1.0)  # a double delivery would arrive about now: give it the chance
        seen = Counter(receiver.ids())
        assert {i: n for i, n in seen.items() if n != 1} == {}, "fault-free run delivered some events twice"
        assert set(seen) == wanted
        # Outcomes are recorded in batches after the push: the metric may trail the receiver a moment.
        deadline = time.monotonic() + 30
        while True:
            per_worker = [await asyncio.to_thread(delivered_by, port) for port in metrics_ports]
            if sum(per_worker) >= 5000 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        assert sum(per_worker) == 5000 and min(per_worker) > 0, per_worker  # the queue was shared
        for name in ("api-1", "api-2", "worker-1", "worker-2"):
            assert fleet.processes[name].poll() is None, fleet.log(name)

        # -- SIGKILL one worker mid-run: nothing is lost ---------------------------------------------
        slow["on"] = True
        before = len(receiver.requests)
        loading = asyncio.create_task(send_load(apis, load_key, "b", 0, 10))
        await receiver.wait_for(lambda r: len(r.requests) >= before + 150, timeout=120)
        victim = fleet.processes["worker-1"]
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        more = await loading
        wanted_b = set(more)
        assert len(wanted_b) == 1000
        await receiver.wait_for(lambda r: wanted_b <= set(r.delivered_ids()), timeout=180)
        # What the dead worker pushed but never recorded is pushed again once its leases expire:
        # done when the database shows every event delivered.
        conn = await asyncpg.connect(pg_url, server_settings={"search_path": pg_schema})
        try:
            deadline = time.monotonic() + 120
            while (
                left := await conn.fetchval("SELECT count(*) FROM events WHERE status <> 'delivered'")
            ) > 0:
                assert time.monotonic() < deadline, f"{left} events never recorded as delivered"
                await asyncio.sleep(0.2)
            assert await conn.fetchval("SELECT count(*) FROM events") == 6000
            # the fault-free run, as the database saw it: one attempt per event, never two
            assert (
                await conn.fetchval(
                    "SELECT count(*) FROM events WHERE event_id = ANY($1) AND attempts <> 1", ids
                )
                == 0
            )
        finally:
            await conn.close()
        seen_b = Counter(r.event_id for r in receiver.requests if r.event_id in wanted_b)
        assert set(seen_b) == wanted_b  # none lost
        twice = [i for i, n in seen_b.items() if n > 1]
        # At most what the dead worker had pushed but not yet recorded: its pushes in flight plus the
        # outcomes waiting for their batched write (at-least-once, never more than that).
        assert len(twice) <= WORKER_CONCURRENCY * (1 + RECORDING_PER_SLOT), twice
        assert all(seen_b[i] == 2 for i in twice)
        assert fleet.processes["worker-2"].poll() is None, fleet.log("worker-2")
    finally:
        await receiver.stop()


async def test_an_event_stored_by_an_api_process_wakes_an_idle_worker_process(fleet: Fleet) -> None:
    """The worker's own poll is set to a minute, so only LISTEN/NOTIFY can make it push within the
    (still generous) deadline below: the event was committed by another process."""
    receiver = Receiver()
    fleet.env["TRIGGERS_WORKFLOW_URL"] = await receiver.start()
    fleet.env["TRIGGERS_DELIVERY_POLL_INTERVAL"] = "60"
    try:
        fleet.cli("migrate")
        key = orjson.loads(fleet.cli("keys", "create", "--user-id", "mp", "--name", "k", "--json"))["api_key"]
        api = fleet.api("api")
        fleet.worker("worker")
        async with httpx.AsyncClient(timeout=30) as client:
            # the worker is idle (nothing due): its first poll is a minute away
            await asyncio.sleep(2.0)
            assert fleet.processes["worker"].poll() is None, fleet.log("worker")
            posted = await client.post(
                f"{api}/v1/events", json={"event_type": "wake.up", "payload": {}}, headers={"X-API-Key": key}
            )
            assert posted.status_code == 201
            event_id = posted.json()["event_id"]
        await receiver.wait_for(lambda r: event_id in r.delivered_ids(), timeout=30)
    finally:
        await receiver.stop()
