"""An open-loop HTTP/1.1 load generator: requests leave on a fixed schedule, whatever the answers do.

Why not wrk: wrk is closed-loop (a connection sends its next request when the previous answer
arrives), so a slow server slows the load down and hides its own queueing ("coordinated
omission"); wrk2, which fixes this, is not packaged by Debian. This is wrk2's method:

- ``connections`` keep-alive connections share the target rate; connection ``c`` sends its
  ``k``-th request at the *intended* time ``start + (k * connections + c) / rate``;
- latency is measured from that intended time, not from when the request actually left, so a
  stalled answer also counts against every request queued behind it;
- only requests intended after ``warmup`` seconds are recorded.

Timers have ~1 ms granularity (the event loop's), so a figure includes up to ~1 ms of timer slack.
With ``rate == 0`` it runs closed-loop instead (as fast as answers come): the smoke test uses that
so the harness runs with nothing outside the virtualenv.

Run as ``python -m bench.paced --url ... --rate 5000 --duration 5``; prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import cast
from urllib.parse import urlsplit


@dataclass(slots=True)
class PacedResult:
    requests: int  # recorded (after warmup)
    seconds: float  # the recorded window
    errors: int  # non-2xx answers, failed connections and unanswered requests (recorded window)
    abandoned: int  # of those, requests never sent because the server had fallen too far behind
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    offered_rate: float  # 0 for closed-loop
    achieved_rate: float
    cpu_seconds: float  # this generator's own CPU time (user + system)


def percentile(sorted_values: Sequence[float], p: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(p / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[index]


class _Connection(asyncio.Protocol):
    """One keep-alive connection that parses Content-Length framed responses."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[int] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection lost"))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buffer[:end]).lower()
        length = 0
        marker = head.find(b"\r\ncontent-length:")
        if marker >= 0:
            stop = head.find(b"\r\n", marker + 2)
            length = int(head[marker + 17 : stop if stop > 0 else None])
        if len(self.buffer) < end + 4 + length:
            return
        status = int(self.buffer[9:12])
        del self.buffer[: end + 4 + length]
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(status)

    async def exchange(self, request: bytes) -> int:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return await self.waiter


def build_requests(
    method: str, host: str, paths: Sequence[str], body: bytes, api_key: str, bodies: Sequence[bytes] = ()
) -> list[bytes]:
    headers = f"Host: {host}\r\n"
    if api_key:
        headers += f"X-API-Key: {api_key}\r\n"
    if bodies:  # one request per body, all to the first path
        return [
            f"{method} {paths[0]} HTTP/1.1\r\n{headers}Content-Type: application/json\r\n"
            f"Content-Length: {len(b)}\r\n\r\n".encode()
            + b
            for b in bodies
        ]
    if body:
        headers += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return [f"{method} {path} HTTP/1.1\r\n{headers}\r\n".encode() + body for path in paths]


async def generate(
    url: str,
    *,
    method: str = "GET",
    paths: Sequence[str] = (),
    body: bytes = b"",
    bodies: Sequence[bytes] = (),
    api_key: str = "",
    rate: float = 0.0,
    duration: float = 5.0,
    warmup: float = 1.0,
    connections: int = 50,
) -> PacedResult:
    """Send the load and measure it. Paths or bodies given one per request are each sent once
    (they name distinct events to acknowledge: a second use would be a 410, not a figure); when
    they run out the run ends there and its window is the time they lasted."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    requests = build_requests(
        method, f"{host}:{port}", list(paths) or [parts.path or "/"], body, api_key, bodies
    )
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    errors = 0
    counter = 0
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    clock = time.perf_counter  # the loop's own clock has millisecond steps under uvloop
    start = clock() + 0.05
    record_from = start + warmup
    end = start + warmup + duration
    # Bounded even against a server far slower than the offered rate: after this, requests
    # still waiting to be sent are counted as unanswered (with their lag so far as latency).
    give_up = end + max(5.0, duration)
    abandoned = 0
    once = bool(paths) or bool(bodies)
    ran_out_at: float | None = None

    async def one(index: int) -> None:
        nonlocal errors, counter, abandoned, ran_out_at
        conn: _Connection | None = None
        k = 0
        while True:
            if rate > 0:
                intended = start + (k * connections + index) / rate
                k += 1
                if intended >= end:
                    return
                if clock() > give_up:  # far behind schedule: what is left counts as unanswered
                    if intended >= record_from:
                        latencies.append(give_up - intended)  # a lower bound
                        errors += 1
                        abandoned += 1
                    continue
                delay = intended - clock()
                if delay > 0:
                    await asyncio.sleep(delay)
            else:
                while clock() < start:  # begin at the schedule's start, as the open loop does
                    await asyncio.sleep(start - clock())
                intended = clock()
                if intended >= end:
                    return
            if once and counter >= len(requests):
                ran_out_at = ran_out_at or clock()
                return
            request = requests[counter % len(requests)]
            counter += 1
            try:
                if conn is None or conn.closed:
                    _, conn = await loop.create_connection(_Connection, host, port)
                status = await asyncio.wait_for(conn.exchange(request), max(0.001, give_up - clock()))
                failed = not 200 <= status < 300
            except (OSError, ConnectionError, ValueError, TimeoutError):
                if conn is not None and conn.transport is not None:
                    conn.transport.close()
                conn, failed = None, True
            if intended >= record_from:
                latencies.append(clock() - intended)
                errors += failed

    await asyncio.gather(*(one(i) for i in range(connections)))
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    latencies.sort()
    recorded = len(latencies)
    window = duration if ran_out_at is None else max(0.0, min(duration, ran_out_at - record_from))
    return PacedResult(
        requests=recorded,
        seconds=window,
        errors=errors,
        abandoned=abandoned,
        p50_ms=percentile(latencies, 50) * 1000,
        p95_ms=percentile(latencies, 95) * 1000,
        p99_ms=percentile(latencies, 99) * 1000,
        max_ms=(latencies[-1] * 1000) if latencies else 0.0,
        offered_rate=rate,
        achieved_rate=recorded / window if window else 0.0,
        cpu_seconds=(cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime),
    )


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", required=True, help="base URL, e.g. http://127.0.0.1:8001/v1/events")
    parser.add_argument("--method", default="GET")
    parser.add_argument("--paths-file", type=Path, help="one path per line, each used once")
    parser.add_argument("--body-file", type=Path)
    parser.add_argument("--bodies-file", type=Path, help="one body per line, each used once")
    parser.add_argument("--api-key", default="")
    parser.add_argument("--rate", type=float, default=0.0, help="requests/s offered; 0: closed loop")
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--connections", type=int, default=50)
    args = parser.parse_args(argv)
    paths = args.paths_file.read_text().split() if args.paths_file else []
    body = args.body_file.read_bytes() if args.body_file else b""
    bodies = [b for b in args.bodies_file.read_bytes().splitlines() if b] if args.bodies_file else []
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        result = runner.run(
            generate(
                args.url,
                method=args.method.upper(),
                paths=paths,
                body=body,
                bodies=bodies,
                api_key=args.api_key,
                rate=args.rate,
                duration=args.duration,
                warmup=args.warmup,
                connections=args.connections,
            )
        )
    sys.stdout.write(json.dumps(asdict(result)) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
