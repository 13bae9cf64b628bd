"""The dashboard end to end: a real service, the built app, Debian's Chromium.

The browser steps live in ``dashboard.e2e.mjs`` (Node's test runner + ``playwright-core``, the
dashboard's own dev dependency); this test starts the service the way a user does, hands the
script its address and bootstrap key, and checks the screenshots it leaves in a temporary
directory, so a test run never edits the repository. ``make screenshots`` sets
``TRIGGERS_SCREENSHOT_DIR=docs/screenshots`` to refresh the committed ones on purpose.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import free_port, start_server

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tests" / "e2e" / "dashboard.e2e.mjs"
PLAYWRIGHT = ROOT / "dashboard" / "node_modules" / "playwright-core"
BUILT = ROOT / "src" / "triggers_api" / "dashboard" / "static" / "index.html"
CHROMIUM = Path(os.environ.get("TRIGGERS_TEST_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = [
    "01-login.png",
    "02-overview.png",
    "03-keys.png",
    "04-key-created.png",
    "05-events.png",
    "06-event-detail.png",
    "07-docs.png",
]


class WorkflowEngine(BaseHTTPRequestHandler):
    """The engine the service pushes to: takes most events, refuses ``payment.*`` for good (422,
    so they become dead letters) and answers ``checkout.*`` with 503 (retried minutes later, so
    they stay in the inbox to be acknowledged by hand)."""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        event_type = str(json.loads(body or b"{}").get("event_type", ""))
        status = (
            422 if event_type.startswith("payment.") else 503 if event_type.startswith("checkout.") else 200
        )
        reply = b'{"error":"card processor refused the event"}' if status == 422 else b'{"ok":true}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def workflow_engine() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), WorkflowEngine)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1/triggers/event"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _requirements(tmp_path: Path) -> tuple[str, Path]:
    if not CHROMIUM.exists():
        pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium; .ci/run does it)")
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js not found: the dashboard needs Node 20+")
    if not PLAYWRIGHT.exists():
        pytest.skip("playwright-core not installed: run `make dashboard` (npm ci in dashboard/)")
    if not BUILT.exists():
        pytest.skip("the dashboard is not built: run `make dashboard`")
    return node, Path(os.environ.get("TRIGGERS_SCREENSHOT_DIR") or tmp_path / "screenshots")


def test_dashboard_in_a_real_browser(tmp_path: Path, workflow_engine: str) -> None:
    node, shots = _requirements(tmp_path)
    # The push worker (when this build has one) delivers to the scripted engine above.
    server = start_server(tmp_path, extra_env={"TRIGGERS_WORKFLOW_URL": workflow_engine})
    assert server.api_key, "the service printed no bootstrap key"
    env = dict(os.environ)
    env.update(
        {
            "E2E_BASE_URL": server.url,
            "E2E_API_KEY": server.api_key,
            "E2E_SCREENSHOT_DIR": str(shots),
            "E2E_CHROMIUM": str(CHROMIUM),
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
    assert "\nnot ok" not in result.stdout, report
    expected = list(SCREENSHOTS)
    if "# SKIP" not in result.stdout:  # the delivery steps ran: their screenshot too
        expected.append("08-dead-letter.png")
    for name in expected:
        image = shots / name
        assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert image.stat().st_size > 5_000, f"{name} looks empty"
