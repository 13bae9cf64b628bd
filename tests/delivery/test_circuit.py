"""The circuit breaker in front of the engine: open after N failures, wait, probe once, close."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.delivery.conftest import eventually, pushing_app
from tests.delivery.receiver import Receiver, Respond, always


async def test_the_circuit_opens_waits_without_spending_retries_then_probes_once(
    tmp_path: Path, receiver: Receiver
) -> None:
    receiver.script = always(Respond(503))
    overrides: dict[str, Any] = {
        "circuit_failure_threshold": 2,
        "circuit_cooldown": 3.0,  # ample margin for the checks made while open
        "retry_schedule": "0.05,0.05,0.05,0.05,0.05",
    }
    async with pushing_app(tmp_path, receiver, **overrides) as p:

        async def circuit() -> dict[str, Any]:
            health = (await p.client.get("/v1/health")).json()
            state: dict[str, Any] = health["checks"]["delivery"]["circuit"]
            return state

        first = await p.ingest()
        opened = await eventually(circuit, lambda c: c["state"] == "open")
        assert opened["consecutive_failures"] == 2 and opened["reopens_in_seconds"] > 0
        assert len(receiver.requests) == 2
        second = await p.ingest()  # arrives while the circuit is open
        await asyncio.sleep(0.3)
        assert len(receiver.requests) == 2  # nobody calls the engine while it is open
        assert (await p.status(second))["status"] == "received"  # not even claimed
        assert len((await p.wait_attempts(first, 2))["attempts"]) == 2  # its due retry waits, unspent
        summary = (await p.client.get("/v1/metrics/summary", headers=p.auth)).json()
        assert summary["circuit"]["state"] in ("open", "half_open")

        receiver.script = always(Respond(200))  # the engine recovers
        await p.wait_status(first, "delivered")
        await p.wait_status(second, "delivered")
        assert len(receiver.requests) == 4
        probe, follower = receiver.requests[2], receiver.requests[3]
        probe_answered = next(at for request, _, at in receiver.answered if request is probe)
        assert follower.at >= probe_answered  # one probe alone, the rest only after it succeeded
        assert len((await p.status(second))["attempts"]) == 1  # it spent no retry
        assert (await circuit())["state"] == "closed"
        text = (await p.client.get("/metrics")).text
        samples = {s.name: s.value for family in text_string_to_metric_families(text) for s in family.samples}
        assert samples["triggers_circuit_opened_total"] == 1
        assert samples["triggers_circuit_state"] == 0


async def test_a_failed_probe_opens_the_circuit_again(tmp_path: Path, receiver: Receiver) -> None:
    receiver.script = always(Respond(502))
    overrides: dict[str, Any] = {
        "circuit_failure_threshold": 1,
        "circuit_cooldown": 0.3,
        "retry_schedule": ",".join(["0.01"] * 10),
    }
    async with pushing_app(tmp_path, receiver, **overrides) as p:
        event_id = await p.ingest()
        await receiver.wait_for(lambda r: len(r.requests) >= 3)
        text = (await p.client.get("/metrics")).text
        opened = [
            s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name == "triggers_circuit_opened_total"
        ]
        assert opened[0] >= 3  # closed -> open, then each failed probe re-opens it
        gaps = [b.at - a.at for a, b in zip(receiver.requests, receiver.requests[1:], strict=False)]
        assert min(gaps[:2]) >= 0.25  # each probe waited for the cooldown, not the 10 ms schedule
        status = await p.wait_attempts(event_id, 3)  # the third answer may still be being recorded
        assert status["status"] == "queued"


async def test_a_refusal_does_not_open_the_circuit(tmp_path: Path, receiver: Receiver) -> None:
    receiver.script = always(Respond(422, b"bad event"))
    async with pushing_app(tmp_path, receiver, circuit_failure_threshold=2) as p:
        ids = [await p.ingest() for _ in range(4)]
        for event_id in ids:
            await p.wait_status(event_id, "failed")
        health = (await p.client.get("/v1/health")).json()
        assert health["checks"]["delivery"]["circuit"]["state"] == "closed"
        assert health["status"] == "healthy"
