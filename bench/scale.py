"""``python -m bench.scale``: one user's million events, through the storage layer (issue 15).

Loads ``--events`` events (default 1,000,000) for one user on SQLite and, when
``TRIGGERS_TEST_POSTGRES_URL`` is set, on PostgreSQL (a private schema, dropped afterwards), then
measures what a client of that user does, against the same on a ``--baseline`` (1,000) event
database:

* the first inbox page, a page 90 % deep by cursor (900,000 events in), a filtered page (an
  event type 1 % of the events have; on the small database one in 9, so that its filtered page is
  full too: a page of 10 rows against one of 51 measured the page size, not the scale), one
  event's status (the event and its attempts), and the audit log: a page 90 % deep by cursor and
  one event's audit trail;
* the retention sweep of all those events (every one is already expired) while ingestion goes
  on at ~100 requests/s: the sweep's batches and duration, and ingest p50/p99/max during it.

Pass: every page and look-up within 2x of its cost on the small database, ingest p99 during the
sweep under 100 ms. Exit status 1 when a check fails. Not part of ``make test`` (minutes).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import uuid_utils

from triggers_api.retention import sweep
from triggers_api.storage.base import (
    INBOX_STATUSES,
    AuditQuery,
    AuditRecord,
    EventQuery,
    EventRecord,
    Storage,
    now_us,
)
from triggers_api.storage.postgres import PostgresStorage
from triggers_api.storage.sqlite import SQLiteStorage

USER = "scale-user"
INBOX = tuple(s.value for s in INBOX_STATUSES)
PAGE = 50
SWEEP_BATCH = 1000
INGEST_P99_BUDGET_MS = 100.0
RATIO_BUDGET = 2.0


@dataclass
class Loaded:
    events: int
    deep_cursor: tuple[int, str]
    sample_ids: list[str]
    load_seconds: float
    deep_audit_cursor: tuple[int, str] = (0, "")


@dataclass
class BackendResult:
    backend: str
    load_seconds: float = 0.0
    big: dict[str, float] = field(default_factory=dict)  # median ms per look-up, big database
    small: dict[str, float] = field(default_factory=dict)  # the same on the small one
    sweep_seconds: float = 0.0
    swept: int = 0
    sweep_batches: int = 0
    ingest_ms: dict[str, float] = field(default_factory=dict)
    ingest_requests: int = 0
    failures: list[str] = field(default_factory=list)


def _rare_every(count: int) -> int:
    """One event in 100 is of the rare type, or more on a database too small for a full page of
    them (one in 9 of 1,000), so both databases answer the filtered page with PAGE + 1 rows."""
    return max(1, min(100, count // (2 * (PAGE + 1))))


def _event(i: int, base_us: int, *, expired: bool, rare_every: int = 100) -> tuple[EventRecord, AuditRecord]:
    ts = base_us + i * 10
    event_id = str(uuid_utils.uuid7())
    kind = "scale.rare" if i % rare_every == 0 else "scale.common"
    payload = orjson.dumps({"order": i, "amount": i % 997, "note": "a typical small payload of some size"})
    expires_at = ts // 1_000_000 - 1 if expired else ts // 1_000_000 + 86_400
    meta = b'{"source_ip":"127.0.0.1","api_version":"v1"}'
    record = EventRecord(event_id, USER, kind, payload, "received", ts, expires_at, meta)
    audit = AuditRecord(
        str(uuid_utils.uuid7()), USER, "event.created", ts, event_id, b"{}", "127.0.0.1", "scale"
    )
    return record, audit


async def load(storage: Storage, count: int, *, chunk: int = 500, parallel: int = 8) -> Loaded:
    """``count`` expired events for one user, ``parallel`` insert calls in flight (group commit)."""
    base = now_us() - count * 10 - 60_000_000
    deep_index = int(count * 0.9)
    deep: tuple[int, str] = (0, "")
    deep_audit: tuple[int, str] = (0, "")
    rare_every = _rare_every(count)
    samples: list[str] = []
    started = time.perf_counter()
    next_start = 0
    lock = asyncio.Lock()

    async def inserter() -> None:
        nonlocal next_start, deep, deep_audit
        while True:
            async with lock:
                start = next_start
                next_start += chunk
            if start >= count:
                return
            pairs = [
                _event(i, base, expired=True, rare_every=rare_every)
                for i in range(start, min(count, start + chunk))
            ]
            for offset, (record, audit) in enumerate(pairs):
                if start + offset == deep_index:
                    deep = (record.ts_us, record.event_id)
                    deep_audit = (audit.ts_us, audit.log_id)
                if (start + offset) % max(1, count // 200) == 0:
                    samples.append(record.event_id)
            await storage.insert_events([e for e, _ in pairs], [a for _, a in pairs])
            if start % 100_000 == 0 and start:
                _say(f"  {start:,} events loaded ({time.perf_counter() - started:.0f} s)")

    await asyncio.gather(*(inserter() for _ in range(parallel)))
    return Loaded(count, deep, samples, time.perf_counter() - started, deep_audit)


async def _median_ms(op: Callable[[int], Awaitable[Any]], repeat: int) -> float:
    for i in range(3):  # warm caches the way a live service has them
        await op(i)
    samples = []
    for i in range(repeat):
        started = time.perf_counter()
        await op(i)
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


async def lookups(storage: Storage, loaded: Loaded, repeat: int) -> dict[str, float]:
    async def first_page(_: int) -> None:
        rows = await storage.list_events(EventQuery(user_id=USER, statuses=INBOX, limit=PAGE + 1))
        assert rows, "empty first page"

    async def deep_page(_: int) -> None:
        query = EventQuery(user_id=USER, statuses=INBOX, after=loaded.deep_cursor, limit=PAGE + 1)
        rows = await storage.list_events(query)
        assert len(rows) == PAGE + 1, "the deep page came back short"

    async def filtered_page(_: int) -> None:
        query = EventQuery(user_id=USER, statuses=INBOX, event_type="scale.rare", limit=PAGE + 1)
        assert await storage.list_events(query), "empty filtered page"

    async def status(i: int) -> None:
        event_id = loaded.sample_ids[i % len(loaded.sample_ids)]
        assert await storage.get_event(USER, event_id) is not None
        await storage.list_attempts(USER, event_id)

    async def deep_audit_page(_: int) -> None:
        query = AuditQuery(user_id=USER, before=loaded.deep_audit_cursor, limit=PAGE)
        assert len(await storage.list_audit(query)) == PAGE, "the deep audit page came back short"

    async def event_audit(i: int) -> None:
        event_id = loaded.sample_ids[i % len(loaded.sample_ids)]
        assert await storage.list_audit(AuditQuery(user_id=USER, event_id=event_id, limit=PAGE))

    return {
        "first inbox page": await _median_ms(first_page, repeat),
        "page 90 % deep (cursor)": await _median_ms(deep_page, repeat),
        "filtered page (1 % type)": await _median_ms(filtered_page, repeat),
        "one event's status": await _median_ms(status, repeat),
        "audit page 90 % deep (cursor)": await _median_ms(deep_audit_page, repeat),
        "one event's audit trail": await _median_ms(event_audit, repeat),
    }


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def sweep_while_ingesting(storage: Storage, archive: Path, result: BackendResult) -> None:
    latencies: list[float] = []
    done = asyncio.Event()

    async def ingest() -> None:
        base = now_us()
        i = 0
        while not done.is_set():
            i += 1
            record, audit = _event(i, base, expired=False)
            started = time.perf_counter()
            await storage.insert_events([record], [audit])
            latencies.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(0.01)

    ingester = asyncio.create_task(ingest())
    started = time.perf_counter()
    try:
        result.swept = await sweep(storage, archive, batch=SWEEP_BATCH)
    finally:
        result.sweep_seconds = time.perf_counter() - started
        done.set()
        await ingester
    result.sweep_batches = len(list(archive.glob("events-*.jsonl.gz")))
    result.ingest_requests = len(latencies)
    result.ingest_ms = {
        "p50": _percentile(latencies, 50),
        "p99": _percentile(latencies, 99),
        "max": max(latencies),
    }


async def _pg_settle(url: str, schema: str) -> None:
    """What autovacuum does within a minute of a bulk load (statistics, visibility map): a reduced
    run loads in seconds and would otherwise measure a table the planner believes empty (it chose
    a bitmap scan of all 300,000 rows and a sort for the first page). A 1,000,000-event load takes
    long enough for autovacuum to have run during it."""
    conn = await asyncpg.connect(url, server_settings={"search_path": schema})
    try:
        for table in ("events", "audit_logs", "delivery_attempts", "deliveries"):
            await conn.execute(f"VACUUM (ANALYZE) {table}")
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def _pg_schema(url: str) -> AsyncIterator[str]:
    """A private schema for one run, dropped afterwards."""
    schema = f"bench_scale_{os.getpid()}_{uuid_utils.uuid4().hex[:8]}"
    try:
        yield schema
    finally:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


async def _no_settle(tag: str) -> None:
    return None


async def run_backend(
    name: str,
    make: Callable[[str], Storage],
    events: int,
    baseline: int,
    repeat: int,
    workdir: Path,
    settle: Callable[[str], Awaitable[None]] = _no_settle,
) -> BackendResult:
    result = BackendResult(name)
    small = make("small")
    await small.open()
    try:
        loaded_small = await load(small, baseline)
        await settle("small")
        result.small = await lookups(small, loaded_small, repeat)
    finally:
        await small.close()
    big = make("big")
    await big.open()
    try:
        _say(f"[{name}] loading {events:,} events ...")
        loaded = await load(big, events)
        result.load_seconds = loaded.load_seconds
        await settle("big")
        _say(f"[{name}] loaded in {loaded.load_seconds:.0f} s; measuring look-ups ...")
        result.big = await lookups(big, loaded, repeat)
        _say(f"[{name}] sweeping {events:,} expired events while ingesting ...")
        await sweep_while_ingesting(big, workdir / f"archive-{name}", result)
    finally:
        await big.close()
    for what, ms in result.big.items():
        ratio = ms / max(result.small[what], 1e-6)
        if ratio > RATIO_BUDGET:
            result.failures.append(f"{what}: {ratio:.2f}x the small database")
    if result.ingest_ms["p99"] >= INGEST_P99_BUDGET_MS:
        result.failures.append(f"ingest p99 during the sweep {result.ingest_ms['p99']:.1f} ms")
    if result.swept < events:
        result.failures.append(f"the sweep removed {result.swept} of {events}")
    return result


def render(results: list[BackendResult], events: int, baseline: int, elapsed: float) -> str:
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    lines = [
        f"`python -m bench.scale` ({events:,} events for one user vs {baseline:,}; {machine}; "
        f"{elapsed / 60:.1f} min). Medians of look-ups through the storage layer, in ms.",
        "",
        "| | "
        + " | ".join(f"{r.backend} {events:,}" for r in results)
        + " | "
        + " | ".join(f"{r.backend} {baseline:,}" for r in results)
        + " | "
        + " | ".join(f"{r.backend} ratio" for r in results)
        + " |",
        "|---" * (1 + 3 * len(results)) + "|",
    ]
    for what in results[0].big:
        big = " | ".join(f"{r.big[what]:.2f}" for r in results)
        small = " | ".join(f"{r.small[what]:.2f}" for r in results)
        ratio = " | ".join(f"{r.big[what] / max(r.small[what], 1e-6):.2f}x" for r in results)
        lines.append(f"| {what} | {big} | {small} | {ratio} |")
    lines += [
        "",
        "| retention sweep while ingesting | " + " | ".join(r.backend for r in results) + " |",
        "|---" * (1 + len(results)) + "|",
        "| load (events/s) | " + " | ".join(f"{events / r.load_seconds:,.0f}" for r in results) + " |",
        "| events swept | " + " | ".join(f"{r.swept:,}" for r in results) + " |",
        "| batches (archive files) | " + " | ".join(f"{r.sweep_batches:,}" for r in results) + " |",
        "| sweep duration (s) | " + " | ".join(f"{r.sweep_seconds:.0f}" for r in results) + " |",
        "| ingest requests during it | " + " | ".join(f"{r.ingest_requests:,}" for r in results) + " |",
        "| ingest p50 / p99 / max (ms) | "
        + " | ".join(
            f"{r.ingest_ms['p50']:.1f} / {r.ingest_ms['p99']:.1f} / {r.ingest_ms['max']:.1f}" for r in results
        )
        + " |",
        "",
        "Checks: "
        + "; ".join(
            f"{r.backend}: " + ("PASS" if not r.failures else "FAIL (" + ", ".join(r.failures) + ")")
            for r in results
        ),
    ]
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    results: list[BackendResult] = []
    with tempfile.TemporaryDirectory(prefix="triggers-scale-") as tmp:
        workdir = Path(tmp)
        backends = [b.strip() for b in args.backends.split(",") if b.strip()]
        pg_url = os.environ.get("TRIGGERS_TEST_POSTGRES_URL")
        for backend in backends:
            if backend == "sqlite":
                results.append(
                    await run_backend(
                        "SQLite",
                        lambda tag: SQLiteStorage(workdir / f"{tag}.db"),
                        args.events,
                        args.baseline,
                        args.repeat,
                        workdir,
                    )
                )
            elif backend == "postgres":
                if not pg_url:
                    _say("TRIGGERS_TEST_POSTGRES_URL is not set: no PostgreSQL column")
                    continue
                async with _pg_schema(pg_url) as big_schema, _pg_schema(pg_url) as small_schema:
                    schemas = {"big": big_schema, "small": small_schema}
                    results.append(
                        await run_backend(
                            "PostgreSQL",
                            lambda tag, url=pg_url, names=schemas: PostgresStorage(url, schema=names[tag]),
                            args.events,
                            args.baseline,
                            args.repeat,
                            workdir,
                            lambda tag, url=pg_url, names=schemas: _pg_settle(url, names[tag]),
                        )
                    )
    report = render(results, args.events, args.baseline, time.perf_counter() - started)
    _say(report)
    if args.json:
        Path(args.json).write_bytes(orjson.dumps([r.__dict__ for r in results], option=orjson.OPT_INDENT_2))
    return 1 if any(r.failures for r in results) else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--baseline", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=30, help="samples per look-up (median)")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--json", help="also write the figures as JSON here")
    return asyncio.run(main_async(parser.parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
