"""The Event types page end to end: a real service, the built app, Debian's Chromium.

The browser steps live in ``event_types.e2e.mjs``; screenshots go to the test's own directory.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.conftest import start_server
from tests.e2e.test_dashboard_browser import ROOT, _requirements

SCRIPT = ROOT / "tests" / "e2e" / "event_types.e2e.mjs"
CHROMIUM = Path(os.environ.get("TRIGGERS_TEST_CHROMIUM", "/usr/bin/chromium"))


def test_event_types_page_in_a_real_browser(tmp_path: Path) -> None:
    node, _ = _requirements(tmp_path)
    shots = tmp_path / "screenshots"
    server = start_server(tmp_path)
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
    for name in ("event-types.png", "event-with-warning.png"):
        assert (shots / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
