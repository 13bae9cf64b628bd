"""POST /v1/events and /v1/events/batch: the contract, validation and hostile input."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

import httpx
import pytest

ISO_US = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


async def post(
    client: httpx.AsyncClient, auth: dict[str, str], body: bytes | str, **headers: str
) -> httpx.Response:
    data = body.encode() if isinstance(body, str) else body
    return await client.post(
        "/v1/events", content=data, headers={"Content-Type": "application/json", **auth, **headers}
    )


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert set(error) == {"code", "message", "details", "timestamp", "request_id"}
    assert error["request_id"] == response.headers["x-request-id"]
    return error  # type: ignore[no-any-return]


async def test_created_event_answers_201_with_event_response(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    response = await client.post(
        "/v1/events", json={"event_type": "user.created", "payload": {"user_id": "usr_1"}}, headers=auth
    )
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"event_id", "status", "timestamp", "message"}
    assert uuid.UUID(body["event_id"]).version == 7
    assert body["status"] == "received"
    assert ISO_US.match(body["timestamp"])


async def test_stored_event_has_the_document_model(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    created = (
        await client.post(
            "/v1/events",
            json={"event_type": "order.completed", "payload": {"order": 42, "items": [1, 2]}},
            headers={**auth, "User-Agent": "probe/1.0", "X-Request-ID": "req-abc-123"},
        )
    ).json()
    event = (await client.get(f"/v1/events/{created['event_id']}", headers=auth)).json()
    assert event["event_id"] == created["event_id"]
    assert event["user_id"] == "alice"
    assert event["event_type"] == "order.completed"
    assert event["payload"] == {"order": 42, "items": [1, 2]}
    assert event["status"] == "received"
    assert event["retry_count"] == 0
    assert event["delivered_at"] is None
    assert event["metadata"] == {
        "source_ip": "203.0.113.7",
        "api_version": "v1",
        "correlation_id": "req-abc-123",
        "user_agent": "probe/1.0",
    }
    received = datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00"))
    assert abs(event["ttl"] - (received.timestamp() + 30 * 86400)) < 2
    assert received.tzinfo == UTC or received.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


async def test_curl_default_form_content_type_is_accepted_as_json(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    response = await client.post(
        "/v1/events",
        content=b'{"event_type":"user.created","payload":{}}',
        headers={**auth, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 201


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ('{"payload": {}}', {"event_type"}),
        ('{"event_type": "ok"}', {"payload"}),
        ('{"event_type": "", "payload": {}}', {"event_type"}),
        ('{"event_type": "has space", "payload": {}}', {"event_type"}),
        ('{"event_type": "' + "a" * 129 + '", "payload": {}}', {"event_type"}),
        ('{"event_type": 5, "payload": {}}', {"event_type"}),
        ('{"event_type": "ok", "payload": [1, 2]}', {"payload"}),
        ('{"event_type": "ok", "payload": "text"}', {"payload"}),
        ('{"event_type": "ok", "payload": {}, "extra": 1}', {"extra"}),
        ('{"event_type": "bad/type", "payload": null, "x": 1}', {"event_type", "payload", "x"}),
    ],
)
async def test_invalid_event_is_400_naming_each_bad_field(
    client: httpx.AsyncClient, auth: dict[str, str], body: str, fields: set[str]
) -> None:
    error = assert_error(await post(client, auth, body), 400, "VALIDATION_ERROR")
    assert set(error["details"]) == fields  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "body", [b"", b"not json", b"{", b"[]", b"42", b'"s"', b"null", b"\xff\xfe", b'{"a":NaN}']
)
async def test_non_json_or_non_object_bodies_are_400(
    client: httpx.AsyncClient, auth: dict[str, str], body: bytes
) -> None:
    assert_error(await post(client, auth, body), 400, "VALIDATION_ERROR")


async def test_wrong_content_type_is_415(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    response = await client.post(
        "/v1/events", content=b"<event/>", headers={**auth, "Content-Type": "application/xml"}
    )
    assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")


async def test_event_type_of_128_allowed_characters_is_accepted(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    event_type = ("aZ09._:-" * 16)[:128]
    response = await client.post("/v1/events", json={"event_type": event_type, "payload": {}}, headers=auth)
    assert response.status_code == 201


async def test_oversized_single_body_is_413_and_nothing_stored(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    big = '{"event_type":"a","payload":{"x":"' + "a" * (256 * 1024) + '"}}'
    assert_error(await post(client, auth, big), 413, "PAYLOAD_TOO_LARGE")
    inbox = (await client.get("/v1/inbox", headers=auth)).json()
    assert inbox["events"] == []


async def test_just_under_the_limit_is_accepted(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    filler = 256 * 1024 - len('{"event_type":"a","payload":{"x":""}}')
    body = '{"event_type":"a","payload":{"x":"' + "a" * filler + '"}}'
    assert len(body) == 256 * 1024
    assert (await post(client, auth, body)).status_code == 201


async def test_streamed_oversized_body_without_length_is_413(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        yield b'{"event_type":"a","payload":{"x":"'
        for _ in range(400):
            yield b"a" * 1024
        yield b'"}}'

    response = await client.post(
        "/v1/events", content=chunks(), headers={**auth, "Content-Type": "application/json"}
    )
    assert_error(response, 413, "PAYLOAD_TOO_LARGE")


async def test_oversized_batch_is_413(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    item = '{"event_type":"a","payload":{"x":"' + "b" * 60_000 + '"}}'
    body = '{"events":[' + ",".join([item] * 90) + "]}"
    assert len(body) > 5 * 1024 * 1024
    response = await client.post(
        "/v1/events/batch", content=body, headers={**auth, "Content-Type": "application/json"}
    )
    assert_error(response, 413, "PAYLOAD_TOO_LARGE")


async def test_deeply_nested_payload_is_refused_not_crashed(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    deep = '{"event_type":"a","payload":{"x":' + "[" * 5000 + "]" * 5000 + "}}"
    assert_error(await post(client, auth, deep), 400, "VALIDATION_ERROR")
    assert (await client.get("/v1/health")).status_code == 200


@pytest.mark.parametrize("literal", ["1e400", "-1e400", '"\\ud800"', '"a\\udfffb"', "Infinity", "NaN"])
async def test_values_json_cannot_round_trip_are_400(
    client: httpx.AsyncClient, auth: dict[str, str], literal: str
) -> None:
    body = '{"event_type":"a","payload":{"x":' + literal + "}}"
    assert_error(await post(client, auth, body), 400, "VALIDATION_ERROR")


@pytest.mark.parametrize(
    "payload_text",
    [
        '{"nul":"a\\u0000b"}',
        '{"big":123456789012345678901234567890,"neg":-98765432109876543210}',
        '{"u64":18446744073709551615,"i64":-9223372036854775808}',
        '{"emoji":"\\ud83d\\ude00","text":"caf\\u00e9","zero":-0.0,"f":0.1}',
        '{"nested":{"a":[1,{"b":[true,false,null]}]}}',
    ],
)
async def test_unusual_but_valid_payloads_are_returned_exactly(
    client: httpx.AsyncClient, auth: dict[str, str], payload_text: str
) -> None:
    import json

    body = '{"event_type":"a","payload":' + payload_text + "}"
    response = await post(client, auth, body)
    assert response.status_code == 201, response.text
    stored = await client.get(f"/v1/events/{response.json()['event_id']}", headers=auth)
    assert stored.status_code == 200
    assert json.loads(stored.content)["payload"] == json.loads(payload_text)


async def test_batch_validates_each_item_and_stores_the_valid_ones(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    events = [
        {"event_type": "a.one", "payload": {"i": 0}},
        {"event_type": "bad type", "payload": {}},
        {"event_type": "a.two", "payload": {"i": 2}},
        "not an object",
        {"event_type": "a.three", "payload": {}, "extra": True},
    ]
    response = await client.post("/v1/events/batch", json={"events": events}, headers=auth)
    assert response.status_code == 201
    body = response.json()
    assert body["success_count"] == 2
    assert body["failure_count"] == 3
    results = body["results"]
    assert len(results) == 5
    assert results[0]["status"] == "received" and results[2]["status"] == "received"
    assert results[1] == {"index": 1, "error": results[1]["error"]}
    assert results[1]["error"]["code"] == "VALIDATION_ERROR"
    assert "event_type" in results[1]["error"]["details"]
    assert results[3]["index"] == 3
    assert "extra" in results[4]["error"]["details"]
    inbox = (await client.get("/v1/inbox", headers=auth)).json()["events"]
    assert [e["event_type"] for e in inbox] == ["a.one", "a.two"]


@pytest.mark.parametrize(
    "body",
    [
        {"events": [{"event_type": "a", "payload": {}}] * 101},
        {"events": []},
        {"events": "nope"},
        {},
        {"events": [{"event_type": "a", "payload": {}}], "more": 1},
    ],
)
async def test_malformed_batches_are_400(
    client: httpx.AsyncClient, auth: dict[str, str], body: object
) -> None:
    response = await client.post("/v1/events/batch", json=body, headers=auth)
    assert_error(response, 400, "VALIDATION_ERROR")
    assert (await client.get("/v1/inbox", headers=auth)).json()["events"] == []


async def test_batch_of_100_is_stored(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    events = [{"event_type": "bulk", "payload": {"i": i}} for i in range(100)]
    response = await client.post("/v1/events/batch", json={"events": events}, headers=auth)
    assert response.status_code == 201
    assert response.json()["success_count"] == 100
    page = (await client.get("/v1/inbox?limit=200", headers=auth)).json()["events"]
    assert [e["payload"]["i"] for e in page] == list(range(100))
