"""The live inbox: Server-Sent Events (over real HTTP: a stream never ends) and the long poll."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import LiveServer, new_key, start_server
from tests.delivery.conftest import Pushing
from tests.delivery.receiver import Respond


class Stream:
    """Reads one SSE response frame by frame (a frame ends at a blank line)."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines: AsyncIterator[str] = response.aiter_lines()

    async def frame(self, timeout: float = 10.0) -> dict[str, Any]:
        fields: dict[str, Any] = {"comments": []}

        async def read() -> dict[str, Any]:
            async for line in self._lines:
                if line == "":
                    if len(fields) > 1 or fields["comments"]:
                        return fields
                    continue
                if line.startswith(":"):
                    fields["comments"].append(line[1:].strip())
                    continue
                name, _, value = line.partition(":")
                fields[name] = value[1:] if value.startswith(" ") else value
            fields["closed"] = True
            return fields

        return await asyncio.wait_for(read(), timeout)

    async def event(self, timeout: float = 10.0) -> dict[str, Any]:
        """The next frame that carries an event (heartbeats skipped)."""
        while True:
            frame = await self.frame(timeout)
            assert not frame.get("closed"), "the stream ended"
            if "data" in frame:
                return frame


async def open_stream(
    client: httpx.AsyncClient, key: str, last_event_id: str | None = None, **params: str
) -> tuple[Stream, Any]:
    headers = {"X-API-Key": key}
    if last_event_id:
        headers["Last-Event-ID"] = last_event_id
    context = client.stream("GET", "/v1/inbox/stream", headers=headers, params=params)
    response = await context.__aenter__()
    assert response.status_code == 200, await response.aread()
    assert response.headers["content-type"].startswith("text/event-stream")
    stream = Stream(response)
    hello = await stream.frame()
    assert hello["retry"] == "1000" and "connected" in hello["comments"]
    return stream, context


async def post_event(
    client: httpx.AsyncClient, key: str, event_type: str = "order.created", n: int = 0
) -> str:
    response = await client.post(
        "/v1/events", json={"event_type": event_type, "payload": {"n": n}}, headers={"X-API-Key": key}
    )
    assert response.status_code == 201, response.text
    event_id: str = response.json()["event_id"]
    return event_id


def cli_key(server: LiveServer, user: str) -> str:
    created = subprocess.run(
        [
            sys.executable,
            "-m",
            "triggers_api.cli",
            "keys",
            "create",
            "--user-id",
            user,
            "--name",
            user,
            "--json",
        ],
        capture_output=True,
        text=True,
        env=server.env,
        cwd=server.log_path.parent,
        check=True,
    )
    key: str = json.loads(created.stdout)["api_key"]
    return key


@pytest.fixture
def server(tmp_path: Path) -> Any:
    live = start_server(tmp_path, extra_env={"TRIGGERS_STREAM_HEARTBEAT": "0.3"})
    try:
        yield live
    finally:
        live.stop()


async def test_the_stream_sends_new_events_in_order_and_resumes_without_gaps(server: LiveServer) -> None:
    key = server.api_key
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        before = await post_event(client, key, n=-1)  # stored before connecting: not streamed
        stream, context = await open_stream(client, key)
        sent = [await post_event(client, key, n=i) for i in range(3)]
        frames = [await stream.event() for _ in range(3)]
        assert [f["id"] for f in frames] == sent
        for frame in frames:
            as_get = (await client.get(f"/v1/events/{frame['id']}", headers={"X-API-Key": key})).json()
            assert json.loads(frame["data"]) == as_get
        await context.__aexit__(None, None, None)  # the client goes away ...

        missed = [await post_event(client, key, n=10 + i) for i in range(2)]  # ... events go on
        stream, context = await open_stream(client, key, last_event_id=sent[-1])
        resumed = [(await stream.event())["id"] for _ in range(2)]
        assert resumed == missed  # exactly what was missed: no gap, no repeat
        later = await post_event(client, key, n=99)
        assert (await stream.event())["id"] == later
        await context.__aexit__(None, None, None)
        assert before not in sent + missed + [later]

        # resuming from the very first event replays everything after it, once
        stream, context = await open_stream(client, key, last_event_id=before)
        everything = [(await stream.event())["id"] for _ in range(6)]
        assert everything == [*sent, *missed, later]
        await context.__aexit__(None, None, None)


async def test_the_stream_filters_by_type_keeps_tenants_apart_and_beats(server: LiveServer) -> None:
    bob = cli_key(server, "bob")
    key = server.api_key
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        stream, context = await open_stream(client, key, event_type="wanted.type")
        await post_event(client, key, "other.type")
        await post_event(client, bob, "wanted.type")  # another user's: never shown
        wanted = await post_event(client, key, "wanted.type")
        frame = await stream.event()
        assert frame["id"] == wanted and json.loads(frame["data"])["event_type"] == "wanted.type"
        beats = 0
        while beats < 2:  # heartbeat comments keep idle connections open (every 0.3 s here)
            idle = await stream.frame()
            assert "data" not in idle
            beats += "heartbeat" in idle["comments"]
        await context.__aexit__(None, None, None)
        bob_stream, bob_context = await open_stream(client, bob)
        mine = await post_event(client, key)
        theirs = await post_event(client, bob)
        assert (await bob_stream.event())["id"] == theirs
        await bob_context.__aexit__(None, None, None)
        foreign = await client.get(
            "/v1/inbox/stream", headers={"X-API-Key": bob, "Last-Event-ID": mine}
        )  # another user's event id is unknown here
        assert foreign.status_code == 400 and foreign.json()["error"]["code"] == "VALIDATION_ERROR"


async def test_events_stored_by_another_process_reach_the_stream(tmp_path: Path, server: LiveServer) -> None:
    other = start_server(tmp_path)  # a second API process on the same database
    try:
        key = server.api_key
        async with (
            httpx.AsyncClient(base_url=server.url, timeout=10) as client,
            httpx.AsyncClient(base_url=other.url, timeout=10) as other_client,
        ):
            stream, context = await open_stream(client, key)
            ids = [await post_event(other_client, key, n=i) for i in range(3)]
            assert [(await stream.event())["id"] for _ in range(3)] == ids
            await context.__aexit__(None, None, None)
    finally:
        other.stop()


async def test_sigterm_ends_open_streams_so_shutdown_is_not_held_up(server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        stream, context = await open_stream(client, server.api_key)
        server.process.send_signal(signal.SIGTERM)
        while not (await stream.frame(timeout=15)).get("closed"):
            pass  # heartbeats until the server ends the stream
        await context.__aexit__(None, None, None)
    # uvicorn re-raises the signal once it has shut down cleanly, hence -SIGTERM
    assert server.process.wait(timeout=30) in (0, -signal.SIGTERM)
    assert "timeout graceful shutdown exceeded" not in server.log_path.read_text()


async def test_stream_errors_have_the_documented_shape(pushing: Pushing) -> None:
    client = pushing.client
    unknown = "0190f8a0-0000-7000-8000-000000000000"
    cases = [
        ({}, {}, 401),
        ({"X-API-Key": await new_key(pushing.app, scopes=("events:write",))}, {}, 403),
        ({**pushing.auth, "Last-Event-ID": unknown}, {}, 400),
        ({**pushing.auth, "Last-Event-ID": "not-an-id"}, {}, 400),
        (pushing.auth, {"event_type": "bad type!"}, 400),
    ]
    for headers, params, status in cases:
        response = await client.get("/v1/inbox/stream", headers=headers, params=params)
        assert response.status_code == status, response.text
        assert set(response.json()["error"]) == {"code", "message", "details", "timestamp", "request_id"}


# -- long poll ------------------------------------------------------------------------------------
async def test_a_long_poll_returns_as_soon_as_a_matching_event_exists(pushing: Pushing) -> None:
    pushing.receiver.script = lambda request, seen: Respond(503)  # pushed events stay in the inbox
    client, auth = pushing.client, pushing.auth
    waiting = asyncio.create_task(
        client.get("/v1/inbox", params={"wait": 20, "event_type": "wanted.type"}, headers=auth)
    )
    await asyncio.sleep(0.3)
    assert not waiting.done()  # nothing matches yet: it holds
    await pushing.ingest("other.type")
    await asyncio.sleep(0.3)
    assert not waiting.done()  # still nothing that matches
    wanted = await pushing.ingest("wanted.type")
    page = (await asyncio.wait_for(waiting, 15)).json()
    assert [e["event_id"] for e in page["events"]] == [wanted]


async def test_a_long_poll_for_dead_letters_wakes_on_a_dead_letter(pushing: Pushing) -> None:
    pushing.receiver.script = lambda request, seen: Respond(410)
    waiting = asyncio.create_task(
        pushing.client.get("/v1/inbox", params={"wait": 20, "status": "failed"}, headers=pushing.auth)
    )
    await asyncio.sleep(0.2)
    event_id = await pushing.ingest()
    page = (await asyncio.wait_for(waiting, 15)).json()
    assert [e["event_id"] for e in page["events"]] == [event_id]


async def test_a_long_poll_with_events_waiting_answers_at_once(pushing: Pushing) -> None:
    pushing.receiver.script = lambda request, seen: Respond(503)
    event_id = await pushing.ingest()
    page = (await pushing.client.get("/v1/inbox", params={"wait": 30}, headers=pushing.auth)).json()
    assert [e["event_id"] for e in page["events"]] == [event_id]
    empty = await pushing.client.get(
        "/v1/inbox", params={"wait": 0, "event_type": "none.here"}, headers=pushing.auth
    )
    assert empty.status_code == 200 and empty.json()["events"] == []
    for bad in ("31", "-1", "soon"):
        response = await pushing.client.get("/v1/inbox", params={"wait": bad}, headers=pushing.auth)
        assert response.status_code == 400 and response.json()["error"]["code"] == "VALIDATION_ERROR"


async def test_a_long_poll_that_times_out_answers_an_empty_page(pushing: Pushing) -> None:
    response = await pushing.client.get(
        "/v1/inbox", params={"wait": 1, "event_type": "never.comes"}, headers=pushing.auth
    )
    assert response.status_code == 200
    assert response.json()["events"] == [] and response.json()["pagination"]["has_more"] is False
