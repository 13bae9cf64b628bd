"""The load generator sends each distinct path (an event to acknowledge) once: a quiet machine
that acknowledges faster than the harness stored events must end the run early, not send
repeats that answer 410 and read as errors (a fresh-check's bench smoke row saw 266 of them)."""

from __future__ import annotations

import asyncio
from collections import Counter

from bench.paced import generate


async def acknowledging_server(seen: Counter[str]) -> asyncio.Server:
    """A loopback HTTP/1.1 keep-alive server: 204 for a path's first DELETE, 410 after."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                path = head.split(b" ", 2)[1].decode()
                seen[path] += 1
                status = b"204 No Content" if seen[path] == 1 else b"410 Gone"
                writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(serve, "127.0.0.1", 0)


async def test_each_path_is_sent_once_and_the_window_ends_when_they_run_out() -> None:
    seen: Counter[str] = Counter()
    server = await acknowledging_server(seen)
    port = server.sockets[0].getsockname()[1]
    paths = [f"/v1/events/{i}" for i in range(300)]
    try:
        result = await generate(
            f"http://127.0.0.1:{port}/",
            method="DELETE",
            paths=paths,
            rate=0,  # closed loop: as fast as the answers come, far more than 300 in 30 s
            duration=30.0,
            warmup=0.0,
            connections=8,
        )
    finally:
        server.close()
        await server.wait_closed()
    assert set(seen) == set(paths) and set(seen.values()) == {1}  # every path, none twice
    assert result.requests == len(paths) and result.errors == 0
    assert 0 < result.seconds < 30.0  # the window is the time the paths lasted, not the duration
    assert result.achieved_rate == len(paths) / result.seconds


async def test_without_distinct_paths_the_load_runs_for_its_duration() -> None:
    seen: Counter[str] = Counter()
    server = await acknowledging_server(seen)
    port = server.sockets[0].getsockname()[1]
    try:
        result = await generate(
            f"http://127.0.0.1:{port}/v1/inbox", rate=50, duration=1.0, warmup=0.0, connections=2
        )
    finally:
        server.close()
        await server.wait_closed()
    assert result.seconds == 1.0  # one body for every request: nothing runs out
    assert seen["/v1/inbox"] == result.requests > 1
