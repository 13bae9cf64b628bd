"""A full disk (issue 15): the database and the archive on a small tmpfs this test mounts.

Writes that cannot be committed get 503 ``STORAGE_UNAVAILABLE`` with ``Retry-After`` (never a
500, never a 201 for an event not on disk), reads keep working, ``/v1/health`` says so, and once
space is freed writes resume by themselves; every 201 is then in the database. A retention
sweep whose archive directory fills up deletes nothing it did not archive.
"""

from __future__ import annotations

import gzip
import os
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests.conftest import start_server
from triggers_api.retention import sweep
from triggers_api.storage.base import AuditRecord, EventRecord, now_us
from triggers_api.storage.sqlite import SQLiteStorage

pytestmark = pytest.mark.sqlite_only


def _mount_tmpfs(where: Path, size: str) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a size-limited tmpfs needs root (the tests run as root in CI)")
    where.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    yield from _mount_tmpfs(tmp_path / "small-disk", "16m")


@pytest.fixture
def small_archive(tmp_path: Path) -> Iterator[Path]:
    yield from _mount_tmpfs(tmp_path / "small-archive", "256k")


def _fill(directory: Path) -> Path:
    """Write a ballast file until the filesystem is full."""
    ballast = directory / "ballast"
    chunk = os.urandom(64 * 1024)
    with open(ballast, "wb", buffering=0) as out:
        try:
            while True:
                out.write(chunk)
        except OSError:
            pass
        try:
            while True:  # the last few bytes too
                out.write(b"\0" * 512)
        except OSError:
            pass
    return ballast


def test_full_disk_answers_503_and_recovers_by_itself(tmp_path: Path, small_disk: Path) -> None:
    server = start_server(
        tmp_path,
        extra_env={
            "TRIGGERS_DATABASE_URL": f"sqlite:///{small_disk / 'live.db'}",
            "TRIGGERS_DEFAULT_RATE_LIMIT": "1000000",
            "TRIGGERS_STORAGE_RETRY_AFTER": "2",
        },
    )
    committed: list[str] = []
    statuses: dict[int, int] = {}
    unavailable: list[httpx.Response] = []
    lock = threading.Lock()
    stop = threading.Event()

    def producer(n: int) -> None:
        with httpx.Client(base_url=server.url, headers={"X-API-Key": server.api_key}, timeout=30) as client:
            i = 0
            while not stop.is_set():
                i += 1
                if i % 4 == 0:
                    body = {
                        "events": [
                            {"event_type": "disk.batch", "payload": {"n": n, "i": i, "j": j}}
                            for j in range(5)
                        ]
                    }
                    r = client.post("/v1/events/batch", json=body)
                    ids = [x["event_id"] for x in r.json()["results"]] if r.status_code == 201 else []
                else:
                    r = client.post(
                        "/v1/events", json={"event_type": "disk.one", "payload": {"n": n, "pad": "p" * 2000}}
                    )
                    ids = [r.json()["event_id"]] if r.status_code == 201 else []
                with lock:
                    statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                    committed.extend(ids)
                    if r.status_code == 503 and len(unavailable) < 5:
                        unavailable.append(r)
                if r.status_code == 503:
                    time.sleep(0.05)

    threads = [threading.Thread(target=producer, args=(n,)) for n in range(4)]
    reader = httpx.Client(base_url=server.url, headers={"X-API-Key": server.api_key}, timeout=30)
    try:
        for t in threads:
            t.start()
        deadline = time.monotonic() + 20
        while not committed:
            assert time.monotonic() < deadline, "no event was ever stored"
            time.sleep(0.05)
        ballast = _fill(small_disk)
        deadline = time.monotonic() + 30
        while not unavailable:
            assert time.monotonic() < deadline, f"writes never failed on a full disk: {statuses}"
            time.sleep(0.1)

        # 503 in the error shape, with Retry-After.
        first = unavailable[0]
        assert first.headers["Retry-After"] == "2"
        assert first.json()["error"]["code"] == "STORAGE_UNAVAILABLE"
        # Reads keep working; health reports the failing writes.
        with lock:
            some_id = committed[0]
        assert reader.get(f"/v1/events/{some_id}").status_code == 200
        assert reader.get("/v1/inbox", params={"limit": 10}).status_code == 200
        health = reader.get("/v1/health")
        assert health.status_code == 503
        assert health.json()["checks"]["writes"].startswith("failing:")

        # Space freed: writes resume without a restart.
        ballast.unlink()
        with lock:
            before = len(committed)
        deadline = time.monotonic() + 30
        while True:
            with lock:
                if len(committed) > before + 20:
                    break
            assert time.monotonic() < deadline, f"writes did not resume: {statuses}"
            time.sleep(0.1)
        assert reader.get("/v1/health").status_code == 200
    finally:
        stop.set()
        for t in threads:
            t.join()
        reader.close()
        server.stop()

    assert 500 not in statuses, statuses
    assert statuses.get(503, 0) > 0 and statuses.get(201, 0) > 0
    # Every event answered 201 is on disk.
    conn = sqlite3.connect(small_disk / "live.db")
    try:
        stored = {row[0] for row in conn.execute("SELECT event_id FROM events")}
    finally:
        conn.close()
    missing = set(committed) - stored
    assert not missing, f"{len(missing)} events answered 201 are not in the database"


def _expired_event(i: int, blob: str) -> tuple[EventRecord, AuditRecord]:
    ts = now_us() - 10_000_000
    event_id = f"0190{i:028x}"
    event = EventRecord(
        event_id=event_id,
        user_id="archivist",
        event_type="old.event",
        payload=orjson.dumps({"i": i, "blob": blob}),
        status="received",
        ts_us=ts,
        expires_at=ts // 1_000_000,  # already expired
        metadata=b"{}",
        retry_count=0,
        last_retry_us=None,
        delivered_us=None,
        acknowledged_us=None,
    )
    audit = AuditRecord(f"a{i:031x}", "archivist", "event.created", ts, event_id, b"{}", "127.0.0.1", "test")
    return event, audit


def _archived_ids(directory: Path) -> list[str]:
    ids: list[str] = []
    for path in directory.glob("events-*.jsonl.gz"):
        with gzip.open(path, "rb") as archive:
            ids += [orjson.loads(line)["event_id"] for line in archive if line.strip()]
    return ids


async def test_archive_dir_filling_up_deletes_nothing_unarchived(tmp_path: Path, small_archive: Path) -> None:
    storage = SQLiteStorage(tmp_path / "retention.db")
    await storage.open()
    try:
        records = [_expired_event(i, os.urandom(1500).hex()) for i in range(300)]  # ~900 KB, ~450 KB gzipped
        for start in range(0, len(records), 100):
            chunk = records[start : start + 100]
            await storage.insert_events([e for e, _ in chunk], [a for _, a in chunk])
        all_ids = {e.event_id for e, _ in records}

        with pytest.raises(OSError):  # the archive directory (256 KiB) fills up mid-sweep
            await sweep(storage, small_archive, batch=50)
        remaining = {e.event_id for e in await storage.expired_events(now_us() // 1_000_000 + 10, 10_000)}
        archived = _archived_ids(small_archive)
        assert remaining, "the sweep finished: the archive never filled up"
        assert all_ids - remaining <= set(archived), "an event was deleted without being archived"
        assert not list(small_archive.glob("*.tmp")), "a partial archive file was left behind"

        # With room again (here: the archive directory moved to a roomy disk) the sweep finishes.
        roomy = tmp_path / "archive-roomy"
        assert await sweep(storage, roomy, batch=50) == len(remaining)
        assert not await storage.expired_events(now_us() // 1_000_000 + 10, 10)
        assert sorted(_archived_ids(small_archive) + _archived_ids(roomy)) == sorted(all_ids)
    finally:
        await storage.close()
