"""``make soak`` / ``python -m bench.soak``: hours-of-uptime problems in minutes (issue 15).

Starts ``triggers-api serve`` (SQLite, delivery on) and a loopback receiver that fails 10 % of
pushes with 503, measures the box's ingest capacity (closed loop, a few seconds), then runs mixed
traffic at half of it for ``--seconds`` (``SOAK_SECONDS``, default 600): single events, batches,
inbox pages, acknowledgements, event statuses, and SSE stream clients reading all along.

Every minute it reports the service's RSS and open file descriptors, the WAL's size, request
p50/p99 and delivery lag (201 to the receiver's 2xx). It fails (exit 1) when, after the first
two minutes (the first one in runs under three minutes), RSS or descriptors grow by more than
10 % (in any later minute), the later minutes' median p99 is more than twice the baseline's (a
drift, not one noisy minute), or an event answered 201 is lost (not delivered, acknowledged or
dead-lettered once the run drains) or delivered twice without a failed push in between (a fault).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.run import _create_key
from bench.servers import start_service, tree_rss_bytes

FAIL_RATE = 0.10
STREAMS = 4  # SSE clients reading all along
MIX = (("ingest", 50), ("batch", 10), ("inbox", 15), ("ack", 15), ("status", 10))


def _percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


# -- the receiver: a workflow engine that fails 10 % of pushes ---------------------------------------
@dataclass
class Receiver:
    ok: Counter[str] = field(default_factory=Counter)  # 2xx answers per event id
    failed: Counter[str] = field(default_factory=Counter)  # 503 answers per event id
    first_ok_at: dict[str, float] = field(default_factory=dict)
    port: int = 0
    server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{self.port}/hook"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length, event_id = 0, ""
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    name = name.strip().lower()
                    if name == b"content-length":
                        length = int(value)
                    elif name == b"webhook-id":
                        event_id = value.strip().decode()
                if length:
                    await reader.readexactly(length)
                if random.random() < FAIL_RATE:
                    self.failed[event_id] += 1
                    writer.write(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 4\r\n\r\nbusy")
                else:
                    self.ok[event_id] += 1
                    self.first_ok_at.setdefault(event_id, time.monotonic())
                    writer.write(b'HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\n{"ok":true}')
                await writer.drain()
        writer.close()


# -- one minute's figures ----------------------------------------------------------------------------
@dataclass
class Minute:
    index: int
    requests: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)
    rss_mb: float = 0.0
    fds: int = 0
    wal_mb: float = 0.0
    lags: list[float] = field(default_factory=list)
    streamed: int = 0

    def row(self) -> str:
        return (
            f"| {self.index} | {self.requests / 60:,.0f} | {self.errors} | "
            f"{_percentile(self.latencies, 50):.1f} | {_percentile(self.latencies, 99):.1f} | "
            f"{self.rss_mb:.1f} | {self.fds} | {self.wal_mb:.1f} | "
            f"{_percentile(self.lags, 50):.2f} | {_percentile(self.lags, 99):.2f} | {self.streamed:,} |"
        )


@dataclass
class Soak:
    url: str
    key: str
    pid: int
    db: Path
    receiver: Receiver
    created_at: dict[str, float] = field(default_factory=dict)  # event id -> time of its 201
    created_minute: dict[str, int] = field(default_factory=dict)
    inbox_ids: list[str] = field(default_factory=list)
    acked: set[str] = field(default_factory=set)
    minutes: list[Minute] = field(default_factory=list)
    streamed: int = 0
    started: float = 0.0

    def minute(self) -> Minute:
        index = int((time.monotonic() - self.started) // 60) + 1
        while len(self.minutes) < index:
            self.minutes.append(Minute(len(self.minutes) + 1))
        return self.minutes[index - 1]

    async def one(self, client: httpx.AsyncClient, kind: str, n: int) -> None:
        started = time.monotonic()
        ids: list[str] = []
        ok_statuses: tuple[int, ...] = (200,)
        if kind == "ingest":
            r = await client.post(
                "/v1/events", json={"event_type": "soak.one", "payload": {"n": n, "pad": "x" * 200}}
            )
            ok_statuses = (201,)
            if r.status_code == 201:
                ids = [r.json()["event_id"]]
        elif kind == "batch":
            body = {"events": [{"event_type": "soak.batch", "payload": {"n": n, "j": j}} for j in range(10)]}
            r = await client.post("/v1/events/batch", json=body)
            ok_statuses = (201,)
            if r.status_code == 201:
                ids = [x["event_id"] for x in r.json()["results"] if x.get("event_id")]
        elif kind == "inbox":
            r = await client.get("/v1/inbox", params={"limit": 20})
            if r.status_code == 200:
                self.inbox_ids = [e["event_id"] for e in r.json()["events"]]
        elif kind == "ack":
            if not self.inbox_ids:
                return
            event_id = self.inbox_ids.pop()
            r = await client.delete(f"/v1/events/{event_id}")
            ok_statuses = (204, 404, 410)  # already acknowledged / delivered meanwhile: fine
            if r.status_code == 204:
                self.acked.add(event_id)
        else:
            if not self.created_at:
                return
            event_id = next(reversed(self.created_at))
            r = await client.get(f"/v1/events/{event_id}/status")
        minute = self.minute()
        minute.requests += 1
        minute.latencies.append((time.monotonic() - started) * 1000)
        if r.status_code not in ok_statuses:
            minute.errors += 1
        now = time.monotonic()
        for event_id in ids:
            self.created_at[event_id] = now
            self.created_minute[event_id] = minute.index

    async def stream_client(self, stop: asyncio.Event) -> None:
        headers = {"X-API-Key": self.key, "Accept": "text/event-stream"}
        while not stop.is_set():
            with contextlib.suppress(httpx.HTTPError):
                async with httpx.AsyncClient(base_url=self.url, headers=headers, timeout=None) as client:
                    async with client.stream("GET", "/v1/inbox/stream") as response:
                        async for line in response.aiter_lines():
                            if line.startswith("id: "):
                                self.streamed += 1
                                self.minute().streamed += 1
                            if stop.is_set():
                                return
            await asyncio.sleep(1)

    def sample(self) -> None:
        """Every 5 s. RSS: the minute's highest sample. Descriptors: the minute's lowest, the floor
        a leak raises (connections open and close with the load, a leak never closes)."""
        minute = self.minute()
        minute.rss_mb = max(minute.rss_mb, tree_rss_bytes(self.pid) / 1e6)
        with contextlib.suppress(OSError):
            fds = len(os.listdir(f"/proc/{self.pid}/fd"))
            minute.fds = fds if not minute.fds else min(minute.fds, fds)
        wal = Path(f"{self.db}-wal")
        minute.wal_mb = wal.stat().st_size / 1e6 if wal.exists() else 0.0


async def capacity(url: str, key: str, seconds: float, concurrency: int = 32) -> float:
    """Single-event ingest, closed loop: what this box serves with this client."""
    done = 0
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=url, headers={"X-API-Key": key}, timeout=30, limits=limits
    ) as client:

        async def loop() -> None:
            nonlocal done
            while time.monotonic() < deadline:
                r = await client.post("/v1/events", json={"event_type": "soak.capacity", "payload": {}})
                if r.status_code == 201:
                    done += 1

        await asyncio.gather(*(loop() for _ in range(concurrency)))
    return done / seconds


async def run(args: argparse.Namespace) -> int:
    receiver = Receiver()
    hook = await receiver.start()
    workdir = Path(tempfile.mkdtemp(prefix="triggers-soak-"))
    db = workdir / "soak.db"
    env = {
        "TRIGGERS_DATABASE_URL": f"sqlite:///{db}",
        "TRIGGERS_ARCHIVE_DIR": str(workdir / "archive"),
        "TRIGGERS_WORKFLOW_URL": hook,
        "TRIGGERS_RETRY_SCHEDULE": "1,2,4,8,16",
        "TRIGGERS_RETRY_JITTER": "0",
        "TRIGGERS_CIRCUIT_FAILURE_THRESHOLD": "1000",
        "TRIGGERS_LOG_LEVEL": "WARNING",
        "TRIGGERS_BOOTSTRAP_KEY": "false",
        "TRIGGERS_STREAM_HEARTBEAT": "5",
    }
    subprocess_env = {**os.environ, **env}
    subprocess.run(
        [sys.executable, "-m", "triggers_api.cli", "migrate"], env=subprocess_env, cwd=workdir, check=True
    )
    key = _create_key(env, workdir)
    server = start_service("soak", workers=1, workdir=workdir, env=env)
    try:
        rate = await capacity(server.url, key, args.capacity_seconds) / 2
        _say(
            f"measured capacity {rate * 2:,.0f} req/s (single events, closed loop); soaking at {rate:,.0f} req/s"
        )
        soak = Soak(server.url, key, server.process.pid, db, receiver)
        result = await soak_loop(soak, rate, args.seconds)
    finally:
        server.stop()
        if receiver.server is not None:
            receiver.server.close()
    _say(result)
    return 1 if "FAIL" in result.splitlines()[-1] else 0


async def soak_loop(soak: Soak, rate: float, seconds: float) -> str:
    stop = asyncio.Event()
    soak.started = time.monotonic()
    streams = [asyncio.create_task(soak.stream_client(stop)) for _ in range(STREAMS)]
    kinds = [k for k, w in MIX for _ in range(w)]
    limits = httpx.Limits(max_connections=16, max_keepalive_connections=16)
    pending: set[asyncio.Task[None]] = set()
    async with httpx.AsyncClient(
        base_url=soak.url, headers={"X-API-Key": soak.key}, timeout=30, limits=limits
    ) as client:
        n = 0
        next_sample = soak.started
        while (now := time.monotonic()) < soak.started + seconds:
            # Open loop: the k-th request leaves at start + k / rate, whatever the answers do.
            due = soak.started + n / rate
            if due > now:
                await asyncio.sleep(due - now)
            if len(pending) < 512:  # a server far behind: shed rather than pile up client tasks
                task = asyncio.create_task(soak.one(client, random.choice(kinds), n))
                pending.add(task)
                task.add_done_callback(pending.discard)
            n += 1
            if time.monotonic() >= next_sample:
                soak.sample()
                next_sample += 5
        await asyncio.gather(*pending, return_exceptions=True)
        soak.sample()
        # Drain: every event delivered, acknowledged or dead-lettered (retries take up to ~31 s).
        drain_until = time.monotonic() + 90
        while time.monotonic() < drain_until and _undelivered(soak):
            await asyncio.sleep(1)
    stop.set()
    for task in streams:
        task.cancel()
    await asyncio.gather(*streams, return_exceptions=True)
    return report(soak, rate, seconds)


def _undelivered(soak: Soak) -> int:
    conn = sqlite3.connect(f"file:{soak.db}?mode=ro", uri=True)
    try:
        return int(
            conn.execute("SELECT COUNT(*) FROM events WHERE status IN ('received', 'queued')").fetchone()[0]
        )
    finally:
        conn.close()


def report(soak: Soak, rate: float, seconds: float) -> str:
    for event_id, at in soak.created_at.items():
        delivered = soak.receiver.first_ok_at.get(event_id)
        if delivered is not None:
            soak.minutes[soak.created_minute[event_id] - 1].lags.append(delivered - at)
    conn = sqlite3.connect(f"file:{soak.db}?mode=ro", uri=True)
    try:
        statuses = dict(conn.execute("SELECT event_id, status FROM events").fetchall())
    finally:
        conn.close()
    created = set(soak.created_at)
    missing = [e for e in created if e not in statuses]
    stuck = [e for e in created if statuses.get(e) in ("received", "queued")]
    twice = [e for e, count in soak.receiver.ok.items() if count > 1 and not soak.receiver.failed.get(e)]
    by_status = Counter(statuses.get(e, "missing") for e in created)

    minutes = [m for m in soak.minutes if m.requests and m.index <= max(1, round(seconds / 60))]
    base_index = 2 if len(minutes) >= 3 else 1  # the first two minutes warm up
    base = minutes[base_index - 1]
    later = minutes[base_index:]
    failures: list[str] = []
    if later:
        worst_rss = max(m.rss_mb for m in later)
        worst_fds = max(m.fds for m in later)
        # Drift is a trend, not one noisy minute: the later minutes' median p99 against the baseline.
        worst_p99 = statistics.median(_percentile(m.latencies, 99) for m in later)
        if worst_rss > base.rss_mb * 1.10:
            failures.append(f"RSS grew {base.rss_mb:.1f} -> {worst_rss:.1f} MB")
        if worst_fds > base.fds * 1.10:
            failures.append(f"descriptors grew {base.fds} -> {worst_fds}")
        if worst_p99 > 2 * _percentile(base.latencies, 99):
            failures.append(f"median p99 drifted {_percentile(base.latencies, 99):.1f} -> {worst_p99:.1f} ms")
    if missing:
        failures.append(f"{len(missing)} events answered 201 are missing")
    if stuck:
        failures.append(f"{len(stuck)} events never delivered")
    if twice:
        failures.append(f"{len(twice)} events delivered twice without a fault")

    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    lines = [
        f"`make soak` (SOAK_SECONDS={seconds:.0f}; {machine}): mixed traffic at {rate:,.0f} req/s "
        f"(half the measured single-event capacity), receiver failing {FAIL_RATE:.0%} of pushes, "
        f"{STREAMS} SSE clients.",
        "",
        "| minute | req/s | errors | p50 ms | p99 ms | RSS MB (max) | fds (min) | WAL MB | lag p50 s | lag p99 s | streamed |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        *(m.row() for m in minutes),
        "",
        f"Events answered 201: {len(created):,} ({', '.join(f'{k} {v:,}' for k, v in sorted(by_status.items()))}); "
        f"pushes answered 503 by the receiver: {sum(soak.receiver.failed.values()):,}; "
        f"delivered twice without a fault: {len(twice)}; streamed to SSE clients: {soak.streamed:,}.",
        f"Baseline minute {base.index}. Result: "
        + ("PASS" if not failures else "FAIL (" + "; ".join(failures) + ")"),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("SOAK_SECONDS", "600")))
    parser.add_argument("--capacity-seconds", type=float, default=5.0)
    args = parser.parse_args(argv)
    return asyncio.run(run(args))


if __name__ == "__main__":
    raise SystemExit(main())
