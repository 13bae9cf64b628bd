"""``triggers-api backup PATH`` under write load, restored into a fresh service.

Writers keep posting while the backup runs in another process; every event answered 201 before
the backup began must be in the copy, readable through a service started on the restored file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import start_server

pytestmark = pytest.mark.sqlite_only


def test_backup_under_write_load_restores_every_acknowledged_event(tmp_path: Path) -> None:
    live = tmp_path / "live"
    live.mkdir()
    server = start_server(live, extra_env={"TRIGGERS_DATABASE_URL": f"sqlite:///{live / 'live.db'}"})
    answered: list[tuple[float, str]] = []  # (when the 201 arrived, event id)
    failures: list[str] = []
    stop = threading.Event()

    def wait_answered(count: int) -> None:
        deadline = time.monotonic() + 60
        while len(answered) < count and not failures and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(answered) >= count, failures[:1]

    def write() -> None:
        with httpx.Client(base_url=server.url, headers={"X-API-Key": server.api_key}, timeout=30) as c:
            n = 0
            while not stop.is_set():
                n += 1
                r = c.post("/v1/events", json={"event_type": "load.tick", "payload": {"n": n}})
                if r.status_code != 201:
                    failures.append(r.text)
                    return
                answered.append((time.monotonic(), r.json()["event_id"]))

    writers = [threading.Thread(target=write) for _ in range(4)]
    try:
        for w in writers:
            w.start()
        wait_answered(100)  # the load is under way
        target = tmp_path / "backups" / "copy.db"
        began = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "triggers_api.cli", "backup", str(target)],
            env=server.env,
            cwd=live,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        ended = len(answered)
        wait_answered(ended + 20)  # writes went on during and after the backup
    finally:
        stop.set()
        for w in writers:
            w.join()
        server.stop()
    assert done.returncode == 0, done.stderr
    assert "backed up" in done.stdout and target.exists()
    assert not list(target.parent.glob("*.partial")) and not Path(f"{target}-wal").exists()
    before = [event_id for at, event_id in answered if at < began]
    assert len(before) >= 100 and not failures

    restored_dir = tmp_path / "restored"
    restored_dir.mkdir()
    shutil.copyfile(target, restored_dir / "triggers.db")  # docs/deploy.md: copy it into place
    restored = start_server(
        restored_dir,
        extra_env={
            "TRIGGERS_DATABASE_URL": f"sqlite:///{restored_dir / 'triggers.db'}",
            "TRIGGERS_BOOTSTRAP_KEY": "false",
        },
    )
    try:
        with httpx.Client(base_url=restored.url, headers={"X-API-Key": server.api_key}, timeout=30) as c:
            missing = [i for i in before if c.get(f"/v1/events/{i}").status_code != 200]
            sample = c.get(f"/v1/events/{before[0]}").json()
    finally:
        restored.stop()
    assert missing == []
    assert sample["event_type"] == "load.tick" and sample["payload"]["n"] >= 1


def test_backup_refuses_postgres_and_a_missing_database(tmp_path: Path) -> None:
    env = {**os.environ, "TRIGGERS_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/none"}
    pg = subprocess.run(
        [sys.executable, "-m", "triggers_api.cli", "backup", str(tmp_path / "x.db")],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert pg.returncode == 2 and "pg_dump" in pg.stderr
    env["TRIGGERS_DATABASE_URL"] = f"sqlite:///{tmp_path / 'absent.db'}"
    absent = subprocess.run(
        [sys.executable, "-m", "triggers_api.cli", "backup", str(tmp_path / "x.db")],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert absent.returncode == 1 and "no database" in absent.stderr
