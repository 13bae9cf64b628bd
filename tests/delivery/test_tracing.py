"""Tracing: one trace from the producer's POST to the workflow engine, exported over real OTLP/HTTP.

The app runs with ``OTEL_EXPORTER_OTLP_ENDPOINT`` pointing at a loopback collector that decodes
the SDK exporter's protobuf; the engine is the scripted receiver. Without the endpoint, no span
is made, and a producer's ``traceparent`` still travels with the event to the engine.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from bench.otlp import Collector

from tests.conftest import services_of
from tests.delivery.conftest import pushing_app
from tests.delivery.receiver import Receiver
from triggers_api.logs import configure_logging

PRODUCER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PRODUCER_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{PRODUCER_TRACE}-{PRODUCER_SPAN}-01"
SERVER, CLIENT = 2, 3  # the proto's SpanKind values


@pytest.fixture
def collector() -> Iterator[Collector]:
    c = Collector().start()
    try:
        yield c
    finally:
        c.stop()


async def test_one_trace_runs_from_the_post_to_the_engine(
    tmp_path: Path, receiver: Receiver, collector: Collector, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("INFO", "json", tracing=True)
    capsys.readouterr()
    async with pushing_app(tmp_path, receiver, otel_exporter_otlp_endpoint=collector.url) as p:
        response = await p.client.post(
            "/v1/events",
            json={"event_type": "order.created", "payload": {"n": 1}},
            headers={**p.auth, "traceparent": TRACEPARENT},
        )
        assert response.status_code == 201, response.text
        event_id = response.json()["event_id"]
        await p.wait_status(event_id, "delivered")
        event = (await p.client.get(f"/v1/events/{event_id}", headers=p.auth)).json()
    # leaving the app shut the tracer provider down: every span is exported by now
    logs = [orjson.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]

    spans = [s for s in collector.spans if s.trace_id == PRODUCER_TRACE]
    by_name = {s.name: s for s in spans}
    server = by_name["POST /v1/events"]
    commit = by_name["storage.commit"]
    push = by_name["delivery.push"]
    assert server.kind == SERVER and server.parent_span_id == PRODUCER_SPAN
    assert server.attributes["http.response.status_code"] == 201
    assert commit.parent_span_id == server.span_id
    assert push.kind == CLIENT and push.parent_span_id == server.span_id
    assert push.attributes["triggers.event_id"] == event_id
    assert push.attributes["http.response.status_code"] == 200
    assert server.service == "triggers-api"

    # the event keeps the server span's context; the push carries the delivery span's
    assert event["metadata"]["traceparent"] == f"00-{PRODUCER_TRACE}-{server.span_id}-01"
    pushed = [r for r in receiver.requests if r.event_id == event_id]
    assert pushed and pushed[0].headers["traceparent"] == f"00-{PRODUCER_TRACE}-{push.span_id}-01"

    # the access log line of the POST carries the trace id
    posted = [line for line in logs if line.get("event") == "request" and line.get("path") == "/v1/events"]
    assert posted and posted[0]["trace_id"] == PRODUCER_TRACE and posted[0]["span_id"] == server.span_id


async def test_a_request_without_traceparent_starts_a_trace_and_routes_are_named(
    tmp_path: Path, receiver: Receiver, collector: Collector
) -> None:
    async with pushing_app(tmp_path, receiver, otel_exporter_otlp_endpoint=collector.url) as p:
        event_id = await p.ingest()
        await p.wait_status(event_id, "delivered")
        assert (await p.client.get(f"/v1/events/{event_id}", headers=p.auth)).status_code == 200
    named = {s.name for s in collector.spans}
    assert "GET /v1/events/{event_id}" in named  # the route template, not the id
    server = next(s for s in collector.spans if s.name == "POST /v1/events")
    assert server.parent_span_id == ""
    push = next(s for s in collector.spans if s.name == "delivery.push")
    assert push.trace_id == server.trace_id and push.parent_span_id == server.span_id


async def test_without_the_endpoint_no_spans_and_the_producers_traceparent_reaches_the_engine(
    tmp_path: Path, receiver: Receiver, collector: Collector
) -> None:
    async with pushing_app(tmp_path, receiver) as p:
        assert "tracing" not in services_of(p.app).extras
        assert services_of(p.app).ingestor.tracing is None
        response = await p.client.post(
            "/v1/events",
            json={"event_type": "order.created", "payload": {"n": 1}},
            headers={**p.auth, "traceparent": TRACEPARENT},
        )
        event_id = response.json()["event_id"]
        bad = await p.client.post(
            "/v1/events",
            json={"event_type": "order.created", "payload": {"n": 2}},
            headers={**p.auth, "traceparent": "00-not-a-trace-01"},
        )
        await p.wait_status(event_id, "delivered")
        await p.wait_status(bad.json()["event_id"], "delivered")
        event = (await p.client.get(f"/v1/events/{event_id}", headers=p.auth)).json()
        other = (await p.client.get(f"/v1/events/{bad.json()['event_id']}", headers=p.auth)).json()
    assert event["metadata"]["traceparent"] == TRACEPARENT
    assert "traceparent" not in other["metadata"]  # malformed: ignored, as the W3C spec says
    pushed = {r.event_id: r.headers for r in receiver.requests}
    assert pushed[event_id]["traceparent"] == TRACEPARENT
    assert "traceparent" not in pushed[bad.json()["event_id"]]
    assert collector.requests == 0


async def test_pushes_to_subscriptions_continue_the_producers_trace(
    tmp_path: Path, receiver: Receiver, collector: Collector
) -> None:
    """Fan-out (issue 10): each destination's push is a ``delivery.push`` span of the producer's
    trace, and carries its own ``traceparent``; with tracing off the producer's travels on as is."""
    from tests.conftest import new_key

    scopes = ("events:write", "events:read", "subscriptions:manage")
    target = Receiver()
    await target.start()
    try:
        for endpoint in (collector.url, None):
            async with pushing_app(
                tmp_path / str(endpoint is None),
                receiver,
                otel_exporter_otlp_endpoint=endpoint,
                destination_allowlist="127.0.0.1/32",
            ) as p:
                auth = {"X-API-Key": await new_key(p.app, scopes=scopes)}
                created = await p.client.post(
                    "/v1/subscriptions", json={"target_url": target.url}, headers=auth
                )
                assert created.status_code == 201, created.text
                response = await p.client.post(
                    "/v1/events",
                    json={"event_type": "order.created", "payload": {"n": 1}},
                    headers={**auth, "traceparent": TRACEPARENT},
                )
                assert response.status_code == 201, response.text
                event_id = response.json()["event_id"]
                await p.wait_status(event_id, "delivered")
            sub_push = [r for r in target.requests if r.event_id == event_id]
            engine_push = [r for r in receiver.requests if r.event_id == event_id]
            assert sub_push and engine_push
            if endpoint is None:
                assert sub_push[0].headers["traceparent"] == TRACEPARENT
                assert engine_push[0].headers["traceparent"] == TRACEPARENT
                continue
            pushes = {
                s.attributes["triggers.destination"]: s
                for s in collector.spans
                if s.name == "delivery.push" and s.attributes.get("triggers.event_id") == event_id
            }
            subscription = created.json()["subscription_id"]
            assert set(pushes) == {"workflow", subscription}
            for span in pushes.values():
                assert span.trace_id == PRODUCER_TRACE and span.kind == CLIENT
            assert (
                sub_push[0].headers["traceparent"] == f"00-{PRODUCER_TRACE}-{pushes[subscription].span_id}-01"
            )
            assert (
                engine_push[0].headers["traceparent"]
                == f"00-{PRODUCER_TRACE}-{pushes['workflow'].span_id}-01"
            )
    finally:
        await target.stop()
