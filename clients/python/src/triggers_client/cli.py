"""``triggers``: the Triggers API from a shell, and ``triggers listen --forward-to`` for local work.

Exit codes: 0 success, 1 API error (message and request id on stderr), 2 usage.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, Callable

import httpx

from triggers_client import webhooks
from triggers_client._client import TriggersClient
from triggers_client._core import __version__
from triggers_client._errors import GoneError, TriggersError, ValidationError
from triggers_client._models import Event

EXIT_OK, EXIT_API, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad arguments found after parsing (exit 2)."""


# -- arguments ------------------------------------------------------------------------------------
def _connection_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    default = None if top else argparse.SUPPRESS  # a subcommand's copy overrides only when given
    parser.add_argument("--base-url", default=default, help="API address (default: $TRIGGERS_BASE_URL)")
    parser.add_argument("--api-key", default=default, help="API key (default: $TRIGGERS_API_KEY)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="triggers", description="Command line of the Triggers API.")
    parser.add_argument("--version", action="version", version=f"triggers {__version__}")
    _connection_options(parser, top=True)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        _connection_options(sub, top=False)
        return sub

    send = command("send", "ingest one event and print its id")
    send.add_argument("event_type", metavar="EVENT_TYPE")
    send.add_argument("json", nargs="?", metavar="JSON", help="the payload, a JSON object")
    send.add_argument("--data", "-d", help="the payload: JSON, or @file.json, or @- for stdin")
    send.add_argument("--idempotency-key", help="retries with this key store the event once")

    inbox = command("inbox", "list undelivered events, oldest first")
    inbox.add_argument("--type", dest="event_type")
    inbox.add_argument("--status", choices=["received", "queued", "failed"])
    inbox.add_argument("--limit", type=int, default=50, help="at most N events (default 50)")
    inbox.add_argument("--json", action="store_true", help="one JSON event per line")

    get = command("get", "print one event as JSON")
    get.add_argument("event_id", metavar="ID")

    ack = command("ack", "acknowledge events")
    ack.add_argument("event_ids", nargs="+", metavar="ID")

    replay = command("replay", "put a dead letter back into delivery")
    replay.add_argument("event_id", metavar="ID")

    tail = command("tail", "follow the live stream, one line per event")
    tail.add_argument("--type", dest="event_type")
    tail.add_argument("--json", action="store_true", help="one JSON event per line")

    listen = command("listen", "forward the live stream to a local endpoint, as the push worker would")
    listen.add_argument(
        "--forward-to", required=True, metavar="URL", help="e.g. http://localhost:4242/webhook"
    )
    listen.add_argument("--type", dest="event_type")
    listen.add_argument("--ack", action="store_true", help="acknowledge each event the endpoint answers 2xx")
    listen.add_argument("--secret", help="whsec_...: sign each request (Standard Webhooks)")
    listen.add_argument("--from-now", action="store_true", help="skip what arrived while listen was stopped")
    listen.add_argument("--state-file", type=Path, help="where the last forwarded event id is kept")
    listen.add_argument("--timeout", type=float, default=30.0, help="seconds per forwarded request")
    return parser


# -- output ---------------------------------------------------------------------------------------
def _out(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _err(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def _raw_json(event: Event) -> str:
    return json.dumps(event.raw, separators=(",", ":"), ensure_ascii=False)


def _color(text: str, code: str) -> str:
    return f"\033[{code}m{text}\033[0m" if sys.stdout.isatty() else text


def _event_line(event: Event) -> str:
    stamp = event.timestamp.strftime("%Y-%m-%d %H:%M:%S")
    payload = json.dumps(event.payload, separators=(",", ":"), ensure_ascii=False) if event.payload else "{}"
    if len(payload) > 80:
        payload = payload[:77] + "..."
    return f"{_color(stamp, '2')}  {_color(event.event_type, '1;36')}  {event.event_id}  {event.status:<9}  {payload}"


# -- commands -------------------------------------------------------------------------------------
def _payload(args: argparse.Namespace) -> dict[str, Any]:
    if args.json is not None and args.data is not None:
        raise UsageError("give the payload either as JSON or with --data, not both")
    text: str | None = args.json if args.json is not None else args.data
    if text is None:
        return {}
    if text.startswith("@"):
        source = text[1:]
        try:
            text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot read {source}: {exc.strerror}") from None
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"the payload is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise UsageError("the payload must be a JSON object")
    return value


def cmd_send(client: TriggersClient, args: argparse.Namespace) -> int:
    created = client.events.create(args.event_type, _payload(args), idempotency_key=args.idempotency_key)
    _out(created.event_id)
    return EXIT_OK


def cmd_inbox(client: TriggersClient, args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise UsageError("--limit must be at least 1")
    shown = 0
    for event in client.inbox.iter(args.event_type, args.status, page_size=min(args.limit, 200)):
        _out(_raw_json(event) if args.json else _event_line(event))
        shown += 1
        if shown >= args.limit:
            break
    return EXIT_OK


def cmd_get(client: TriggersClient, args: argparse.Namespace) -> int:
    _out(json.dumps(client.events.get(args.event_id).raw, indent=2, ensure_ascii=False))
    return EXIT_OK


def cmd_ack(client: TriggersClient, args: argparse.Namespace) -> int:
    code = EXIT_OK
    for result in client.events.acknowledge_many(args.event_ids):
        if result.result == "not_found":
            _err(f"not found: {result.event_id}")
            code = EXIT_API
        else:
            _out(f"{result.result}: {result.event_id}")
    return code


def cmd_replay(client: TriggersClient, args: argparse.Namespace) -> int:
    accepted = client.events.replay(args.event_id)
    _out(f"{accepted.status}: {accepted.event_id}")
    return EXIT_OK


def _announce(first: str) -> Callable[[], None]:
    """Say on stderr when the stream is (re)connected: scripts and people both wait for it."""
    connected = [False]

    def on_connect() -> None:
        _err(first if not connected[0] else "Reconnected.")
        connected[0] = True

    return on_connect


def cmd_tail(client: TriggersClient, args: argparse.Namespace) -> int:
    on_connect = _announce("Ready: following the live stream (Ctrl-C to stop)")
    with StopSignals().installed():
        try:
            for message in client._sse("/v1/inbox/stream", args.event_type, None, on_connect):
                event = Event.from_json(json.loads(message.data))
                _out(_raw_json(event) if args.json else _event_line(event))
        except KeyboardInterrupt:
            _err("Stopped.")
    return EXIT_OK


# -- listen ---------------------------------------------------------------------------------------
class ListenState:
    """The last event forwarded, per (server, key, type, target), in a small JSON file written
    atomically, so a restarted ``listen`` resumes right after it."""

    def __init__(self, path: Path, scope: str) -> None:
        self.path = path
        self.scope = scope

    @staticmethod
    def default_path() -> Path:
        base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        return Path(base) / "triggers" / "listen.json"

    def _read_all(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def load(self) -> str | None:
        value = self._read_all().get(self.scope)
        return value if isinstance(value, str) else None

    def save(self, event_id: str) -> None:
        data = self._read_all()
        data[self.scope] = event_id
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".listen-", dir=self.path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=1, sort_keys=True)
        os.replace(tmp, self.path)


class StopSignals:
    """Ctrl-C / SIGTERM: interrupt a wait at once, but let an event being forwarded finish (and its
    position be saved) first, so a stop never repeats or skips one."""

    def __init__(self) -> None:
        self.busy = False
        self.requested = False

    def handler(self, signum: int, frame: FrameType | None) -> None:
        if self.busy:
            self.requested = True
        else:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        previous = {sig: signal.signal(sig, self.handler) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)

    @contextlib.contextmanager
    def critical(self) -> Iterator[None]:
        self.busy = True
        try:
            yield
        finally:
            self.busy = False
        if self.requested:
            raise KeyboardInterrupt


def _newest_event_id(client: TriggersClient) -> str | None:
    page = client.events.list(limit=1)
    return page.events[0].event_id if page.events else None


def cmd_listen(client: TriggersClient, args: argparse.Namespace) -> int:
    if args.secret:
        try:
            webhooks.signature(args.secret, "probe", 0, b"")
        except ValueError as exc:
            raise UsageError(f"--secret: {exc}") from None
    scope = f"{client.base_url}|{client._config.api_key[:11]}|{args.event_type or '*'}|{args.forward_to}"
    state = ListenState(args.state_file or ListenState.default_path(), scope)
    stops = StopSignals()
    with stops.installed(), httpx.Client(timeout=args.timeout) as forwarder:
        try:
            last_id = None if args.from_now else state.load()
            if last_id is None:
                # Remember where "now" is before connecting, so events sent while this listen is
                # stopped later are still forwarded after a restart.
                last_id = _newest_event_id(client)
                if last_id is not None:
                    state.save(last_id)
                ready = f"Ready: forwarding new events to {args.forward_to} (Ctrl-C to stop)"
            else:
                ready = f"Ready: resuming after {last_id}, forwarding to {args.forward_to} (Ctrl-C to stop)"
            stream = client._sse("/v1/inbox/stream", args.event_type, last_id, _announce(ready))
            for message in stream:
                with stops.critical():
                    line = _forward(client, forwarder, args, message.data)
                    if message.id:
                        state.save(message.id)
                    _out(line)  # after the save: a printed event is never forwarded again
        except ValidationError as exc:
            if "Last-Event-ID" in exc.details:  # the saved event expired: say how to start over
                _err(f"cannot resume after {last_id} ({exc.message}): run with --from-now to start over")
            raise
        except KeyboardInterrupt:
            _err("Stopped.")
    return EXIT_OK


def _forward(client: TriggersClient, forwarder: httpx.Client, args: argparse.Namespace, data: str) -> str:
    """POST one stream event to the local endpoint (and acknowledge it); returns the line to print."""
    event = Event.from_json(json.loads(data))
    body = data.encode()
    headers = {
        "content-type": "application/json",
        "user-agent": f"triggers-cli/{__version__}",
        **webhooks.sign(body, event.event_id, args.secret),
    }
    started = time.perf_counter()
    try:
        answer = forwarder.post(args.forward_to, content=body, headers=headers)
    except httpx.HTTPError as exc:
        elapsed = (time.perf_counter() - started) * 1000
        return f"{event.event_type}  {event.event_id}  -> {type(exc).__name__}  {elapsed:.0f} ms"
    elapsed = (time.perf_counter() - started) * 1000
    note = ""
    if args.ack and answer.is_success:
        try:
            client.events.acknowledge(event.event_id)
            note = "  acknowledged"
        except GoneError:
            note = "  already acknowledged"
    return f"{event.event_type}  {event.event_id}  -> {answer.status_code}  {elapsed:.0f} ms{note}"


COMMANDS = {
    "send": cmd_send,
    "inbox": cmd_inbox,
    "get": cmd_get,
    "ack": cmd_ack,
    "replay": cmd_replay,
    "tail": cmd_tail,
    "listen": cmd_listen,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # exits 2 on bad usage
    if not (args.api_key or os.environ.get("TRIGGERS_API_KEY")):
        parser.error("no API key: pass --api-key or set TRIGGERS_API_KEY")
    try:
        with TriggersClient(base_url=args.base_url, api_key=args.api_key) as client:
            return COMMANDS[args.command](client, args)
    except UsageError as exc:
        parser.error(str(exc))
    except TriggersError as exc:
        _err(f"error: {exc.message}")
        if exc.code or exc.status:
            _err(f"  status {exc.status}, code {exc.code}")
        if exc.request_id:
            _err(f"  request id: {exc.request_id}")
        return EXIT_API
    except KeyboardInterrupt:
        return 130
    return EXIT_OK  # pragma: no cover


if __name__ == "__main__":
    raise SystemExit(main())
