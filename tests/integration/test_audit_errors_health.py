"""Audit log, the one error shape, request ids, health, retention and logs."""

from __future__ import annotations

import gzip
import json
import sqlite3
from pathlib import Path

import httpx
import orjson
import pytest
from fastapi import FastAPI

from tests.conftest import new_key, services_of
from tests.integration.test_inbox_and_ack import ingest
from tests.integration.test_ingestion import assert_error
from triggers_api.retention import sweep


async def test_audit_log_records_event_and_key_changes_newest_first(
    app: FastAPI, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    (event_id,) = await ingest(client, auth, 1)
    await client.delete(f"/v1/events/{event_id}", headers={**auth, "X-Request-ID": "ack-req-1"})
    created = (await client.post("/v1/keys", json={"name": "tmp"}, headers=auth)).json()
    await client.delete(f"/v1/keys/{created['key_id']}", headers=auth)
    logs = (await client.get("/v1/audit-logs", headers=auth)).json()["audit_logs"]
    actions = [entry["action"] for entry in logs]
    assert actions[:4] == ["key.revoked", "key.created", "event.acknowledged", "event.created"]
    ack = logs[2]
    assert ack["event_id"] == event_id and ack["request_id"] == "ack-req-1"
    assert ack["ip_address"] == "203.0.113.7" and ack["user_id"] == "alice"
    by_event = (await client.get(f"/v1/audit-logs?event_id={event_id}", headers=auth)).json()["audit_logs"]
    assert [e["action"] for e in by_event] == ["event.acknowledged", "event.created"]
    by_action = (await client.get("/v1/audit-logs?action=key.created", headers=auth)).json()["audit_logs"]
    assert {e["action"] for e in by_action} == {"key.created"}


async def test_audit_log_pages_and_is_isolated_per_user(app: FastAPI, client: httpx.AsyncClient) -> None:
    alice = {"X-API-Key": await new_key(app, user_id="alice")}
    bob = {"X-API-Key": await new_key(app, user_id="bob")}
    await ingest(client, alice, 5)
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"offset": cursor} if cursor else {})}
        page = (await client.get("/v1/audit-logs", params=params, headers=alice)).json()
        seen += [e["log_id"] for e in page["audit_logs"]]
        cursor = page["pagination"]["offset"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 6  # 5 events + the key
    bob_logs = (await client.get("/v1/audit-logs", headers=bob)).json()["audit_logs"]
    assert [e["action"] for e in bob_logs] == ["key.created"]
    assert_error(await client.get("/v1/audit-logs?offset=zzz", headers=alice), 400, "VALIDATION_ERROR")
    assert_error(await client.get("/v1/audit-logs?event_id=nope", headers=alice), 400, "VALIDATION_ERROR")


async def test_audit_records_are_append_only(
    app: FastAPI, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await ingest(client, auth, 1)
    with (
        sqlite3.connect(services_of(app).settings.sqlite_path()) as conn,
        pytest.raises(sqlite3.DatabaseError),
    ):
        conn.execute("UPDATE audit_logs SET action = 'forged'")


async def test_unknown_route_and_wrong_method_use_the_error_shape(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/nope"), 404, "NOT_FOUND")
    assert_error(await client.get("/v1/nope"), 404, "NOT_FOUND")
    response = await client.put("/v1/health")
    assert_error(response, 405, "METHOD_NOT_ALLOWED")
    assert_error(await client.patch("/v1/events"), 405, "METHOD_NOT_ALLOWED")


async def test_unexpected_failure_is_a_generic_500_without_a_trace(
    app: FastAPI, client: httpx.AsyncClient, auth: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = services_of(app).storage

    async def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret internals /etc/passwd")

    monkeypatch.setattr(storage, "list_events", explode)
    response = await client.get("/v1/inbox", headers=auth)
    error = assert_error(response, 500, "INTERNAL_ERROR")
    assert "secret" not in response.text and "Traceback" not in response.text
    assert error["message"] == "An internal error occurred"


async def test_request_id_is_echoed_when_sane_and_generated_otherwise(client: httpx.AsyncClient) -> None:
    echoed = await client.get("/v1/health", headers={"X-Request-ID": "abc-123_x.y:z"})
    assert echoed.headers["x-request-id"] == "abc-123_x.y:z"
    generated = await client.get("/v1/health")
    assert len(generated.headers["x-request-id"]) >= 16
    insane = await client.get("/v1/health", headers={"X-Request-ID": "bad id\twith<script>"})
    assert insane.headers["x-request-id"] != "bad id\twith<script>"
    long = await client.get("/v1/health", headers={"X-Request-ID": "a" * 500})
    assert long.headers["x-request-id"] != "a" * 500


async def test_health_is_public_and_reports_version(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy" and body["version"] and body["timestamp"].endswith("Z")


async def test_health_is_503_when_the_database_is_unreachable(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from triggers_api.errors import StorageError

    async def down() -> None:
        raise StorageError("unable to open database file")

    monkeypatch.setattr(services_of(app).storage, "ping", down)
    response = await client.get("/v1/health")
    assert response.status_code == 503
    assert response.json()["status"] == "unhealthy"


async def test_health_is_503_when_the_database_file_is_gone(tmp_path: Path) -> None:
    from tests.conftest import make_settings
    from triggers_api.app import create_app

    db_dir = tmp_path / "db"
    application = create_app(make_settings(tmp_path, database_url=f"sqlite:///{db_dir / 'x.db'}"))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            assert (await c.get("/v1/health")).status_code == 200
            import shutil

            while db_dir.exists():  # background threads may touch the WAL while we delete
                shutil.rmtree(db_dir, ignore_errors=True)
            response = await c.get("/v1/health")
            assert response.status_code == 503, response.text
            assert response.json()["status"] == "unhealthy"


async def test_retention_archives_expired_events_before_deleting_them(
    app: FastAPI, client: httpx.AsyncClient, auth: dict[str, str], tmp_path: Path
) -> None:
    ids = await ingest(client, auth, 3)
    path = services_of(app).settings.sqlite_path()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE events SET expires_at = 1 WHERE event_id IN (?, ?)", (ids[0], ids[1]))
    archive = tmp_path / "archive"
    removed = await sweep(services_of(app).storage, archive, batch=1)
    assert removed == 2
    lines = [json.loads(line) for f in sorted(archive.glob("*.jsonl.gz")) for line in gzip.open(f)]
    assert sorted(line["event_id"] for line in lines) == sorted(ids[:2])
    assert all(line["payload"] == {"i": ids.index(line["event_id"])} for line in lines)
    remaining = (await client.get("/v1/inbox", headers=auth)).json()["events"]
    assert [e["event_id"] for e in remaining] == [ids[2]]


async def test_retention_deletes_nothing_when_the_archive_cannot_be_written(
    app: FastAPI, client: httpx.AsyncClient, auth: dict[str, str], tmp_path: Path
) -> None:
    ids = await ingest(client, auth, 2)
    with sqlite3.connect(services_of(app).settings.sqlite_path()) as conn:
        conn.execute("UPDATE events SET expires_at = 1")
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    with pytest.raises(OSError):
        await sweep(services_of(app).storage, blocker / "archive")
    with sqlite3.connect(services_of(app).settings.sqlite_path()) as conn:
        assert conn.execute("SELECT COUNT(*) FROM events").fetchone()[0] == len(ids)


async def test_one_log_line_per_request_without_secrets(
    client: httpx.AsyncClient, auth: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    from triggers_api.logs import configure_logging

    configure_logging("INFO", "json")
    capsys.readouterr()
    await _log_one_request(client, auth, capsys)


async def _log_one_request(
    client: httpx.AsyncClient, auth: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    await client.post(
        "/v1/events",
        json={"event_type": "secret.type", "payload": {"password": "hunter2"}},
        headers={**auth, "X-Request-ID": "log-req-1"},
    )
    err = capsys.readouterr().err
    lines = [orjson.loads(line) for line in err.splitlines() if line.startswith("{")]
    requests = [line for line in lines if line.get("event") == "request"]
    assert len(requests) == 1
    line = requests[0]
    assert line["request_id"] == "log-req-1" and line["user_id"] == "alice"
    assert line["method"] == "POST" and line["path"] == "/v1/events" and line["status"] == 201
    assert isinstance(line["latency_ms"], float)
    assert auth["X-API-Key"] not in err and "hunter2" not in err
