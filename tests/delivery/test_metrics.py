"""``GET /metrics`` (Prometheus) and ``GET /v1/metrics/summary`` (the dashboard's figures)."""

from __future__ import annotations

from pathlib import Path

import httpx
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import make_settings, new_key
from tests.delivery.conftest import Pushing, pushing_app
from tests.delivery.receiver import Receiver, Respond
from triggers_api.app import create_app


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(parsed: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return parsed[(name, tuple(sorted(labels.items())))]


async def test_metrics_count_ingestion_requests_and_depths(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    for i in range(3):
        await client.post("/v1/events", json={"event_type": "a.b", "payload": {"i": i}}, headers=auth)
    await client.post(
        "/v1/events/batch", json={"events": [{"event_type": "a.b", "payload": {}}] * 2}, headers=auth
    )
    await client.get("/v1/inbox", headers=auth)
    await client.get("/v1/no/such/route", headers=auth)
    response = await client.get("/metrics")  # no API key: like /v1/health
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    parsed = samples(response.text)
    assert value(parsed, "triggers_events_ingested_total") == 5
    assert value(parsed, "triggers_delivery_queue_depth") == 5  # no worker here: all waiting
    assert value(parsed, "triggers_dead_letter_depth") == 0
    assert value(parsed, "triggers_ingest_commit_seconds_count") == 4  # one commit per request
    count = "triggers_http_request_duration_seconds_count"
    assert value(parsed, count, method="POST", route="/v1/events", status="201") == 3
    assert value(parsed, count, method="POST", route="/v1/events/batch", status="201") == 1
    assert value(parsed, count, method="GET", route="/v1/inbox", status="200") == 1
    assert value(parsed, count, method="GET", route="unmatched", status="404") == 1  # no path explosion
    assert value(parsed, "triggers_circuit_state") == 0


async def test_delivery_outcomes_and_latency_are_exported(tmp_path: Path, receiver: Receiver) -> None:
    receiver.script = lambda request, seen: (
        Respond(410)
        if request.json()["event_type"] == "no"
        else (Respond(503) if seen == 1 else Respond(200))
    )
    async with pushing_app(tmp_path, receiver) as p:
        ok = await p.ingest("yes")
        refused = await p.ingest("no")
        await p.wait_status(ok, "delivered")
        await p.wait_status(refused, "failed")
        parsed = samples((await p.client.get("/metrics")).text)
        assert value(parsed, "triggers_deliveries_total", outcome="delivered") == 1
        assert value(parsed, "triggers_deliveries_total", outcome="retry") == 1
        assert value(parsed, "triggers_deliveries_total", outcome="failed") == 1
        assert value(parsed, "triggers_delivery_attempt_duration_seconds_count") == 3
        assert value(parsed, "triggers_delivery_latency_seconds_count") == 1
        assert value(parsed, "triggers_dead_letter_depth") == 1
        assert value(parsed, "triggers_delivery_queue_depth") == 0


async def test_a_metrics_token_guards_the_endpoint(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path, metrics_token="s3cret"))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
                refused = await client.get("/metrics", headers=headers)
                assert refused.status_code == 401
                assert refused.json()["error"]["code"] == "UNAUTHORIZED"
            allowed = await client.get("/metrics", headers={"Authorization": "Bearer s3cret"})
            assert allowed.status_code == 200 and "triggers_events_ingested_total" in allowed.text


async def test_the_summary_reports_only_the_callers_own_figures(pushing: Pushing) -> None:
    pushing.receiver.script = lambda request, seen: (
        Respond(410) if request.json()["event_type"] == "no" else Respond(200)
    )
    delivered = [await pushing.ingest("yes") for _ in range(3)]
    refused = await pushing.ingest("no")
    for event_id in delivered:
        await pushing.wait_status(event_id, "delivered")
    await pushing.wait_status(refused, "failed")
    bob_key = await new_key(pushing.app, "bob")
    for _ in range(2):  # bob's events must not show in alice's figures
        await pushing.client.post(
            "/v1/events", json={"event_type": "b", "payload": {}}, headers={"X-API-Key": bob_key}
        )

    response = await pushing.client.get("/v1/metrics/summary", headers=pushing.auth)
    assert response.status_code == 200, response.text
    summary = response.json()
    assert summary["window_seconds"] == 3600
    assert len(summary["events_per_minute"]) == 60
    minutes = [m["minute"] for m in summary["events_per_minute"]]
    assert minutes == sorted(minutes)
    assert sum(m["count"] for m in summary["events_per_minute"]) == summary["events_last_hour"] == 4
    assert summary["events_per_minute"][-1]["count"] == 4 or summary["events_per_minute"][-2]["count"] > 0
    assert summary["delivery"] == {"attempts": 4, "delivered": 3, "success_rate": 0.75}
    assert summary["dead_letter_depth"] == 1 and summary["queue_depth"] == 0
    assert summary["ingest_latency_p95_ms"] is not None and summary["ingest_latency_p95_ms"] >= 0
    assert summary["circuit"]["state"] == "closed"

    bob = (await pushing.client.get("/v1/metrics/summary", headers={"X-API-Key": bob_key})).json()
    assert bob["events_last_hour"] == 2 and bob["dead_letter_depth"] == 0


async def test_the_summary_needs_keys_manage(app: FastAPI, client: httpx.AsyncClient) -> None:
    reader = await new_key(app, scopes=("events:read", "events:write"))
    forbidden = await client.get("/v1/metrics/summary", headers={"X-API-Key": reader})
    assert forbidden.status_code == 403 and forbidden.json()["error"]["code"] == "FORBIDDEN"
    assert (await client.get("/v1/metrics/summary")).status_code == 401
    manager = await new_key(app, scopes=("keys:manage",))
    empty = (await client.get("/v1/metrics/summary", headers={"X-API-Key": manager})).json()
    assert empty["events_last_hour"] == 0 and empty["delivery"]["success_rate"] is None
    assert empty["ingest_latency_p95_ms"] is None and empty["circuit"] is None


async def test_health_reports_delivery_off_without_a_workflow_url(client: httpx.AsyncClient) -> None:
    health = (await client.get("/v1/health")).json()
    assert health["status"] == "healthy"
    assert health["checks"]["delivery"] == {"push": "disabled", "worker": "off"}
