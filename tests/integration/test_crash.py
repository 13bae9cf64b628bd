"""An event answered 201 survives kill -9 of the server under concurrent load."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import httpx

from tests.conftest import start_server
from tests.postgres.schemas import TEST_BACKEND

#: Batches of 100 stored before the acknowledgements start. Fewer on the AWS emulator, whose
#: TransactWriteItems copies the whole table per call (moto), so a batch slows as the table grows.
ACK_BATCHES = 8 if TEST_BACKEND == "dynamodb" else 30
#: The emulator serves one call at a time in Python: on a loaded box its requests can outlast 5 s
#: and the load takes longer to get going (a fresh-check saw 48 acknowledgements in 20 s, 50 needed).
LOAD_WAIT_S = 60 if TEST_BACKEND == "dynamodb" else 20
REQUEST_TIMEOUT_S = 30 if TEST_BACKEND == "dynamodb" else 5


def wait_for_answers(answered: list[str], lock: threading.Lock, count: int) -> None:
    """Kill in the middle of the load: once ``count`` answers came, or after LOAD_WAIT_S on a
    machine too busy for that (then the "never got going" assertion says so)."""
    deadline = time.monotonic() + LOAD_WAIT_S
    while time.monotonic() < deadline:
        with lock:
            if len(answered) >= count:
                return
        time.sleep(0.05)


def test_every_201_survives_sigkill_under_load(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    acknowledged: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def producer(n: int) -> None:
        with httpx.Client(
            base_url=server.url, headers={"X-API-Key": server.api_key}, timeout=REQUEST_TIMEOUT_S
        ) as client:
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
    wait_for_answers(acknowledged, lock, 300)
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


def test_every_acknowledgement_answered_204_survives_sigkill_under_load(tmp_path: Path) -> None:
    """Acknowledgements share the ingest group commit: a 204 is on disk too, whatever happens."""
    server = start_server(tmp_path)
    headers = {"X-API-Key": server.api_key}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
        stored: list[str] = []
        for n in range(ACK_BATCHES):
            body = {"events": [{"event_type": "crash.ack", "payload": {"n": n, "j": j}} for j in range(100)]}
            response = client.post("/v1/events/batch", json=body)
            assert response.status_code == 201, response.text
            stored += [x["event_id"] for x in response.json()["results"]]
    answered: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def consumer(n: int) -> None:
        mine = stored[n::8]
        with httpx.Client(base_url=server.url, headers=headers, timeout=REQUEST_TIMEOUT_S) as client:
            for i, event_id in enumerate(mine):
                if stop.is_set():
                    return
                try:
                    if i % 10 == 9:  # now and then a batch of the next few
                        chunk = mine[i : i + 5]
                        r = client.post("/v1/events/acknowledge/batch", json={"event_ids": chunk})
                        done = [x["event_id"] for x in r.json()["results"] if x["result"] == "acknowledged"]
                    else:
                        r = client.delete(f"/v1/events/{event_id}")
                        done = [event_id] if r.status_code == 204 else []
                except (httpx.HTTPError, ValueError, KeyError):
                    continue
                with lock:
                    answered.extend(done)

    threads = [threading.Thread(target=consumer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    wait_for_answers(answered, lock, 200)
    server.process.send_signal(signal.SIGKILL)
    server.process.wait()
    stop.set()
    for t in threads:
        t.join()
    with lock:
        acknowledged = set(answered)
    assert len(acknowledged) > 50, "the load never got going"
    assert len(acknowledged) < len(stored), "every event was acknowledged before the kill"

    restarted = start_server(tmp_path, extra_env={"TRIGGERS_BOOTSTRAP_KEY": "false"})
    try:
        with httpx.Client(base_url=restarted.url, headers=headers, timeout=10) as client:
            seen: dict[str, str | None] = {}
            cursor = None
            while True:  # every event, acknowledged or not, with its acknowledged_at
                params = {"limit": 200, **({"offset": cursor} if cursor else {})}
                page = client.get("/v1/events", params=params).json()
                seen.update((e["event_id"], e["acknowledged_at"]) for e in page["events"])
                cursor = page["pagination"]["offset"]
                if not cursor:
                    break
            assert set(seen) == set(stored)
            lost = [i for i in acknowledged if seen[i] is None]
            assert lost == [], f"{len(lost)} of {len(acknowledged)} acknowledgements answered 204 were lost"
            sample = sorted(acknowledged)[len(acknowledged) // 2]
            assert client.get(f"/v1/events/{sample}").status_code == 404
            assert client.delete(f"/v1/events/{sample}").status_code == 410
    finally:
        restarted.stop()
