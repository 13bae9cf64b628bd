"""Fan-out across real OS processes on one PostgreSQL: two API processes, two workers, 2,000
events fanned out to 3 subscriptions (and the workflow URL). The fault-free half reaches every
target exactly once; then a worker is SIGKILLed mid-run and still no delivery is lost (its
leases expire and the other worker takes over; only pushes it had in flight may repeat)."""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter

import asyncpg
import httpx
import orjson
import pytest

from tests.delivery.receiver import Received, Receiver, Respond
from tests.postgres.test_multiprocess import Fleet, fleet, send_load  # noqa: F401 - the fixture

pytestmark = pytest.mark.slow

SUBSCRIPTIONS = 3
DESTINATION_CONCURRENCY = 4


async def test_two_thousand_events_fan_out_to_three_subscriptions_across_processes(
    fleet: Fleet,  # noqa: F811
    pg_url: str,
    pg_schema: str,
) -> None:
    slow = {"on": False}

    def script(request: Received, seen: int) -> Respond:
        return Respond(200, b"ok", delay=0.02 if slow["on"] else 0.0)

    workflow = Receiver(script)
    targets = [Receiver(script) for _ in range(SUBSCRIPTIONS)]
    fleet.env["TRIGGERS_WORKFLOW_URL"] = await workflow.start()
    fleet.env["TRIGGERS_DESTINATION_ALLOWLIST"] = "127.0.0.1/32"
    fleet.env["TRIGGERS_DESTINATION_CONCURRENCY"] = str(DESTINATION_CONCURRENCY)
    everyone = [workflow, *targets]
    try:
        for t in targets:
            await t.start()
        fleet.cli("migrate")
        created = fleet.cli(
            "keys", "create", "--user-id", "fan", "--name", "load", "--rate-limit", "1000000", "--json",
            "--scope", "events:write", "--scope", "events:read", "--scope", "subscriptions:manage",
        )  # fmt: skip
        key = orjson.loads(created)["api_key"]
        apis = [fleet.api("api-1"), fleet.api("api-2")]
        async with httpx.AsyncClient(timeout=30) as client:
            for t in targets:
                answer = await client.post(
                    f"{apis[0]}/v1/subscriptions", json={"target_url": t.url}, headers={"X-API-Key": key}
                )
                assert answer.status_code == 201, answer.text
        fleet.worker("worker-1")
        fleet.worker("worker-2")

        # -- fault-free: 1,000 events, each at every destination exactly once ---------------------
        ids = await send_load(apis, key, "a", 0, 10)
        assert len(set(ids)) == 1000
        for r in everyone:
            await r.wait_for(lambda r: set(ids) <= set(r.delivered_ids()), timeout=240)
        await asyncio.sleep(1.0)  # a double delivery would arrive about now
        for r in everyone:
            seen = Counter(i for i in r.ids() if i in set(ids))
            assert {i: n for i, n in seen.items() if n != 1} == {}, "fault-free run repeated a delivery"

        # -- SIGKILL one worker mid-run: nothing lost ----------------------------------------------
        slow["on"] = True
        before = sum(len(r.requests) for r in everyone)
        loading = asyncio.create_task(send_load(apis, key, "b", 0, 10))
        await targets[0].wait_for(
            lambda _: sum(len(r.requests) for r in everyone) >= before + 400, timeout=120
        )
        victim = fleet.processes["worker-1"]
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        more = set(await loading)
        assert len(more) == 1000
        for r in everyone:
            await r.wait_for(lambda r: more <= set(r.delivered_ids()), timeout=240)
        conn = await asyncpg.connect(pg_url, server_settings={"search_path": pg_schema})
        try:
            deadline = time.monotonic() + 120
            while (
                left := await conn.fetchval("SELECT count(*) FROM deliveries WHERE status <> 'delivered'")
            ) > 0:
                assert time.monotonic() < deadline, f"{left} deliveries never recorded as delivered"
                await asyncio.sleep(0.2)
            assert await conn.fetchval("SELECT count(*) FROM deliveries") == 2000 * (SUBSCRIPTIONS + 1)
            assert await conn.fetchval("SELECT count(*) FROM events WHERE status <> 'delivered'") == 0
            assert (
                await conn.fetchval(
                    "SELECT count(*) FROM deliveries WHERE attempts <> 1 AND event_id = ANY($1)", ids
                )
                == 0
            )
        finally:
            await conn.close()
        repeated = 0
        for r in everyone:
            seen_b = Counter(i for i in r.ids() if i in more)
            assert set(seen_b) == more  # none lost at any destination
            repeated += sum(1 for n in seen_b.values() if n > 1)
        # at-least-once: only what the dead worker had in flight, at most its slots per destination
        assert repeated <= DESTINATION_CONCURRENCY * 2 * (SUBSCRIPTIONS + 1), repeated
        print(f"after SIGKILL: {repeated} deliveries repeated, 0 lost")  # noqa: T201 - the figure, with -s
        assert fleet.processes["worker-2"].poll() is None, fleet.log("worker-2")
    finally:
        for r in everyone:
            await r.stop()
