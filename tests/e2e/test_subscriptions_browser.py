"""The Subscriptions page end to end: a real service (private targets allowed, as ``make run``
does), a loopback receiver as the subscription target, the built app in Debian's Chromium. The
browser steps are in ``subscriptions.e2e.mjs``; screenshots go to the test's own directory unless
``TRIGGERS_SCREENSHOT_DIR`` names another."""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import free_port, start_server
from tests.e2e.test_dashboard_browser import ROOT, WorkflowEngine, _requirements

SCRIPT = ROOT / "tests" / "e2e" / "subscriptions.e2e.mjs"


class Target(BaseHTTPRequestHandler):
    """The subscription's receiver: records the webhook ids it was sent, answers 200."""

    received: list[str] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        Target.received.append(self.headers.get("webhook-id", ""))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:
        pass


def _serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hooks"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def target() -> Iterator[str]:
    yield from _serve(Target)


@pytest.fixture
def engine() -> Iterator[str]:
    yield from _serve(WorkflowEngine)


def test_subscriptions_page_in_a_real_browser(tmp_path: Path, target: str, engine: str) -> None:
    node, _ = _requirements(tmp_path)
    shots = Path(os.environ.get("TRIGGERS_SCREENSHOT_DIR", tmp_path / "shots"))
    server = start_server(
        tmp_path,
        extra_env={
            "TRIGGERS_WORKFLOW_URL": engine,
            "TRIGGERS_DESTINATION_ALLOW_PRIVATE": "true",
            "TRIGGERS_DELIVERY_POLL_INTERVAL": "0.2",
        },
    )
    assert server.api_key, "the service printed no bootstrap key"
    env = dict(os.environ)
    env.update(
        {
            "E2E_BASE_URL": server.url,
            "E2E_API_KEY": server.api_key,
            "E2E_TARGET_URL": target,
            "E2E_SCREENSHOT_DIR": str(shots),
            "E2E_CHROMIUM": os.environ.get("TRIGGERS_TEST_CHROMIUM", "/usr/bin/chromium"),
        }
    )
    try:
        result = subprocess.run(
            [node, "--test", "--test-reporter=tap", str(SCRIPT)],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    finally:
        server.stop()
    report = f"{result.stdout[-8000:]}\n{result.stderr[-4000:]}"
    assert result.returncode == 0, report + "\n--- server log ---\n" + server.log_path.read_text()[-3000:]
    assert "\n# fail 0" in result.stdout, report
    assert len(Target.received) >= 2  # the matching event and the test event
    for name in ("subscription-created.png", "event-deliveries.png", "subscriptions.png"):
        assert (shots / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
