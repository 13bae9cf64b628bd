"""The README's "Clients" examples run as written against the live server."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from standardwebhooks import Webhook

from conftest import WEBHOOK_SECRET, Receiver, Server
from triggers_client import TriggersClient

README = Path(__file__).resolve().parents[3] / "README.md"


def client_examples() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Clients") :]
    section = section[: section.index("\n## ", 1)]
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


@pytest.fixture
def examples(server: Server, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    if not README.exists():
        pytest.skip("run from the repository (the README is beside clients/)")
    monkeypatch.setenv("TRIGGERS_BASE_URL", server.url)
    monkeypatch.setenv("TRIGGERS_API_KEY", server.api_key)
    found = client_examples()
    assert len(found) == 5, "producer, consumer, receiver, subscription, event type"
    return found


def test_producer_then_consumer_examples(
    examples: list[str], server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    producer, consumer = examples[:2]
    exec(compile(producer, "README producer", "exec"), {})
    produced = capsys.readouterr().out
    assert "received" in produced and "3 stored" in produced
    exec(compile(consumer, "README consumer", "exec"), {})
    handled = capsys.readouterr().out
    assert handled.count("handling") >= 4
    with TriggersClient(base_url=server.url, api_key=server.api_key) as client:
        assert client.inbox.list(event_type="order.completed").events == []  # all acknowledged


def test_receiver_example(examples: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIGGERS_SIGNING_SECRET", WEBHOOK_SECRET)
    namespace: dict[str, object] = {}
    exec(compile(examples[2], "README receiver", "exec"), namespace)
    handle_push = namespace["handle_push"]
    body = json.dumps(
        {
            "event_id": "0192f3c0-0000-7000-8000-000000000001",
            "user_id": "default",
            "event_type": "order.completed",
            "payload": {"order_id": 42},
            "status": "queued",
            "timestamp": "2026-01-01T00:00:00.000000Z",
            "ttl": 0,
            "retry_count": 0,
            "metadata": {"api_version": "v1", "correlation_id": "c"},
        }
    ).encode()
    msg_id = "0192f3c0-0000-7000-8000-000000000001"
    now = int(time.time())
    signature = Webhook(WEBHOOK_SECRET).sign(
        msg_id, datetime.fromtimestamp(now, tz=timezone.utc), body.decode()
    )
    headers = {"webhook-id": msg_id, "webhook-timestamp": str(now), "webhook-signature": signature}
    assert handle_push(body, headers) == 200  # type: ignore[operator]
    assert handle_push(body.replace(b"42", b"43"), headers) == 400  # type: ignore[operator]


def test_subscription_and_event_type_examples(
    examples: list[str], receiver: Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    subscription = examples[3].replace("https://hooks.example.com/orders", receiver.url)
    exec(compile(subscription, "README subscription", "exec"), {})
    sub_id, status, secret = capsys.readouterr().out.split()
    assert status == "active" and secret.startswith("whsec_")
    exec(compile(examples[4], "README event type", "exec"), {})
    assert capsys.readouterr().out.splitlines()[1] == "False ['/payload/order_id']"
    with TriggersClient() as client:
        assert client.subscriptions.get(sub_id).status == "paused"
        client.subscriptions.delete(sub_id)
        client.event_types.delete("order.refunded")
