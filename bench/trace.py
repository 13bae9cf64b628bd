"""``python -m bench.trace``: one event's trace, from a producer's POST to the workflow engine.

Runs ``triggers-api serve`` as a user would, with ``OTEL_EXPORTER_OTLP_ENDPOINT`` pointing at a
loopback OTLP/HTTP collector (``bench/otlp.py``, decoding the SDK exporter's protobuf) and
``TRIGGERS_WORKFLOW_URL`` at a loopback receiver; posts one event carrying a producer's
``traceparent``, waits for its delivery, stops the service (which flushes the spans) and prints
the spans of that trace as a tree with their offsets and durations (docs/deploy.md shows one).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson

from bench.otlp import CollectedSpan, Collector
from bench.servers import start_service, start_uvicorn_app, triggers_cli

PRODUCER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PRODUCER_SPAN = "00f067aa0ba902b7"
KINDS = {1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}


def render(spans: list[CollectedSpan], root_parent: str) -> list[str]:
    start = min(s.start_ns for s in spans)
    children: dict[str, list[CollectedSpan]] = {}
    for span in spans:
        children.setdefault(span.parent_span_id, []).append(span)
    lines = [f"{'span':44} {'kind':8} {'service':14} {'starts at':>10} {'duration':>10}"]

    def walk(parent: str, depth: int) -> None:
        for span in sorted(children.get(parent, []), key=lambda s: s.start_ns):
            name = "  " * depth + span.name
            offset = (span.start_ns - start) / 1e6
            lines.append(
                f"{name:44} {KINDS.get(span.kind, '?'):8} {span.service:14} "
                f"{offset:>7.2f} ms {span.duration_ms:>7.2f} ms"
            )
            walk(span.span_id, depth + 1)

    walk(root_parent, 0)
    return lines


def main() -> int:
    collector = Collector().start()
    workdir = Path(tempfile.mkdtemp(prefix="triggers-trace-"))
    receiver = start_uvicorn_app("engine", "bench.ceilings:receiver_app", workers=1, workdir=workdir, env={})
    env = {
        "TRIGGERS_DATABASE_URL": f"sqlite:///{workdir / 'trace.db'}",
        "TRIGGERS_ARCHIVE_DIR": str(workdir / "archive"),
        "TRIGGERS_BOOTSTRAP_KEY": "false",
        "TRIGGERS_WORKFLOW_URL": f"{receiver.url}/hook",
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
    }
    made = subprocess.run(
        [*triggers_cli(), "keys", "create", "--user-id", "trace", "--name", "trace", "--json"],
        env={**os.environ, **env},
        cwd=workdir,
        capture_output=True,
        check=True,
    )
    key = orjson.loads(made.stdout)["api_key"]
    service = start_service("ours", workers=1, workdir=workdir, env=env)
    try:
        headers = {"X-API-Key": key, "traceparent": f"00-{PRODUCER_TRACE}-{PRODUCER_SPAN}-01"}
        with httpx.Client(base_url=service.url, timeout=10) as client:
            client.post(
                "/v1/events", json={"event_type": "warm.up", "payload": {}}, headers={"X-API-Key": key}
            )
            posted = client.post(
                "/v1/events", json={"event_type": "order.created", "payload": {"id": 1}}, headers=headers
            )
            posted.raise_for_status()
            event_id = posted.json()["event_id"]
            deadline = time.monotonic() + 30
            while (
                client.get(f"/v1/events/{event_id}", headers={"X-API-Key": key}).json()["status"]
                != "delivered"
            ):
                if time.monotonic() > deadline:
                    raise RuntimeError("the event was not delivered within 30 s")
                time.sleep(0.05)
    finally:
        service.stop()  # the lifespan's shutdown flushes the batch span processor
        receiver.stop()
        collector.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    spans = [s for s in collector.spans if s.trace_id == PRODUCER_TRACE]
    sys.stdout.write(f"trace {PRODUCER_TRACE}, continuing the producer's span {PRODUCER_SPAN}\n")
    sys.stdout.write("\n".join(render(spans, PRODUCER_SPAN)) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
