"""The benchmark harness still runs end to end (``make bench`` is never part of ``make test``).

A second of load per row, venv-only tools (``bench.paced`` instead of wrk, no nginx), the service
and one ceiling; no figure is asserted, only that every row was measured and printed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[2]


def test_bench_smoke_run_prints_every_row(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "TRIGGERS_TEST_POSTGRES_URL"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    out = tmp_path / "figures.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--smoke",
            "--targets",
            "ours,raw",
            "--workers",
            "1",
            "--json",
            str(out),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=420,  # about a minute on a quiet machine; several on a shared, busy one
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    table = done.stdout
    for label in (
        "ingest 1 event: req/s",
        "p95 ms at fixed rate",
        "batch of 100",
        "inbox page",
        "acknowledge",
        "acknowledge batch of 100",
        "acknowledge 1 event: p95 ms at fixed rate",
        "ack req/s / ingest req/s",
        "fan-out to 3 subscriptions",
    ):
        assert label in table
    assert "failed:" not in table, table
    figures = orjson.loads(out.read_bytes())
    delivery = figures["ours"]["cells"]["delivery"]  # may drain the few events of a smoke run
    assert isinstance(delivery, dict) or "were all delivered" in delivery, delivery
    fanout = figures["ours"]["cells"]["fanout"]
    assert isinstance(fanout, dict) or "were all delivered" in fanout, fanout
    for row in ("ingest", "paced", "batch", "inbox", "ack", "ackpaced", "ackbatch"):
        cell = figures["ours"]["cells"][row]
        assert isinstance(cell, dict), f"{row}: {cell}"
        assert cell["requests"] > 0, f"{row}: {cell}"
        if row != "ackpaced":  # open loop: on a busy machine some may go unanswered, a figure
            assert cell["errors"] == 0, f"{row}: {cell}"
    for row in ("ingest", "batch", "inbox", "ack"):
        assert figures["raw"]["cells"][row]["requests"] > 0
    assert figures["ours"]["peak_rss"] > 0
