"""``make test`` finds the conventional local PostgreSQL/Redis by itself, and says so when it cannot
(issue 14, item 12)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import free_port
from tests.postgres.schemas import (
    LOCAL_POSTGRES_URL,
    LOCAL_REDIS_URL,
    POSTGRES_URL_ENV,
    REDIS_URL_ENV,
    postgres_answers,
    redis_answers,
)

ROOT = Path(__file__).resolve().parents[2]


def _env(**overrides: str | None) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in (POSTGRES_URL_ENV, REDIS_URL_ENV, "TRIGGERS_TEST_STRICT")
    }
    env.update({k: v for k, v in overrides.items() if v is not None})
    return env


def test_a_closed_port_does_not_answer() -> None:
    port = free_port()
    assert not postgres_answers(f"postgresql://postgres@127.0.0.1:{port}/test", timeout=1)
    assert not redis_answers("127.0.0.1", port, timeout=1)


def test_unset_variables_fall_back_to_the_local_servers_that_answer() -> None:
    script = (
        "from tests.postgres.schemas import _postgres_url, _redis_url\n"
        "print(_postgres_url()); print(_redis_url())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=_env(), capture_output=True, text=True, check=True
    ).stdout.split()
    expected_pg = LOCAL_POSTGRES_URL if postgres_answers(LOCAL_POSTGRES_URL) else "None"
    expected_redis = LOCAL_REDIS_URL if redis_answers("127.0.0.1", 6379) else "None"
    assert out == [expected_pg, expected_redis]


def test_without_servers_the_run_ends_with_one_line_counting_the_skips() -> None:
    # Empty values: "no server on purpose", the same as nothing answering at the local addresses.
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/postgres/test_redis_rate_limits.py",
        ],
        cwd=ROOT,
        env=_env(**{POSTGRES_URL_ENV: "", REDIS_URL_ENV: ""}),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    last = result.stdout.strip().splitlines()[-1]
    match = re.fullmatch(r"(\d+) tests? skipped: no PostgreSQL/Redis to test against\. To run them, .*", last)
    assert match, result.stdout
    reported = re.search(r"(\d+) skipped", result.stdout)
    assert reported and int(match.group(1)) == int(reported.group(1)) >= 1
