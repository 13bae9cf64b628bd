"""PostgreSQL restarts and crashes under load (issue 15), on a server this test starts and kills.

A private PostgreSQL cluster (the installed binaries, a free port, a temp directory) serves an
app that ingests and pushes concurrently. The server is restarted (fast shutdown), then killed
with SIGKILL and started again. During the outage requests get 503 ``STORAGE_UNAVAILABLE``
within the request timeout; afterwards the pool recovers without restarting the service,
LISTEN/NOTIFY wake-ups resume, every 201 is stored exactly once and every event is delivered.
"""

from __future__ import annotations

import asyncio
import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.conftest import free_port, make_settings, new_key
from tests.delivery.conftest import FAST
from tests.delivery.receiver import Receiver
from triggers_api.app import create_app
from triggers_api.storage.base import AuditRecord, EventRecord, now_us
from triggers_api.storage.postgres import PostgresStorage

pytestmark = pytest.mark.slow


@dataclass
class Cluster:
    bin_dir: Path
    data: Path
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, *args: str, timeout: float = 60) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *args], check=True, capture_output=True, timeout=timeout
        )

    def start(self) -> None:
        self._as_postgres(
            str(self.bin_dir / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-w",
            "-t",
            "60",
            "-o",
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data} -c fsync=off",
            "start",
        )

    def restart_fast(self) -> None:
        self._as_postgres(
            str(self.bin_dir / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-m",
            "fast",
            "-w",
            "restart",
        )

    def stop(self) -> None:
        subprocess.run(
            [
                "runuser",
                "-u",
                "postgres",
                "--",
                str(self.bin_dir / "pg_ctl"),
                "-D",
                str(self.data),
                "-m",
                "immediate",
                "stop",
            ],
            capture_output=True,
            timeout=60,
            check=False,
        )

    def kill_9(self) -> None:
        """SIGKILL the postmaster and every backend of it (by pid, this cluster's processes only)."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        children = []
        for stat in glob.glob("/proc/[0-9]*/stat"):
            try:
                fields = Path(stat).read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == postmaster:
                children.append(int(Path(stat).parent.name))
        for pid in [postmaster, *children]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 30
        while any(Path(f"/proc/{pid}").exists() for pid in [postmaster, *children]):
            assert time.monotonic() < deadline, "postgres did not die"
            time.sleep(0.05)


INITDB = ("--auth=trust", "--no-sync", "-E", "UTF8")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins:
        pytest.skip("no PostgreSQL server binaries (/usr/lib/postgresql/*/bin) to start a private server")
    if os.geteuid() != 0 or shutil.which("runuser") is None:
        pytest.skip("starting a private PostgreSQL needs root (to run it as the postgres user)")
    bin_dir = Path(bins[-1]).parent
    # Not under pytest's tmp_path: its parents are root's, closed to the postgres user.
    home = Path(tempfile.mkdtemp(prefix="triggers-pg-"))
    data = home / "data"
    shutil.chown(home, "postgres", "postgres")
    initdb = subprocess.run(
        [
            "runuser",
            "-u",
            "postgres",
            "--",
            str(bin_dir / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            *INITDB,
        ],
        capture_output=True,
        timeout=120,
    )
    if initdb.returncode != 0:
        shutil.rmtree(home, ignore_errors=True)
        raise AssertionError(f"initdb failed: {initdb.stderr.decode()[-2000:]}")
    node = Cluster(bin_dir, data, free_port(), home / "server.log")
    try:
        node.start()
        yield node
    finally:
        node.stop()
        shutil.rmtree(home, ignore_errors=True)


async def _heard(heard: asyncio.Event, timeout: float) -> bool:
    try:
        await asyncio.wait_for(heard.wait(), timeout)
    except TimeoutError:
        return False
    return True


def _event(i: int) -> tuple[EventRecord, AuditRecord]:
    ts = now_us()
    event_id = f"0191{i:028x}"
    record = EventRecord(
        event_id, "listener", "notify.check", b"{}", "received", ts, ts // 1_000_000 + 3600, b"{}"
    )
    return record, AuditRecord(f"b{i:031x}", "listener", "event.created", ts, event_id)


async def _undelivered(url: str, ids: list[str]) -> int:
    conn = await asyncpg.connect(url)
    try:
        count = await conn.fetchval(
            "SELECT count(*) FROM events WHERE event_id = ANY($1) AND status <> 'delivered'", ids
        )
        return int(count)
    finally:
        await conn.close()


async def test_restart_and_sigkill_under_load(tmp_path: Path, cluster: Cluster) -> None:
    receiver = Receiver()
    await receiver.start()
    settings = make_settings(
        tmp_path,
        database_url=cluster.url,
        database_schema=None,
        database_timeout=3.0,
        workflow_url=receiver.url,
        default_rate_limit=1_000_000,
        **FAST,
    )
    app = create_app(settings)
    # A second "process" on the same database hears the first one's commits by LISTEN/NOTIFY.
    listener = PostgresStorage(cluster.url, pool_min=1, pool_max=2)
    heard = asyncio.Event()
    listener.listen_for_events(lambda users: heard.set() if users is None or "listener" in users else None)
    await listener.open()
    statuses: dict[int, int] = {}
    codes: set[str] = set()
    committed: list[str] = []
    stop = asyncio.Event()
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 4242))
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
                auth = {"X-API-Key": await new_key(app, rate_limit=1_000_000)}

                async def producer(n: int) -> None:
                    i = 0
                    while not stop.is_set():
                        i += 1
                        # The request timeout: an outage must answer (503), never hang.
                        r = await asyncio.wait_for(
                            client.post(
                                "/v1/events",
                                json={"event_type": "outage.test", "payload": {"n": n, "i": i}},
                                headers=auth,
                            ),
                            timeout=20,
                        )
                        statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                        if r.status_code == 201:
                            committed.append(r.json()["event_id"])
                        else:
                            codes.add(r.json()["error"]["code"])
                            assert r.headers.get("Retry-After"), r.text
                            await asyncio.sleep(0.05)

                producers = [asyncio.create_task(producer(n)) for n in range(4)]

                async def wait_for_201s(more: int, timeout: float = 60) -> None:
                    target = len(committed) + more
                    deadline = time.monotonic() + timeout
                    while len(committed) < target:
                        assert time.monotonic() < deadline, f"ingest did not recover: {statuses}"
                        for task in producers:
                            if task.done():
                                task.result()
                        await asyncio.sleep(0.05)

                await wait_for_201s(20)
                await asyncio.to_thread(cluster.restart_fast)
                await wait_for_201s(20)
                await asyncio.to_thread(cluster.kill_9)
                outage_started = len(committed)
                deadline = time.monotonic() + 20
                while statuses.get(503, 0) == 0:
                    assert time.monotonic() < deadline, f"no 503 during the outage: {statuses}"
                    await asyncio.sleep(0.05)
                health = await asyncio.wait_for(client.get("/v1/health"), timeout=20)
                assert health.status_code == 503
                assert len(committed) == outage_started  # nothing answered 201 while the server was dead
                await asyncio.to_thread(cluster.start)  # crash recovery, then the pool reconnects
                await wait_for_201s(20)
                stop.set()
                await asyncio.gather(*producers)
                assert (await client.get("/v1/health")).status_code == 200

                # LISTEN/NOTIFY wake-ups resume: the app's commit reaches the other "process".
                heard.clear()
                storage = app.state.services.storage
                record, audit = _event(1)
                await storage.insert_events([record], [audit])
                assert await _heard(heard, 30), "no NOTIFY heard after the restart"

                # Every event is delivered (none lost, none stuck behind a dead lease).
                wanted = set(committed)
                await receiver.wait_for(lambda r: wanted <= set(r.delivered_ids()), timeout=60)
                deadline = time.monotonic() + 60
                while await _undelivered(cluster.url, committed):
                    assert time.monotonic() < deadline, "events stuck undelivered after the outage"
                    await asyncio.sleep(0.2)
    finally:
        stop.set()
        await listener.close()
        await receiver.stop()

    assert statuses.get(503, 0) > 0 and 500 not in statuses, statuses
    assert codes == {"STORAGE_UNAVAILABLE"}, codes
    conn = await asyncpg.connect(cluster.url)
    try:
        rows = await conn.fetch(
            "SELECT event_id, count(*) AS n FROM events WHERE event_id = ANY($1) GROUP BY event_id", committed
        )
    finally:
        await conn.close()
    assert len(committed) == len(set(committed))
    assert {r["event_id"] for r in rows} == set(committed), "an event answered 201 is missing"
    assert all(r["n"] == 1 for r in rows)
