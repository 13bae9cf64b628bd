"""The inbox (filters, cursor), acknowledgement (single, batch) and the events listing."""

from __future__ import annotations

import asyncio
import base64
import uuid

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import new_key
from tests.integration.test_ingestion import assert_error


async def ingest(
    client: httpx.AsyncClient, auth: dict[str, str], n: int, event_type: str = "t.a"
) -> list[str]:
    body = {"events": [{"event_type": event_type, "payload": {"i": i}} for i in range(n)]}
    response = await client.post("/v1/events/batch", json=body, headers=auth)
    assert response.status_code == 201
    return [r["event_id"] for r in response.json()["results"]]


async def walk(client: httpx.AsyncClient, auth: dict[str, str], path: str, limit: int) -> list[str]:
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": limit}
        if cursor:
            params["offset"] = cursor
        page = (await client.get(path, params=params, headers=auth)).json()
        seen += [e["event_id"] for e in page["events"]]
        assert page["pagination"]["limit"] == limit
        cursor = page["pagination"]["offset"]
        assert page["pagination"]["has_more"] is (cursor is not None)
        if cursor is None:
            return seen


async def test_inbox_lists_oldest_first_and_pages_with_a_cursor(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    ids = await ingest(client, auth, 7)
    first = (await client.get("/v1/inbox?limit=3", headers=auth)).json()
    assert [e["event_id"] for e in first["events"]] == ids[:3]
    assert first["pagination"]["has_more"] is True
    assert await walk(client, auth, "/v1/inbox", 3) == ids
    default = (await client.get("/v1/inbox", headers=auth)).json()
    assert default["pagination"] == {"limit": 50, "offset": None, "has_more": False}


async def test_inbox_filters_by_type_status_and_inclusive_time(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    a = await ingest(client, auth, 2, "t.a")
    b = await ingest(client, auth, 2, "t.b")
    only_b = (await client.get("/v1/inbox?event_type=t.b", headers=auth)).json()["events"]
    assert [e["event_id"] for e in only_b] == b
    first_b = (await client.get(f"/v1/events/{b[0]}", headers=auth)).json()
    ts = first_b["timestamp"]
    exact = (
        await client.get("/v1/inbox", params={"from_timestamp": ts, "to_timestamp": ts}, headers=auth)
    ).json()
    assert set(b).issuperset(e["event_id"] for e in exact["events"]) and exact["events"]
    after = (await client.get("/v1/inbox", params={"from_timestamp": ts}, headers=auth)).json()["events"]
    assert [e["event_id"] for e in after] == b
    before = (await client.get("/v1/inbox", params={"to_timestamp": ts}, headers=auth)).json()["events"]
    assert [e["event_id"] for e in before][: len(a)] == a
    received = (await client.get("/v1/inbox?status=received", headers=auth)).json()["events"]
    assert len(received) == 4
    assert (await client.get("/v1/inbox?status=failed", headers=auth)).json()["events"] == []


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=201",
        "limit=abc",
        "status=delivered",
        "status=bogus",
        "from_timestamp=yesterday",
        "to_timestamp=2025-02-30T00:00:00Z",
        "from_timestamp=2025-13-01T00:00:00Z",
        "event_type=bad%20type",
        "offset=garbage",
        "offset=" + base64.urlsafe_b64encode(b"i1:99:not-a-uuid").decode(),
        "offset="
        + base64.urlsafe_b64encode(b"i1:9999999999999999999:01a220b8-386f-7717-9025-a6db3f5991bb").decode(),
    ],
)
async def test_bad_inbox_parameters_are_400(
    client: httpx.AsyncClient, auth: dict[str, str], query: str
) -> None:
    assert_error(await client.get(f"/v1/inbox?{query}", headers=auth), 400, "VALIDATION_ERROR")


async def test_tampered_cursor_is_400_not_500(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    await ingest(client, auth, 3)
    cursor = (await client.get("/v1/inbox?limit=1", headers=auth)).json()["pagination"]["offset"]
    for tampered in (
        cursor[:-2],
        cursor + "x",
        cursor[::-1],
        "A" * 500,
        "%00",
        cursor.replace(cursor[3], "!"),
    ):
        response = await client.get("/v1/inbox", params={"offset": tampered}, headers=auth)
        assert response.status_code == 400, tampered
    # a cursor of the events listing is not an inbox cursor
    events_cursor = (await client.get("/v1/events?limit=1", headers=auth)).json()["pagination"]["offset"]
    assert (await client.get("/v1/inbox", params={"offset": events_cursor}, headers=auth)).status_code == 400


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(cursor: str) -> bytes:
    return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))


async def test_a_well_formed_but_modified_cursor_is_400(
    app: FastAPI, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    """Cursors are signed: moving the position in a cursor, even to a well-formed one, or using
    another user's cursor is refused, not a listing that starts somewhere else."""
    await ingest(client, auth, 4)
    first = (await client.get("/v1/inbox?limit=1", headers=auth)).json()
    cursor = first["pagination"]["offset"]
    raw = _unb64(cursor)
    tag, position = raw[:16], raw[16:]
    kind, ts, event_id = position.decode().split(":")
    assert (kind, event_id) == ("i2", first["events"][0]["event_id"])  # the position, readable
    for moved in (
        f"{kind}:{int(ts) - 1}:{event_id}",  # one microsecond earlier: would repeat the event
        f"{kind}:{ts}:{uuid.UUID(int=0)}",
        f"e2:{ts}:{event_id}",  # relabelled as an events-listing cursor
    ):
        forged = _b64(tag + moved.encode())
        response = await client.get("/v1/inbox", params={"offset": forged}, headers=auth)
        assert_error(response, 400, "VALIDATION_ERROR")
        assert response.json()["error"]["details"] == {"offset": "not a cursor issued by this listing"}
    untagged = _b64(position)  # the unsigned format of earlier versions
    assert (await client.get("/v1/inbox", params={"offset": untagged}, headers=auth)).status_code == 400
    # the genuine cursor still works, and pages on without repeating the first event
    second = (await client.get("/v1/inbox", params={"offset": cursor, "limit": 1}, headers=auth)).json()
    assert second["events"][0]["event_id"] != first["events"][0]["event_id"]

    other = {"X-API-Key": await new_key(app, user_id="mallory")}
    await ingest(client, other, 2)
    theirs = (await client.get("/v1/inbox?limit=1", headers=other)).json()["pagination"]["offset"]
    assert (await client.get("/v1/inbox", params={"offset": theirs}, headers=auth)).status_code == 400
    assert (await client.get("/v1/inbox", params={"offset": cursor}, headers=other)).status_code == 400
    audit = (await client.get("/v1/audit-logs?limit=1", headers=auth)).json()["pagination"]["offset"]
    assert audit is not None
    assert (await client.get("/v1/audit-logs", params={"offset": audit}, headers=other)).status_code == 400
    audit_raw = _unb64(audit)
    moved_audit = _b64(audit_raw[:16] + audit_raw[16:].replace(b"a2:", b"a2:1", 1))
    response = await client.get("/v1/audit-logs", params={"offset": moved_audit}, headers=auth)
    assert response.status_code == 400


async def test_paging_under_concurrent_inserts_and_acks_never_repeats_or_skips(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    present = await ingest(client, auth, 60)
    doomed = set(present[::5])  # acknowledged while we page
    stable = [i for i in present if i not in doomed]

    async def churn() -> None:
        for event_id in doomed:
            await client.delete(f"/v1/events/{event_id}", headers=auth)
            await ingest(client, auth, 2, "t.new")

    pager = asyncio.create_task(walk(client, auth, "/v1/inbox", 7))
    await churn()
    seen = await pager
    assert len(seen) == len(set(seen)), "an event was repeated"
    missing = [i for i in stable if i not in seen]
    assert missing == [], "an event present throughout was skipped"
    positions = [seen.index(i) for i in stable]
    assert positions == sorted(positions)


async def test_acknowledge_removes_from_inbox_and_second_delete_is_410(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    (event_id,) = await ingest(client, auth, 1)
    response = await client.delete(f"/v1/events/{event_id}", headers=auth)
    assert response.status_code == 204 and response.content == b""
    assert_error(await client.delete(f"/v1/events/{event_id}", headers=auth), 410, "EVENT_GONE")
    assert_error(await client.get(f"/v1/events/{event_id}", headers=auth), 404, "NOT_FOUND")
    status = (await client.get(f"/v1/events/{event_id}/status", headers=auth)).json()
    assert status["status"] == "delivered" and status["delivered_at"] is not None
    assert (await client.get("/v1/inbox", headers=auth)).json()["events"] == []
    listed = (await client.get("/v1/events?status=delivered", headers=auth)).json()["events"]
    assert listed[0]["event_id"] == event_id and listed[0]["payload"] is None


async def test_acknowledged_payload_is_deleted_from_the_database(
    client: httpx.AsyncClient, auth: dict[str, str], settings: object
) -> None:
    import sqlite3

    from triggers_api.config import Settings

    assert isinstance(settings, Settings)
    (event_id,) = await ingest(client, auth, 1)
    await client.delete(f"/v1/events/{event_id}", headers=auth)
    with sqlite3.connect(settings.sqlite_path()) as conn:
        (payload,) = conn.execute("SELECT payload FROM events WHERE event_id = ?", (event_id,)).fetchone()
    assert payload is None


@pytest.mark.parametrize("bad", ["not-a-uuid", "123", "01a220b8-386f-7717-9025-a6db3f5991bz"])
async def test_malformed_ids_are_400(client: httpx.AsyncClient, auth: dict[str, str], bad: str) -> None:
    for method, path in (
        ("DELETE", f"/v1/events/{bad}"),
        ("GET", f"/v1/events/{bad}"),
        ("GET", f"/v1/events/{bad}/status"),
    ):
        assert_error(await client.request(method, path, headers=auth), 400, "VALIDATION_ERROR")


async def test_unknown_id_is_404(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    unknown = str(uuid.uuid4())
    assert_error(await client.delete(f"/v1/events/{unknown}", headers=auth), 404, "NOT_FOUND")
    assert_error(await client.get(f"/v1/events/{unknown}/status", headers=auth), 404, "NOT_FOUND")


async def test_batch_acknowledgement_reports_each_distinct_id_in_order(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    a, b = await ingest(client, auth, 2)
    await client.delete(f"/v1/events/{a}", headers=auth)
    unknown = str(uuid.uuid4())
    response = await client.post(
        "/v1/events/acknowledge/batch", json={"event_ids": [b, a, unknown, b.upper(), a]}, headers=auth
    )
    assert response.status_code == 200
    assert response.json() == {
        "results": [
            {"event_id": b, "result": "acknowledged"},
            {"event_id": a, "result": "already_acknowledged"},
            {"event_id": unknown, "result": "not_found"},
        ]
    }


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"event_ids": []},
        {"event_ids": ["x"]},
        {"event_ids": [str(uuid.uuid4())] * 101},
        {"event_ids": "a"},
    ],
)
async def test_bad_batch_acknowledgements_are_400(
    client: httpx.AsyncClient, auth: dict[str, str], body: object
) -> None:
    assert_error(
        await client.post("/v1/events/acknowledge/batch", json=body, headers=auth), 400, "VALIDATION_ERROR"
    )


async def test_events_listing_is_newest_first_in_any_status(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    ids = await ingest(client, auth, 5)
    await client.delete(f"/v1/events/{ids[1]}", headers=auth)
    assert await walk(client, auth, "/v1/events", 2) == list(reversed(ids))


async def test_acknowledgement_fast_path_keeps_the_route_contract(
    app: FastAPI, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    """DELETE /v1/events/{id} skips the framework (inbox/fastpath.py) yet answers like the
    documented route: checks in order, error shapes, rate-limit and request-id headers, metrics."""
    (event_id,) = await ingest(client, auth, 1)
    assert_error(await client.delete(f"/v1/events/{event_id}"), 401, "UNAUTHORIZED")
    writer = {"X-API-Key": await new_key(app, scopes=("events:write",))}
    assert_error(await client.delete(f"/v1/events/{event_id}", headers=writer), 403, "FORBIDDEN")
    other = {"X-API-Key": await new_key(app, user_id="bob")}
    assert_error(await client.delete(f"/v1/events/{event_id}", headers=other), 404, "NOT_FOUND")
    gone = await client.delete("/v1/events/batch", headers=auth)
    assert_error(gone, 405, "METHOD_NOT_ALLOWED")
    assert gone.headers["allow"] == "POST"
    deeper = await client.delete(f"/v1/events/{event_id}/status", headers=auth)  # not an ack
    assert deeper.status_code == 405
    response = await client.delete(f"/v1/events/{event_id.upper()}", headers={**auth, "X-Request-ID": "r-1"})
    assert response.status_code == 204 and response.content == b""
    assert response.headers["x-request-id"] == "r-1"
    assert "ratelimit" in response.headers and "content-type" not in response.headers
    assert_error(await client.delete(f"/v1/events/{event_id}", headers=auth), 410, "EVENT_GONE")
    metrics = (await client.get("/metrics")).text
    assert 'route="/v1/events/{event_id}",status="204"' in metrics.replace('method="DELETE",', "")
