"""The apps our figures are compared with, each served by uvicorn like the service.

- ``raw_app``: a bare ASGI callable that validates the request as the contract says and answers
  with a body shaped like ours, storing nothing: what uvicorn + Python can do on this box.
- ``fastapi_app``: the same endpoints written the ordinary FastAPI way (Pydantic models,
  dependency-free routes), storing nothing: the framework's ceiling.
- ``baseline_app``: the straightforward design a user would write: FastAPI routes, one SQLite
  transaction and commit per request (WAL, ``synchronous=FULL``), on our own schema so it does the
  same durable work (event row + audit row) as the service.

Each factory reads its few knobs from ``BENCH_*`` environment variables, because uvicorn's
``--factory`` calls it without arguments in every worker process.
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs

import orjson
import uuid_utils
from fastapi import FastAPI, HTTPException, Query, Response
from pydantic import BaseModel, ConfigDict, Field

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

EVENT_TYPE = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
JSON_HEADERS = [(b"content-type", b"application/json")]


def _iso(us: int) -> str:
    seconds, micros = divmod(us, 1_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{micros:06d}Z"


def _accepted(ts_us: int) -> dict[str, str]:
    return {
        "event_id": str(uuid_utils.uuid7()),
        "status": "received",
        "timestamp": _iso(ts_us),
        "message": "Event received",
    }


def canned_page() -> bytes:
    """The inbox page the no-storage ceilings answer with (set by the harness to one of ours)."""
    path = os.environ.get("BENCH_INBOX_PAGE")
    if path and Path(path).exists():
        return Path(path).read_bytes()
    return orjson.dumps({"events": [], "pagination": {"limit": 200, "offset": None, "has_more": False}})


# == raw ASGI ========================================================================================
def _valid_event(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and set(value) == {"event_type", "payload"}
        and isinstance(value["event_type"], str)
        and EVENT_TYPE.match(value["event_type"]) is not None
        and isinstance(value["payload"], dict)
    )


async def _body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _answer(send: Send, status: int, body: bytes = b"") -> None:
    headers = [*JSON_HEADERS, (b"content-length", str(len(body)).encode())] if body else []
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def raw_app() -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """Bare ASGI: parse and validate like the contract, answer like the service, store nothing."""
    page = canned_page()
    error = orjson.dumps({"error": {"code": "VALIDATION_ERROR"}})

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        method, path = scope["method"], scope["path"]
        if method == "POST" and path == "/v1/events":
            try:
                value = orjson.loads(await _body(receive))
            except orjson.JSONDecodeError:
                value = None
            if not _valid_event(value):
                await _answer(send, 400, error)
                return
            await _answer(send, 201, orjson.dumps(_accepted(time.time_ns() // 1000)))
        elif method == "POST" and path == "/v1/events/batch":
            try:
                value = orjson.loads(await _body(receive))
            except orjson.JSONDecodeError:
                value = None
            items = value.get("events") if isinstance(value, dict) else None
            if not isinstance(items, list) or not 1 <= len(items) <= 100:
                await _answer(send, 400, error)
                return
            ts = time.time_ns() // 1000
            results: list[Any] = [
                _accepted(ts) if _valid_event(item) else {"index": i, "error": {"code": "VALIDATION_ERROR"}}
                for i, item in enumerate(items)
            ]
            ok = sum(1 for r in results if "event_id" in r)
            body = {"success_count": ok, "failure_count": len(results) - ok, "results": results}
            await _answer(send, 201, orjson.dumps(body))
        elif method == "GET" and path == "/v1/inbox":
            query = parse_qs(scope.get("query_string", b"").decode())
            limit = query.get("limit", ["50"])[0]
            if not limit.isdigit() or not 1 <= int(limit) <= 200:
                await _answer(send, 400, error)
                return
            await _answer(send, 200, page)
        elif method == "DELETE" and path.startswith("/v1/events/"):
            try:
                uuid.UUID(path.rsplit("/", 1)[1])
            except ValueError:
                await _answer(send, 400, error)
                return
            await _answer(send, 204)
        elif path == "/v1/health":
            await _answer(send, 200, b'{"status":"healthy"}')
        else:
            await _answer(send, 404, b'{"error":{"code":"NOT_FOUND"}}')

    return app


# == minimal FastAPI =================================================================================
class EventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event_type: Annotated[str, Field(min_length=1, max_length=128, pattern=EVENT_TYPE.pattern)]
    payload: dict[str, Any]


class BatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: Annotated[list[Any], Field(min_length=1, max_length=100)]


class Accepted(BaseModel):
    event_id: str
    status: str
    timestamp: str
    message: str


def _validated(item: Any) -> EventIn | None:
    try:
        return EventIn.model_validate(item)
    except ValueError:
        return None


def fastapi_app() -> FastAPI:
    """The ordinary FastAPI way: body models, response models, no storage."""
    app = FastAPI()
    page = orjson.loads(canned_page())

    @app.post("/v1/events", status_code=201, response_model=Accepted)
    async def ingest(event: EventIn) -> dict[str, str]:
        return _accepted(time.time_ns() // 1000)

    @app.post("/v1/events/batch", status_code=201)
    async def ingest_batch(batch: BatchIn) -> dict[str, Any]:
        ts = time.time_ns() // 1000
        results: list[Any] = [
            _accepted(ts) if _validated(item) else {"index": i, "error": {"code": "VALIDATION_ERROR"}}
            for i, item in enumerate(batch.events)
        ]
        ok = sum(1 for r in results if "event_id" in r)
        return {"success_count": ok, "failure_count": len(results) - ok, "results": results}

    @app.get("/v1/inbox")
    async def inbox(limit: Annotated[int, Query(ge=1, le=200)] = 50) -> dict[str, Any]:
        return dict(page)

    @app.delete("/v1/events/{event_id}", status_code=204)
    async def acknowledge(event_id: uuid.UUID) -> Response:
        return Response(status_code=204)

    @app.get("/v1/health")
    async def health() -> dict[str, str]:
        return {"status": "healthy"}

    return app


# == the straightforward design: FastAPI + one SQLite commit per request ==============================
BASELINE_USER = "bench"


class _Connections(threading.local):
    conn: sqlite3.Connection | None = None


def baseline_app() -> FastAPI:
    """FastAPI sync routes (run in its thread pool), a connection per thread, a commit per request.

    Uses the service's own schema (the database is created by ``triggers-api migrate``) and writes
    the same rows: the event and its audit record, in one durable transaction.
    """
    db_path = os.environ["BENCH_BASELINE_DB"]
    local = _Connections()
    app = FastAPI()

    def conn() -> sqlite3.Connection:
        if local.conn is None:
            c = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False, timeout=30)
            c.execute("PRAGMA journal_mode=WAL")
            c.execute("PRAGMA synchronous=FULL")
            local.conn = c
        return local.conn

    def store(c: sqlite3.Connection, event: EventIn, ts: int, request_id: str) -> dict[str, str]:
        accepted = _accepted(ts)
        c.execute(
            "INSERT INTO events (event_id, user_id, event_type, payload, status, ts_us, expires_at, metadata) "
            "VALUES (?, ?, ?, ?, 'received', ?, ?, ?)",
            (
                accepted["event_id"],
                BASELINE_USER,
                event.event_type,
                orjson.dumps(event.payload),
                ts,
                ts // 1_000_000 + 30 * 86_400,
                orjson.dumps({"correlation_id": request_id}),
            ),
        )
        c.execute(
            "INSERT INTO audit_logs (log_id, user_id, action, ts_us, event_id, details, ip_address, request_id) "
            "VALUES (?, ?, 'event.created', ?, ?, ?, '127.0.0.1', ?)",
            (
                str(uuid_utils.uuid7()),
                BASELINE_USER,
                ts,
                accepted["event_id"],
                orjson.dumps({"event_type": event.event_type}),
                request_id,
            ),
        )
        return accepted

    @app.post("/v1/events", status_code=201, response_model=Accepted)
    def ingest(event: EventIn) -> dict[str, str]:
        c = conn()
        with c:
            c.execute("BEGIN IMMEDIATE")
            return store(c, event, time.time_ns() // 1000, uuid.uuid4().hex)

    @app.post("/v1/events/batch", status_code=201)
    def ingest_batch(batch: BatchIn) -> dict[str, Any]:
        ts = time.time_ns() // 1000
        request_id = uuid.uuid4().hex
        results: list[Any] = []
        c = conn()
        with c:
            c.execute("BEGIN IMMEDIATE")
            for i, item in enumerate(batch.events):
                event = _validated(item)
                if event is None:
                    results.append({"index": i, "error": {"code": "VALIDATION_ERROR"}})
                else:
                    results.append(store(c, event, ts, request_id))
        ok = sum(1 for r in results if "event_id" in r)
        return {"success_count": ok, "failure_count": len(results) - ok, "results": results}

    @app.get("/v1/inbox")
    def inbox(limit: Annotated[int, Query(ge=1, le=200)] = 50) -> dict[str, Any]:
        rows = (
            conn()
            .execute(
                "SELECT event_id, user_id, event_type, payload, status, ts_us, expires_at, metadata "
                "FROM events WHERE user_id = ? AND status IN ('received', 'queued', 'failed') "
                "ORDER BY ts_us, event_id LIMIT ?",
                (BASELINE_USER, limit),
            )
            .fetchall()
        )
        events = [
            {
                "event_id": r[0],
                "user_id": r[1],
                "event_type": r[2],
                "payload": orjson.loads(r[3]),
                "status": r[4],
                "timestamp": _iso(r[5]),
                "ttl": r[6],
                "metadata": orjson.loads(r[7]),
            }
            for r in rows
        ]
        return {"events": events, "pagination": {"limit": limit, "offset": None, "has_more": False}}

    @app.delete("/v1/events/{event_id}", status_code=204)
    def acknowledge(event_id: uuid.UUID) -> Response:
        c = conn()
        now = time.time_ns() // 1000
        with c:
            c.execute("BEGIN IMMEDIATE")
            row = c.execute(
                "SELECT acknowledged_us FROM events WHERE event_id = ? AND user_id = ?",
                (str(event_id), BASELINE_USER),
            ).fetchone()
            if row is None:
                raise HTTPException(404)
            if row[0] is not None:
                raise HTTPException(410)
            c.execute(
                "UPDATE events SET status = 'delivered', acknowledged_us = ?, payload = NULL WHERE event_id = ?",
                (now, str(event_id)),
            )
            c.execute(
                "INSERT INTO audit_logs (log_id, user_id, action, ts_us, event_id, details, ip_address, "
                "request_id) VALUES (?, ?, 'event.acknowledged', ?, ?, '{}', '127.0.0.1', ?)",
                (str(uuid_utils.uuid7()), BASELINE_USER, now, str(event_id), uuid.uuid4().hex),
            )
        return Response(status_code=204)

    @app.get("/v1/health")
    def health() -> dict[str, str]:
        return {"status": "healthy"}

    return app


# == the delivery receiver ===========================================================================
def receiver_app() -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """A workflow engine that takes everything: reads the body and answers 200."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        await _body(receive)
        await _answer(send, 200, b'{"ok":true}')

    return app
