"""The console script, as a user runs it."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.conftest import make_settings, new_key, start_server
from triggers_api.app import create_app

ROOT = Path(__file__).resolve().parents[2]

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


@pytest.mark.sqlite_only  # the command uses `make run`'s default SQLite file
async def test_the_login_pages_lost_key_command_works_as_written(tmp_path: Path) -> None:
    """The dashboard's hint (issue 14, item 7), run verbatim from a checkout's layout: the CLI in
    ``.venv/bin`` and the default database ``./data/triggers.db``; its key then signs in."""
    source = (ROOT / "dashboard" / "src" / "features" / "auth" / "lost-key.ts").read_text()
    match = re.search(r'LOST_KEY_COMMAND = "([^"]+)"', source)
    assert match, "LOST_KEY_COMMAND not found in lost-key.ts"
    command = match.group(1)
    checkout = tmp_path / "checkout"  # stands for the repository: the same relative paths
    (checkout / ".venv" / "bin").mkdir(parents=True)
    (checkout / ".venv" / "bin" / "triggers-api").symlink_to(EXE)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIGGERS_")}
    # A first `make run` created ./data with its database (and the bootstrap key).
    settings = make_settings(tmp_path, database_url=f"sqlite:///{checkout / 'data' / 'triggers.db'}")
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        await new_key(app, user_id="default")
    result = subprocess.run(
        shlex.split(command), cwd=checkout, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    key = re.search(r"\b(tk_[A-Za-z0-9_-]{43})\b", result.stdout)
    assert key, result.stdout
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            login = await client.post("/v1/auth/session", json={"api_key": key.group(1)})
            assert login.status_code == 200, login.text
            assert login.json()["user_id"] == "default"
