"""The architecture document's mixed scenario (section 14.2), against this API, with Locust.

Not part of ``make bench``'s table (Locust's Python workers saturate before the service does on a
two-core box): it is the realistic mix, for watching latencies under a steady user population.
Each simulated client ingests (weight 3), reads its inbox (1) and checks health (1), waiting
1-3 s between tasks as in the document; an inbox read also acknowledges the first event it saw.

    TRIGGERS_API_KEY=tk_... .venv/bin/locust -f bench/locustfile.py --headless \\
        -H http://127.0.0.1:8000 -u 200 -r 50 -t 60s

(``make bench`` installs Locust; create a key with a high rate limit first, e.g.
``triggers-api keys create --user-id load --name locust --rate-limit 1000000 --json``.)
"""

from __future__ import annotations

import os
import random

from locust import HttpUser, between, task


class TriggersApiUser(HttpUser):
    wait_time = between(1, 3)

    def on_start(self) -> None:
        api_key = os.environ.get("TRIGGERS_API_KEY")
        if not api_key:
            raise RuntimeError("set TRIGGERS_API_KEY to a key with events:write and events:read")
        self.client.headers.update({"X-API-Key": api_key})

    @task(3)
    def ingest_event(self) -> None:
        self.client.post(
            "/v1/events",
            json={
                "event_type": "test.event",
                "payload": {
                    "test": "data",
                    "n": random.randint(0, 1_000_000),
                    "timestamp": "2025-11-11T10:00:00Z",
                },
            },
        )

    @task(1)
    def query_inbox(self) -> None:
        with self.client.get("/v1/inbox?limit=50", catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"inbox answered {response.status_code}")
                return
            events = response.json().get("events", [])
        if events:  # another user of the same key may have acknowledged it first: 410 is fine
            path = f"/v1/events/{events[0]['event_id']}"
            with self.client.delete(path, name="/v1/events/[id]", catch_response=True) as ack:
                if ack.status_code in (204, 410):
                    ack.success()
                else:
                    ack.failure(f"acknowledge answered {ack.status_code}")

    @task(1)
    def health_check(self) -> None:
        self.client.get("/v1/health")
