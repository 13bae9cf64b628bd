"""The worker's HTTP/1.1 client against real loopback servers: framing, keep-alive, failures."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from triggers_api.delivery.http11 import BODY_KEPT, Http11Pool, PushError


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length")
    )
    return head, await reader.readexactly(length)


class Server:
    def __init__(self, answers: list[bytes]) -> None:
        self.answers = answers
        self.connections = 0
        self.requests: list[tuple[bytes, bytes]] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while self.answers:
                self.requests.append(await read_request(reader))
                writer.write(self.answers.pop(0))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


Serve = Callable[[list[bytes]], Awaitable[tuple[Server, str]]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    servers: list[asyncio.Server] = []

    async def start(answers: list[bytes]) -> tuple[Server, str]:
        state = Server(answers)
        server = await asyncio.start_server(state.handle, "127.0.0.1", 0)
        servers.append(server)
        return state, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/hook?x=1"

    yield start
    for server in servers:
        server.close()


async def test_keep_alive_reuses_one_connection_and_sends_the_headers(serve: Serve) -> None:
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    state, url = await serve([ok, ok, ok])
    pool = Http11Pool(url, max_idle=4)
    for n in range(3):
        answer = await pool.post(b"x-n: %d\r\n" % n, b'{"n":1}')
        assert (answer.status, answer.body) == (200, b"ok")
    await pool.aclose()
    assert state.connections == 1
    head, body = state.requests[2]
    assert head.startswith(b"POST /hook?x=1 HTTP/1.1\r\n") and b"x-n: 2\r\n" in head
    assert b"content-length: 7\r\n" in head and body == b'{"n":1}'


async def test_chunked_interim_and_retry_after(serve: Serve) -> None:
    chunked = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 503 Busy\r\nTransfer-Encoding: chunked\r\nRetry-After: 7\r\n\r\n"
        b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n"
    )
    ok = b"HTTP/1.1 204 No Content\r\n\r\n"
    state, url = await serve([chunked, ok])
    pool = Http11Pool(url, max_idle=4)
    answer = await pool.post(b"", b"{}")
    assert (answer.status, answer.retry_after, answer.body) == (503, "7", b"hello world")
    answer = await pool.post(b"", b"{}")
    assert (answer.status, answer.body) == (204, b"")
    await pool.aclose()
    assert state.connections == 1  # both bodies were read to their end: the connection was reused


async def test_a_long_body_is_cut_at_a_kib_and_its_connection_not_reused(serve: Serve) -> None:
    long = b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n" + b"y" * 5000
    close = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nz"
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    state, url = await serve([long, close, ok])
    pool = Http11Pool(url, max_idle=4)
    answer = await pool.post(b"", b"{}")
    assert answer.body == b"y" * BODY_KEPT
    assert (await pool.post(b"", b"{}")).body == b"z"
    assert (await pool.post(b"", b"{}")).status == 200
    await pool.aclose()
    assert state.connections == 3


async def test_failures_carry_their_error_class(serve: Serve) -> None:
    state, url = await serve([b"garbage\r\n\r\n"])
    pool = Http11Pool(url, max_idle=4)
    with pytest.raises(PushError) as dropped:
        await pool.post(b"", b"{}")
    assert dropped.value.kind == "connection_dropped"
    state.answers = []  # the next connection is closed without an answer
    with pytest.raises(PushError) as closed:
        await pool.post(b"", b"{}")
    assert closed.value.kind == "connection_dropped"
    await pool.aclose()
    with pytest.raises(ValueError):
        Http11Pool("ftp://example.com/x", max_idle=1)
