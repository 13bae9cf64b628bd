"""The console script, as a user runs it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.conftest import start_server

EXE = shutil.which("triggers-api") or str(Path(os.sys.executable).parent / "triggers-api")  # type: ignore[attr-defined]


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TRIGGERS_DATABASE_URL": f"sqlite:///{tmp_path / 'live.db'}"}
    return subprocess.run([EXE, *args], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)


def test_migrate_is_idempotent(tmp_path: Path) -> None:
    assert run(tmp_path, "migrate").returncode == 0
    assert run(tmp_path, "migrate").returncode == 0
    assert (tmp_path / "live.db").exists()


@pytest.mark.sqlite_only  # its CLI runs use the SQLite file (tests/postgres covers the CLI there)
def test_keys_create_json_list_and_revoke(tmp_path: Path) -> None:
    created = run(
        tmp_path,
        "keys",
        "create",
        "--user-id",
        "u1",
        "--name",
        "ci",
        "--scope",
        "events:read",
        "--scope",
        "keys:manage",
        "--rate-limit",
        "77",
        "--expires-at",
        "2099-01-01T00:00:00Z",
        "--json",
    )
    assert created.returncode == 0, created.stderr
    lines = created.stdout.strip().splitlines()
    assert len(lines) == 1
    key = json.loads(lines[0])
    assert set(key) == {"key_id", "api_key", "user_id", "scopes", "rate_limit", "expires_at"}
    assert key["api_key"].startswith("tk_") and key["user_id"] == "u1"
    assert key["scopes"] == ["events:read", "keys:manage"] and key["rate_limit"] == 77
    assert key["expires_at"].startswith("2099-01-01T00:00:00")

    default = json.loads(run(tmp_path, "keys", "create", "--user-id", "u1", "--name", "d", "--json").stdout)
    assert default["scopes"] == ["events:write", "events:read"] and default["rate_limit"] == 1000

    listed = run(tmp_path, "keys", "list", "--user-id", "u1")
    assert listed.returncode == 0 and key["key_id"] in listed.stdout and key["api_key"] not in listed.stdout

    server = start_server(tmp_path)
    try:
        headers = {"X-API-Key": key["api_key"]}
        assert httpx.get(f"{server.url}/v1/keys", headers=headers).status_code == 200
        assert run(tmp_path, "keys", "revoke", key["key_id"]).returncode == 0
        import time

        time.sleep(1.1)  # another process: the key cache may hold it for at most a second
        assert httpx.get(f"{server.url}/v1/keys", headers=headers).status_code == 401
    finally:
        server.stop()
    assert run(tmp_path, "keys", "revoke", "00000000-0000-0000-0000-000000000000").returncode == 1


def test_bad_cli_input_fails_cleanly(tmp_path: Path) -> None:
    bad_scope = run(tmp_path, "keys", "create", "--user-id", "u", "--name", "n", "--scope", "root")
    assert bad_scope.returncode != 0 and "Traceback" not in bad_scope.stderr
    bad_date = run(tmp_path, "keys", "create", "--user-id", "u", "--name", "n", "--expires-at", "soon")
    assert bad_date.returncode != 0 and "Traceback" not in bad_date.stderr
