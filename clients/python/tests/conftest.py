"""Fixtures: a real Triggers API server on loopback (``triggers-api serve`` in a subprocess), a
fault-injecting proxy in front of it, and a webhook receiver.

The server is the parent project's: these tests need ``triggers_api`` installed (``make venv`` does
it) and skip with that reason otherwise, except under ``TRIGGERS_TEST_STRICT=1`` where a skip fails.
"""

from __future__ import annotations

import contextlib
import http.server
import importlib.util
import os
import re
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import httpx
import pytest

STRICT = os.environ.get("TRIGGERS_TEST_STRICT") == "1"
HAVE_SERVER = importlib.util.find_spec("triggers_api") is not None
WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if STRICT and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped under TRIGGERS_TEST_STRICT=1: {report.longrepr}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """``triggers-api serve`` on a fresh SQLite database; restartable on the same port and file."""

    directory: Path
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    api_key: str = ""
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        log_path = self.directory / f"server-{self.port}.log"
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "triggers_api.cli", "serve", "--port", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.directory,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
        else:
            self.stop()
            raise RuntimeError("server did not come up")
        if not self.api_key:  # the bootstrap key, printed once on the first start
            match = re.search(r"tk_[A-Za-z0-9_\-]{43}", log_path.read_text())
            assert match, "no bootstrap key in the server log"
            self.api_key = match.group(0)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def make_server(directory: Path, **extra_env: str) -> Server:
    if not HAVE_SERVER:
        pytest.skip("the Triggers API server (package triggers_api) is not installed: run `make venv`")
    directory.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    for name in list(env):
        if name.startswith("TRIGGERS_") and name not in ("TRIGGERS_TEST_STRICT",):
            del env[name]
    env.update(
        {
            "TRIGGERS_DATABASE_URL": f"sqlite:///{directory / 'triggers.db'}",
            "TRIGGERS_ARCHIVE_DIR": str(directory / "archive"),
            "TRIGGERS_LOG_LEVEL": "WARNING",
            "TRIGGERS_STREAM_HEARTBEAT": "1",
            **extra_env,
        }
    )
    server = Server(directory, env)
    server.start()
    return server


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the session; tests keep apart by using their own event types. Loopback
    subscription targets are allowed (the receiver fixture is one); other private ones are not."""
    live = make_server(tmp_path_factory.mktemp("server"), TRIGGERS_DESTINATION_ALLOWLIST="127.0.0.1/32")
    yield live
    live.stop()


@pytest.fixture
def event_type() -> str:
    """A type no other test uses: each test's events are its own."""
    return f"test.{uuid.uuid4().hex[:12]}"


# -- a receiver -----------------------------------------------------------------------------------
@dataclass
class Received:
    body: bytes
    headers: dict[str, str]


class Receiver:
    """A loopback HTTP endpoint recording every POST; ``answer`` decides the status code."""

    def __init__(self, answer: Callable[[Received], int] = lambda r: 200) -> None:
        self.answer = answer
        self.requests: list[Received] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                got = Received(self.rfile.read(length), {k.lower(): v for k, v in self.headers.items()})
                status = receiver.answer(got)
                with receiver.lock:
                    receiver.requests.append(got)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/webhook"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def wait_for(self, count: int, timeout: float = 20) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.requests) >= count:
                    return list(self.requests)
            time.sleep(0.02)
        raise AssertionError(f"received {len(self.requests)} requests, expected {count}")


# -- a fault-injecting proxy ----------------------------------------------------------------------
class FlakyProxy:
    """Forwards requests to the server; the first ``failures`` requests fail instead, counted here
    (server side): ``mode`` "status" answers ``status`` (with ``headers``) without forwarding;
    "drop" forwards the request, then closes the connection without answering, so the server
    did the work but the client never heard."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.failures = 0
        self.mode = "status"
        self.status = 503
        self.headers: dict[str, str] = {}
        self.count = 0
        self.lock = threading.Lock()
        self.streams: list[socket.socket] = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length) if length else b""
                with proxy.lock:
                    proxy.count += 1
                    fail = proxy.count <= proxy.failures
                if fail and proxy.mode == "status":
                    payload = b'{"error":{"code":"INJECTED","message":"injected failure","details":{},"timestamp":"","request_id":"req_injected"}}'
                    self.send_response(proxy.status)
                    for name, value in proxy.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")
                }
                if self.path.startswith("/v1/inbox/stream"):
                    self._relay_stream(headers)
                    return
                answer = httpx.request(
                    self.command, proxy.upstream + self.path, content=body, headers=headers, timeout=30
                )
                if fail:  # mode "drop": the server stored it; the client gets nothing
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.send_response(answer.status_code)
                for name, value in answer.headers.items():
                    if name.lower() not in (
                        "content-length",
                        "transfer-encoding",
                        "connection",
                        "content-encoding",
                    ):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            def _relay_stream(self, headers: dict[str, str]) -> None:
                """Pass the SSE stream through until ``cut_streams`` closes the connection."""
                with proxy.lock:
                    proxy.streams.append(self.connection)
                url = proxy.upstream + self.path
                try:
                    with httpx.stream("GET", url, headers=headers, timeout=httpx.Timeout(30)) as answer:
                        self.send_response(answer.status_code)
                        self.send_header("Content-Type", answer.headers.get("content-type", ""))
                        self.send_header("Connection", "close")
                        self.end_headers()
                        self.close_connection = True
                        for chunk in answer.iter_raw():
                            self.wfile.write(chunk)
                            self.wfile.flush()
                except (OSError, httpx.HTTPError):
                    pass  # cut, or the client went away

            do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def fail_next(self, failures: int, mode: str = "status", status: int = 503, **headers: str) -> None:
        with self.lock:
            self.count, self.failures, self.mode, self.status = 0, failures, mode, status
            self.headers = dict(headers)

    def cut_streams(self) -> int:
        """Drop every open stream connection, as a server going away would; returns how many."""
        with self.lock:
            streams, self.streams = self.streams, []
        for connection in streams:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        return len(streams)

    def close(self) -> None:
        self.cut_streams()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def proxy(server: Server) -> Iterator[FlakyProxy]:
    flaky = FlakyProxy(server.url)
    yield flaky
    flaky.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    endpoint = Receiver()
    yield endpoint
    endpoint.close()
