"""An event answered 201 survives kill -9 of the server under concurrent load."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import httpx

from tests.conftest import start_server


def test_every_201_survives_sigkill_under_load(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    acknowledged: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def producer(n: int) -> None:
        with httpx.Client(base_url=server.url, headers={"X-API-Key": server.api_key}, timeout=5) as client:
            i = 0
            while not stop.is_set():
                i += 1
                try:
                    if i % 5 == 0:
                        body = {
                            "events": [
                                {"event_type": "crash.batch", "payload": {"p": n, "i": i, "j": j}}
                                for j in range(10)
                            ]
                        }
                        r = client.post("/v1/events/batch", json=body)
                        ids = [x["event_id"] for x in r.json()["results"]] if r.status_code == 201 else []
                    else:
                        r = client.post(
                            "/v1/events", json={"event_type": "crash.one", "payload": {"p": n, "i": i}}
                        )
                        ids = [r.json()["event_id"]] if r.status_code == 201 else []
                except (httpx.HTTPError, ValueError):
                    continue
                with lock:
                    acknowledged.extend(ids)

    threads = [threading.Thread(target=producer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    time.sleep(2.0)
    server.process.send_signal(signal.SIGKILL)
    server.process.wait()
    stop.set()
    for t in threads:
        t.join()
    with lock:
        answered = list(acknowledged)
    assert len(answered) > 50, "the load never got going"

    restarted = start_server(tmp_path, extra_env={"TRIGGERS_BOOTSTRAP_KEY": "false"})
    try:
        with httpx.Client(
            base_url=restarted.url, headers={"X-API-Key": server.api_key}, timeout=10
        ) as client:
            stored: set[str] = set()
            cursor = None
            while True:
                params = {"limit": 200, **({"offset": cursor} if cursor else {})}
                page = client.get("/v1/inbox", params=params).json()
                stored.update(e["event_id"] for e in page["events"])
                cursor = page["pagination"]["offset"]
                if not cursor:
                    break
            lost = [i for i in answered if i not in stored]
            assert lost == [], f"{len(lost)} of {len(answered)} acknowledged events were lost"
            sample = answered[len(answered) // 2]
            assert client.get(f"/v1/events/{sample}").status_code == 200
    finally:
        restarted.stop()
