"""The console script against PostgreSQL: migrate (twice), keys create / list / revoke, and a
clean error (no traceback) when the database cannot be reached."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import orjson

from tests.conftest import free_port
from triggers_api.storage.postgres import MIGRATIONS

ALL_VERSIONS = list(range(1, len(MIGRATIONS) + 1))


def run(tmp_path: Path, url: str, schema: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TRIGGERS_DATABASE_URL": url, "TRIGGERS_DATABASE_SCHEMA": schema}
    return subprocess.run(
        [sys.executable, "-m", "triggers_api.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )


async def test_migrate_and_keys_on_postgres(tmp_path: Path, pg_url: str, pg_schema: str) -> None:
    for _ in range(2):
        migrated = run(tmp_path, pg_url, pg_schema, "migrate")
        assert migrated.returncode == 0 and "migrations applied" in migrated.stdout, migrated.stderr
    conn = await asyncpg.connect(pg_url, server_settings={"search_path": pg_schema})
    try:
        assert [
            r[0] for r in await conn.fetch("SELECT version FROM schema_migrations ORDER BY 1")
        ] == ALL_VERSIONS
    finally:
        await conn.close()

    created = run(tmp_path, pg_url, pg_schema, "keys", "create", "--user-id", "u1", "--name", "ci", "--json")
    assert created.returncode == 0, created.stderr
    key = orjson.loads(created.stdout)
    listed = run(tmp_path, pg_url, pg_schema, "keys", "list", "--user-id", "u1", "--json")
    assert [k["key_id"] for k in orjson.loads(listed.stdout)["keys"]] == [key["key_id"]]
    assert key["api_key"] not in listed.stdout
    assert run(tmp_path, pg_url, pg_schema, "keys", "revoke", key["key_id"]).returncode == 0
    listed = run(tmp_path, pg_url, pg_schema, "keys", "list", "--user-id", "u1", "--json")
    assert orjson.loads(listed.stdout)["keys"][0]["is_active"] is False
    missing = run(tmp_path, pg_url, pg_schema, "keys", "revoke", "00000000-0000-0000-0000-000000000000")
    assert missing.returncode == 1


def test_an_unreachable_database_is_a_clean_error(tmp_path: Path) -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/test"  # nothing listens there
    done = run(tmp_path, url, "t_unreachable", "migrate")
    assert done.returncode == 1
    assert "cannot connect to PostgreSQL" in done.stderr and "Traceback" not in done.stderr
