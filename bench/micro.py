"""Loop-thread CPU per request, in process: ``python -m bench.micro [--row ingest] [-n 20000]``.

The service's ceiling on one process is the CPU its event-loop thread spends per request (the
SQLite writer runs beside it, mostly outside the GIL). This drives the real app (``create_app``
on a fresh SQLite file, the access log on) through ASGI calls with 50 requests in flight, without
sockets, and reports that thread's CPU time per request: a figure that, unlike req/s on a
shared two-core box, barely moves when other work runs. It does not include uvicorn's HTTP
parsing and socket writes (~30 us per request on this kind of machine).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import orjson


async def drive(
    row: str, total: int, concurrency: int, workdir: Path, no_storage: bool = False
) -> tuple[float, float]:
    from triggers_api.app import create_app
    from triggers_api.config import Settings
    from triggers_api.keys.service import create_key
    from triggers_api.logs import configure_logging

    settings = Settings(
        database_url=f"sqlite:///{workdir / 'micro.db'}",
        archive_dir=workdir / "archive",
        bootstrap_key=False,
        log_level="INFO",
    )
    configure_logging("INFO", "json")
    app = create_app(settings)
    from bench.run import EVENT

    event = orjson.dumps(EVENT)
    batch = orjson.dumps({"events": [EVENT] * 100})
    async with app.router.lifespan_context(app):
        created = await create_key(
            app.state.services.storage,
            user_id="bench",
            name="micro",
            scopes=["events:write", "events:read"],
            rate_limit=10**9,
            expires_us=None,
        )
        key = created.api_key.encode()
        if no_storage:  # the handler's own cost: inserts answer at once, nothing is stored
            from triggers_api.storage.base import StoreOutcome

            async def stored(events: Any, audit: Any, idempotency: Any = None) -> StoreOutcome:
                return StoreOutcome(stored=True, events=list(events))

            app.state.services.storage.insert_events = stored
        method, path, body, query = {
            "ingest": ("POST", "/v1/events", event, b""),
            "batch": ("POST", "/v1/events/batch", batch, b""),
            "inbox": ("GET", "/v1/inbox", b"", b"limit=200"),
        }[row]
        if row == "inbox":
            for _ in range(3):
                await one(app, "POST", "/v1/events/batch", batch, b"", key)
        statuses: dict[int, int] = {}

        async def worker(n: int) -> None:
            for _ in range(n):
                status = await one(app, method, path, body, query, key)
                statuses[status] = statuses.get(status, 0) + 1

        await asyncio.gather(*(worker(50) for _ in range(concurrency)))  # warm up
        cpu, wall = time.thread_time(), time.perf_counter()
        await asyncio.gather(*(worker(total // concurrency) for _ in range(concurrency)))
        cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
    bad = {s: n for s, n in statuses.items() if not 200 <= s < 300}
    if bad:
        sys.stderr.write(f"non-2xx answers: {bad}\n")
    done = (total // concurrency) * concurrency
    return cpu / done * 1e6, done / wall


async def one(app: Any, method: str, path: str, body: bytes, query: bytes, key: bytes) -> int:
    scope: MutableMapping[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"x-api-key", key),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.micro", description=__doc__)
    parser.add_argument("--row", choices=("ingest", "batch", "inbox"), default="ingest")
    parser.add_argument("-n", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--no-storage", action="store_true", help="inserts answer at once (handler cost)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="triggers-micro-") as tmp:
        devnull = os.open(os.devnull, os.O_WRONLY)
        saved = os.dup(2)
        os.dup2(devnull, 2)  # the access log is written (its cost counts) but not shown
        try:
            import uvloop

            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                cpu_us, rate = runner.run(
                    drive(args.row, args.n, args.concurrency, Path(tmp), args.no_storage)
                )
        finally:
            os.dup2(saved, 2)
    sys.stdout.write(
        f"{args.row}: {cpu_us:.1f} us of loop-thread CPU per request ({rate:,.0f} req/s in process)\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
