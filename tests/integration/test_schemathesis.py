"""Schemathesis against the live service: no 5xx, no undocumented status, header or shape.

Two checks are left out on purpose, because the contract itself disagrees with them:
``positive_data_acceptance`` (a schema-valid request may still be refused for reasons no schema
can express: an opaque cursor the server never issued, an ``Idempotency-Key`` reused with another
body, an ``expires_at`` that is no longer in the future) and ``use_after_free``
(``GET /v1/events/{id}/status`` keeps reporting ``delivered`` after the event is acknowledged,
as the issue requires).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import start_server

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"


def test_schemathesis_finds_nothing(tmp_path: Path) -> None:
    # Long polls are capped at 1 s here (the fuzzer's request timeout is 10 s); the live stream
    # never ends by design, so it is left out (tests/delivery/test_stream.py covers it).
    server = start_server(tmp_path, extra_env={"TRIGGERS_INBOX_MAX_WAIT": "1"})
    try:
        env = {**server.env}
        created = subprocess.run(
            [
                sys.executable,
                "-m",
                "triggers_api.cli",
                "keys",
                "create",
                "--user-id",
                "fuzz",
                "--name",
                "fuzz",
                "--scope",
                "events:write",
                "--scope",
                "events:read",
                "--scope",
                "keys:manage",
                "--rate-limit",
                "1000000",
                "--json",
            ],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            check=True,
        )
        api_key = json.loads(created.stdout)["api_key"]
        result = subprocess.run(
            [
                str(SCHEMATHESIS),
                "run",
                f"{server.url}/v1/openapi.json",
                "-H",
                f"X-API-Key: {api_key}",
                "--checks",
                "all",
                "--exclude-checks",
                "positive_data_acceptance,use_after_free",
                "--exclude-operation-id",
                "streamInbox",
                "--max-examples",
                os.environ.get("TRIGGERS_FUZZ_EXAMPLES", "40"),
                "--seed",
                "20261128",
                "--request-timeout",
                "10",
            ],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=900,
        )
        assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
        assert server.process.poll() is None, "the server died under fuzzing"
    finally:
        server.stop()
