"""``/v1/health`` is degraded (200, with the reason) while the push circuit is open."""

from __future__ import annotations

from pathlib import Path

from tests.delivery.conftest import eventually, pushing_app
from tests.delivery.receiver import Receiver, Respond, always


async def test_health_is_degraded_while_the_circuit_is_open(tmp_path: Path) -> None:
    receiver = Receiver(always(Respond(503)))
    await receiver.start()
    try:
        async with pushing_app(tmp_path, receiver, circuit_failure_threshold=2, circuit_cooldown=60.0) as p:
            healthy = (await p.client.get("/v1/health")).json()
            assert healthy["status"] == "healthy", healthy
            for n in range(3):
                await p.ingest(payload={"n": n})

            async def health() -> dict[str, object]:
                response = await p.client.get("/v1/health")
                assert response.status_code == 200
                body: dict[str, object] = response.json()
                return body

            body = await eventually(health, lambda b: b["status"] == "degraded")
            assert body["checks"]["delivery"]["circuit"]["state"] == "open"  # type: ignore[index]
            assert any("circuit open" in r for r in body["reasons"])  # type: ignore[attr-defined]
    finally:
        await receiver.stop()
