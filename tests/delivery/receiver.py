"""A real HTTP receiver on loopback whose answers the test scripts (the workflow engine's stand-in).

Raw asyncio rather than a framework, so a script can do what real engines do badly: answer any
status with any headers, hang past the sender's timeout, or drop the connection mid-request.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson

from tests.postgres.schemas import WAIT_SCALE


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes
    at: float  # time.monotonic() on arrival

    @property
    def event_id(self) -> str:
        return self.headers.get("webhook-id", "")

    def json(self) -> dict[str, object]:
        value = orjson.loads(self.body)
        assert isinstance(value, dict)
        return value


@dataclass
class Respond:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering


@dataclass
class Hang:
    """Read the request, answer nothing for ``seconds`` (past the sender's timeout), then close."""

    seconds: float = 30.0


@dataclass
class Drop:
    """Close the connection without a byte of answer."""


Action = Respond | Hang | Drop
Script = Callable[["Received", int], Action]  # (request, how many times this event id was seen)


def always(action: Action) -> Script:
    return lambda request, seen: action


def fail_then_succeed(failures: int, failure: Action | None = None) -> Script:
    """Each event fails ``failures`` times (503 by default), then is accepted."""
    bad = failure or Respond(503, b"engine busy")
    return lambda request, seen: bad if seen <= failures else Respond(200, b'{"ok":true}')


class Receiver:
    def __init__(self, script: Script | None = None) -> None:
        self.script: Script = script or always(Respond(200, b'{"ok":true}'))
        self.requests: list[Received] = []
        self.answered: list[tuple[Received, int, float]] = []  # (request, status, when) once answered
        self._seen: Counter[str] = Counter()
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._arrival = asyncio.Event()
        self.url = ""

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._on_connect, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/v1/triggers/event"
        return self.url

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    def release_hangs(self) -> None:
        """End every hanging connection now (closes them without an answer)."""
        for task in list(self._handlers):
            task.cancel()

    def ids(self) -> list[str]:
        return [r.event_id for r in self.requests]

    def delivered_ids(self) -> list[str]:
        return [r.event_id for r, status, _ in self.answered if 200 <= status < 300]

    async def wait_for(self, predicate: Callable[[Receiver], bool], timeout: float = 15.0) -> None:
        timeout *= WAIT_SCALE
        deadline = time.monotonic() + timeout
        while not predicate(self):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"receiver: condition not met in {timeout}s; saw {len(self.requests)} requests"
                )
            self._arrival.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrival.wait(), min(remaining, 0.05))

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            await self._serve(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._handlers.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await self._serve_one(reader, writer):
            pass  # keep-alive: the next request on the same connection

    async def _serve_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        request = Received(method, path, headers, body, time.monotonic())
        self._seen[request.event_id] += 1
        action = self.script(request, self._seen[request.event_id])
        self.requests.append(request)
        self._arrival.set()
        if isinstance(action, Drop):
            return False
        if isinstance(action, Hang):
            await asyncio.sleep(action.seconds)
            return False
        if action.delay:
            await asyncio.sleep(action.delay)
        extra = "".join(f"{k}: {v}\r\n" for k, v in action.headers.items())
        writer.write(
            f"HTTP/1.1 {action.status} Scripted\r\nContent-Length: {len(action.body)}\r\n"
            f"Content-Type: text/plain\r\n{extra}\r\n".encode("latin-1")
            + action.body
        )
        await writer.drain()
        self.answered.append((request, action.status, time.monotonic()))
        self._arrival.set()
        return True
