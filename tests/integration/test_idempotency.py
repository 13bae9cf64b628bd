"""Idempotency-Key: safe retries for 24 h, per user; one event however many race."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import new_key
from tests.integration.test_ingestion import assert_error

EVENT = {"event_type": "order.completed", "payload": {"order": 7}}


async def test_same_key_same_body_replays_the_first_response(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    headers = {**auth, "Idempotency-Key": "order-7"}
    first = await client.post("/v1/events", json=EVENT, headers=headers)
    second = await client.post("/v1/events", json=EVENT, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert len((await client.get("/v1/inbox", headers=auth)).json()["events"]) == 1


async def test_same_key_different_body_is_422(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    headers = {**auth, "Idempotency-Key": "k1"}
    assert (await client.post("/v1/events", json=EVENT, headers=headers)).status_code == 201
    other = {"event_type": "order.completed", "payload": {"order": 8}}
    assert_error(await client.post("/v1/events", json=other, headers=headers), 422, "IDEMPOTENCY_KEY_REUSED")
    assert len((await client.get("/v1/inbox", headers=auth)).json()["events"]) == 1


async def test_batch_replays_the_same_event_ids(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    body = {"events": [EVENT, {"event_type": "x", "payload": {}}]}
    headers = {**auth, "Idempotency-Key": "batch-1"}
    first = await client.post("/v1/events/batch", json=body, headers=headers)
    second = await client.post("/v1/events/batch", json=body, headers=headers)
    assert [r["event_id"] for r in first.json()["results"]] == [
        r["event_id"] for r in second.json()["results"]
    ]
    assert len((await client.get("/v1/inbox", headers=auth)).json()["events"]) == 2


async def test_keys_are_per_user(app: FastAPI, client: httpx.AsyncClient) -> None:
    alice = {"X-API-Key": await new_key(app, user_id="alice"), "Idempotency-Key": "shared"}
    bob = {"X-API-Key": await new_key(app, user_id="bob"), "Idempotency-Key": "shared"}
    a = await client.post("/v1/events", json=EVENT, headers=alice)
    b = await client.post("/v1/events", json=EVENT, headers=bob)
    assert a.status_code == b.status_code == 201
    assert a.json()["event_id"] != b.json()["event_id"]


@pytest.mark.parametrize("bad", ["", "x" * 256, "tab\there", "caf\u00e9"])
async def test_malformed_idempotency_keys_are_400(
    client: httpx.AsyncClient, auth: dict[str, str], bad: str
) -> None:
    response = await client.post(
        "/v1/events",
        json=EVENT,
        headers=[*auth.items(), ("Idempotency-Key", bad.encode("utf-8"))],  # type: ignore[list-item]
    )
    assert_error(response, 400, "VALIDATION_ERROR")


async def test_racing_requests_with_one_key_store_one_event(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    headers = {**auth, "Idempotency-Key": "race"}
    responses = await asyncio.gather(
        *(client.post("/v1/events", json=EVENT, headers=headers) for _ in range(25))
    )
    statuses = {r.status_code for r in responses}
    assert statuses <= {201, 409}
    ids = {r.json()["event_id"] for r in responses if r.status_code == 201}
    assert len(ids) == 1
    assert len((await client.get("/v1/inbox", headers=auth)).json()["events"]) == 1
