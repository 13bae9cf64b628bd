"""The ``triggers`` command line, run as a subprocess against the live server."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest
from standardwebhooks import Webhook

from conftest import WEBHOOK_SECRET, Received, Receiver, Server
from triggers_client import TriggersClient

SCRIPT = Path(sys.executable).parent / "triggers"  # the console script `pip install` made


def command() -> list[str]:
    return [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "triggers_client.cli"]


def cli_env(server: Server | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIGGERS_")}
    if server is not None:
        env.update(TRIGGERS_BASE_URL=server.url, TRIGGERS_API_KEY=server.api_key)
    return env


def run(server: Server | None, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*command(), *args], env=cli_env(server), input=stdin, capture_output=True, text=True, timeout=60
    )


class Running:
    """A long-running ``triggers`` process with its output lines collected by threads."""

    def __init__(self, server: Server, *args: str) -> None:
        self.process = subprocess.Popen(
            [*command(), *args],
            env=cli_env(server),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.out: list[str] = []
        self.err: list[str] = []
        assert self.process.stdout is not None and self.process.stderr is not None
        self.readers = [
            threading.Thread(target=self._collect, args=(stream, lines), daemon=True)
            for stream, lines in ((self.process.stdout, self.out), (self.process.stderr, self.err))
        ]
        for reader in self.readers:
            reader.start()

    @staticmethod
    def _collect(stream: IO[str], lines: list[str]) -> None:
        with stream:
            for line in stream:
                lines.append(line.rstrip("\n"))

    def wait_for(self, lines: list[str], count: int, contains: str = "", timeout: float = 30) -> list[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            matching = [line for line in lines if contains in line]
            if len(matching) >= count:
                return matching
            if self.process.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError(f"wanted {count} lines with {contains!r}; out={self.out} err={self.err}")

    def stop(self, sig: int = signal.SIGINT) -> int:
        self.process.send_signal(sig)
        return self.reap()

    def reap(self) -> int:
        code = self.process.wait(timeout=30)
        for reader in self.readers:
            reader.join(timeout=10)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.reap()


@pytest.fixture
def client(server: Server) -> Iterator[TriggersClient]:
    with TriggersClient(base_url=server.url, api_key=server.api_key) as sdk:
        yield sdk


def test_send_inbox_get_ack(server: Server, client: TriggersClient, event_type: str, tmp_path: Path) -> None:
    first = run(server, "send", event_type, '{"order": 1}')
    assert first.returncode == 0, first.stderr
    payload_file = tmp_path / "payload.json"
    payload_file.write_text('{"order": 2}')
    second = run(server, "send", event_type, "--data", f"@{payload_file}", "--idempotency-key", "k-2")
    again = run(server, "send", event_type, "--data", '{"order": 2}', "--idempotency-key", "k-2")
    ids = [first.stdout.strip(), second.stdout.strip()]
    assert again.stdout.strip() == ids[1]  # the key made the retry a replay
    assert [e.payload for e in client.inbox.iter(event_type=event_type)] == [{"order": 1}, {"order": 2}]

    listing = run(server, "inbox", "--type", event_type, "--json")
    assert [json.loads(line)["event_id"] for line in listing.stdout.splitlines()] == ids
    limited = run(server, "--base-url", server.url, "inbox", "--type", event_type, "--limit", "1")
    assert limited.returncode == 0 and len(limited.stdout.splitlines()) == 1 and ids[0] in limited.stdout
    shown = run(server, "get", ids[0])
    assert json.loads(shown.stdout)["payload"] == {"order": 1}
    acked = run(server, "ack", *ids)
    assert acked.returncode == 0 and acked.stdout.count("acknowledged") == 2
    assert run(server, "inbox", "--type", event_type, "--json").stdout == ""


def test_exit_codes(server: Server, client: TriggersClient, event_type: str) -> None:
    missing = run(server, "get", str(uuid.uuid4()))
    assert missing.returncode == 1 and "NOT_FOUND" in missing.stderr
    assert re.search(r"request id: [0-9a-f]{8,}", missing.stderr)
    received = client.events.create(event_type, {}).event_id
    not_replayable = run(server, "replay", received)
    assert not_replayable.returncode == 1 and "EVENT_NOT_REPLAYABLE" in not_replayable.stderr
    assert run(server, "ack", str(uuid.uuid4())).returncode == 1
    assert run(server, "send", event_type, "[1, 2]").returncode == 2  # not an object
    assert run(server, "send", event_type, "{", "--data", "{}").returncode == 2
    assert run(server, "frobnicate").returncode == 2
    no_key = run(None, "--base-url", server.url, "inbox")
    assert no_key.returncode == 2 and "TRIGGERS_API_KEY" in no_key.stderr
    bad_key = run(server, "--api-key", "tk_" + "x" * 43, "inbox")
    assert bad_key.returncode == 1 and "UNAUTHORIZED" in bad_key.stderr
    stdin = run(server, "send", event_type, "--data", "@-", stdin='{"from": "stdin"}')
    assert stdin.returncode == 0 and client.events.get(stdin.stdout.strip()).payload == {"from": "stdin"}


def test_tail_prints_one_json_line_per_event(server: Server, client: TriggersClient, event_type: str) -> None:
    tail = Running(server, "tail", "--type", event_type, "--json")
    try:
        tail.wait_for(tail.err, 1, "Ready")
        sent = [client.events.create(event_type, {"i": i}).event_id for i in range(3)]
        client.events.create("other.type", {})
        lines = tail.wait_for(tail.out, 3)
        assert [json.loads(line)["event_id"] for line in lines] == sent
        assert tail.stop() == 0 and "Stopped." in tail.err
    finally:
        tail.kill()


def test_listen_forwards_signed_events_and_resumes_without_loss_or_repeat(
    server: Server, client: TriggersClient, event_type: str, tmp_path: Path
) -> None:
    """``listen --forward-to`` POSTs each event, signed, to a local receiver that verifies it with
    the independent ``standardwebhooks`` package; stopped (Ctrl-C) and killed (SIGKILL) between
    events and restarted, it forwards every event exactly once, and ``--ack`` acknowledges each."""
    verifier = Webhook(WEBHOOK_SECRET)
    refused: list[str] = []

    def verify(request: Received) -> int:
        try:
            verifier.verify(request.body, request.headers)
        except Exception as exc:  # recorded, and answered as a receiver would
            refused.append(repr(exc))
            return 400
        return 200

    receiver = Receiver(verify)
    state = tmp_path / "listen-state.json"
    args: tuple[str, ...] = (
        "listen",
        "--forward-to",
        receiver.url,
        "--type",
        event_type,
        "--ack",
        "--secret",
        WEBHOOK_SECRET,
    )
    args += ("--state-file", str(state))
    sent: list[str] = []

    def send(count: int) -> None:
        sent.extend(client.events.create(event_type, {"n": len(sent)}).event_id for _ in range(count))

    try:
        listen = Running(server, *args)
        listen.wait_for(listen.err, 1, "Ready: forwarding new events")
        send(3)
        client.events.create("other.type", {})  # not this listen's type
        receiver.wait_for(3)
        listen.wait_for(listen.out, 3, "-> 200")
        assert listen.stop(signal.SIGINT) == 0  # Ctrl-C: a clean stop
        assert "Stopped." in listen.err

        send(2)  # while nobody listens
        listen = Running(server, *args)
        listen.wait_for(listen.err, 1, "Ready: resuming after")
        receiver.wait_for(5)
        send(2)
        listen.wait_for(listen.out, 4, "acknowledged")
        listen.kill()  # SIGKILL while idle: the state file already has the last event

        send(1)
        listen = Running(server, *args)
        receiver.wait_for(8)
        listen.wait_for(listen.out, 1, "-> 200")
        assert listen.stop(signal.SIGTERM) == 0
    finally:
        listen.kill()
        receiver.close()

    forwarded = [r.headers["webhook-id"] for r in receiver.requests]
    assert forwarded == sent  # every event, once, in order
    assert refused == []
    bodies = [json.loads(r.body) for r in receiver.requests]
    assert [b["payload"] for b in bodies] == [{"n": i} for i in range(8)]
    assert all(r.headers["content-type"] == "application/json" for r in receiver.requests)
    assert client.inbox.list(event_type=event_type).events == []  # --ack acknowledged each one
    assert json.loads(state.read_text())  # the position survives in the state file


def test_listen_cannot_resume_after_an_unknown_event_and_says_how_to_start_over(
    server: Server, event_type: str, tmp_path: Path
) -> None:
    target = "http://127.0.0.1:9/webhook"
    state = tmp_path / "state.json"
    scope = f"{server.url}|{server.api_key[:11]}|{event_type}|{target}"
    state.write_text(json.dumps({scope: str(uuid.uuid4())}))
    args = ("listen", "--forward-to", target, "--type", event_type, "--state-file", str(state))
    stale = run(server, *args)
    assert stale.returncode == 1 and "--from-now" in stale.stderr and "VALIDATION_ERROR" in stale.stderr
    fresh = Running(server, *args, "--from-now")
    try:
        fresh.wait_for(fresh.err, 1, "Ready: forwarding new events")
        assert fresh.stop(signal.SIGINT) == 0
    finally:
        fresh.kill()
