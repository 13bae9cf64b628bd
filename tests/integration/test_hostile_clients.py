"""Slow and hostile clients against a real server (raw sockets on loopback): each is cut off or
bounded by a ``TRIGGERS_HTTP_*`` limit while ordinary clients keep being served.

The limits are set small here so each test takes a few seconds; the assertions are about what
happens (a 408 in the error shape, a dropped connection, bounded descriptors), never how fast.
"""

from __future__ import annotations

import os
import select
import selectors
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests.conftest import LiveServer, start_server

LIMITS = {
    "TRIGGERS_HTTP_HEADER_TIMEOUT": "1",
    "TRIGGERS_HTTP_BODY_TIMEOUT": "1",
    "TRIGGERS_HTTP_MAX_CONNECTIONS": "200",
    "TRIGGERS_HTTP_WRITE_BUFFER_BYTES": "65536",
    "TRIGGERS_HTTP_WRITE_TIMEOUT": "1",
    "TRIGGERS_STREAM_HEARTBEAT": "60",  # a stream that is not dropped would stay silent
    "TRIGGERS_DEFAULT_RATE_LIMIT": "100000",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server for the module (starting one takes longer than these tests on a busy box)."""
    live = start_server(tmp_path_factory.mktemp("hostile"), extra_env=LIMITS)
    try:
        yield live
    finally:
        live.stop()


def _connect(server: LiveServer, rcvbuf: int | None = None) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.connect(("127.0.0.1", server.port))
    return sock


def _read_response(sock: socket.socket, timeout: float) -> bytes:
    """Everything the server sends until it closes (or ``timeout`` passes)."""
    sock.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    return data


def _error_code(response: bytes) -> tuple[int, str]:
    head, _, body = response.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, orjson.loads(body)["error"]["code"]


def _ordinary_request_works(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url, headers={"X-API-Key": server.api_key}, timeout=30) as client:
        created = client.post("/v1/events", json={"event_type": "ordinary.client", "payload": {"n": 1}})
        assert created.status_code == 201, created.text
        assert client.get(f"/v1/events/{created.json()['event_id']}").status_code == 200


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_headers_one_byte_at_a_time_get_408(server: LiveServer) -> None:
    sock = _connect(server)
    request = b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 200
    answer = b""
    deadline = time.monotonic() + 20
    try:
        for byte in request:  # one byte every 0.2 s, far slower than the 1 s header deadline allows
            sock.sendall(bytes([byte]))
            ready, _, _ = select.select([sock], [], [], 0.2)
            if ready:
                answer = _read_response(sock, 5)
                break
            assert time.monotonic() < deadline, "the slow client was never cut off"
    except (BrokenPipeError, ConnectionResetError):
        pass
    finally:
        sock.close()
    assert answer, "the server closed without an answer"
    assert _error_code(answer) == (408, "REQUEST_TIMEOUT")
    _ordinary_request_works(server)


def test_body_never_finished_gets_408(server: LiveServer) -> None:
    sock = _connect(server)
    try:
        sock.sendall(
            b"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"X-API-Key: " + server.api_key.encode() + b"\r\nContent-Length: 1000\r\n\r\n"
            b'{"event_type": "never.finished", "payload": {'
        )
        _ordinary_request_works(server)  # served meanwhile
        answer = _read_response(sock, 15)
    finally:
        sock.close()
    assert _error_code(answer) == (408, "REQUEST_TIMEOUT")
    _ordinary_request_works(server)


def test_headers_too_large_get_431(server: LiveServer) -> None:
    sock = _connect(server)
    try:
        sock.sendall(b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        try:
            for _ in range(100):  # 100 x 1 KiB of headers: over the 64 KiB default
                sock.sendall(b"X-Filler: " + b"f" * 1014 + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = _read_response(sock, 10)
    finally:
        sock.close()
    assert _error_code(answer) == (431, "HEADERS_TOO_LARGE")


def test_two_thousand_idle_connections_are_bounded(server: LiveServer) -> None:
    pid = server.process.pid
    fds_before = _open_fds(pid)
    idle: list[socket.socket] = []
    try:
        for _ in range(2000):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            try:
                sock.connect(("127.0.0.1", server.port))
            except BlockingIOError:
                pass
            idle.append(sock)
        # Ordinary clients are served while the idle flood holds its connections.
        for _ in range(5):
            _ordinary_request_works(server)
        # The server holds at most its connection cap (200) whatever the flood.
        assert _open_fds(pid) <= fds_before + 200 + 50
        # And every idle connection is closed by the header deadline (1 s here), none left open.
        open_socks = set(idle)
        watcher = selectors.DefaultSelector()  # epoll: select() cannot take 2,000 descriptors
        for sock in idle:
            watcher.register(sock, selectors.EVENT_READ)
        deadline = time.monotonic() + 20
        while open_socks and time.monotonic() < deadline:
            for key, _ in watcher.select(0.5):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    if sock.recv(4096) != b"":
                        continue  # an answer first (a 408 or 503): the close follows
                except BlockingIOError:
                    continue
                except OSError:
                    pass
                open_socks.discard(sock)
                watcher.unregister(sock)
        watcher.close()
        assert not open_socks, f"{len(open_socks)} idle connections were never closed"
    finally:
        for sock in idle:
            sock.close()
    _ordinary_request_works(server)
    assert _open_fds(pid) <= fds_before + 50


def test_stream_reader_that_never_reads_is_dropped(server: LiveServer) -> None:
    pid = server.process.pid
    sock = _connect(server, rcvbuf=4096)
    sock.sendall(
        b"GET /v1/inbox/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
        b"X-API-Key: " + server.api_key.encode() + b"\r\n\r\n"
    )
    sock.settimeout(10)
    head = b""
    while b": connected" not in head:
        chunk = sock.recv(4096)
        assert chunk, "the stream closed before it started"
        head += chunk
    assert head.startswith(b"HTTP/1.1 200")
    rss_before = _rss_kib(pid)
    # ~24 MB of events for this user: far more than the socket buffers hold. The reader reads none.
    blob = "x" * 60_000
    with httpx.Client(base_url=server.url, headers={"X-API-Key": server.api_key}, timeout=60) as client:
        for batch in range(8):
            body = {"events": [{"event_type": "big.one", "payload": {"b": batch, "blob": blob}}] * 50}
            response = client.post("/v1/events/batch", json=body)
            assert response.status_code == 201, response.text
        # The server drops the stalled stream (its write buffer stayed full for over 1 s) ...
        deadline = time.monotonic() + 30
        while b"http_client_dropped" not in server.log_path.read_bytes():
            assert time.monotonic() < deadline, "the stalled stream was never dropped"
            time.sleep(0.2)
        # ... while ordinary requests are served.
        assert client.get("/v1/health").status_code == 200
    _ordinary_request_works(server)
    # The dropped reader finds the end of its stream: the server holds nothing for it any more.
    sock.settimeout(15)
    ended = False
    try:
        while True:
            if not sock.recv(1 << 20):
                ended = True
                break
    except ConnectionResetError:
        ended = True
    except TimeoutError:
        ended = False
    finally:
        sock.close()
    assert ended, "the stream was still open"
    # Memory stayed bounded: not the ~24 MB sent to the stream on top (generous for allocator noise).
    assert _rss_kib(pid) - rss_before < 200_000
