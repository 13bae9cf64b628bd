""".github/workflows/ci.yaml: parsed, and checked against what it must do (section 13.2)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def workflow() -> dict[Any, Any]:
    data: dict[Any, Any] = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yaml").read_text())
    return data


def test_ci_runs_dot_ci_run_on_pushes_and_pull_requests_with_postgres_and_redis() -> None:
    data = workflow()
    triggers = data.get("on", data.get(True))  # YAML 1.1 reads a bare `on` as true
    assert "push" in triggers and "pull_request" in triggers
    (job,) = data["jobs"].values()
    services = job["services"]
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["postgres"]["env"]["POSTGRES_DB"] == "test"
    assert services["redis"]["image"].startswith("redis:")
    env = job["env"]
    assert env["TRIGGERS_TEST_STRICT"] == "1"  # no test may skip
    assert env["TRIGGERS_TEST_POSTGRES_URL"].startswith("postgresql://postgres@postgres:5432/test")
    assert env["TRIGGERS_TEST_REDIS_URL"].startswith("redis://redis:6379")
    runs = [step.get("run", "") for step in job["steps"]]
    uses = [step.get("uses", "") for step in job["steps"]]
    assert any(u.startswith("actions/checkout@") for u in uses)
    node = next(step for step in job["steps"] if step.get("uses", "").startswith("actions/setup-node@"))
    assert int(node["with"]["node-version"]) >= 20
    assert runs[-1].strip() == "bash .ci/run"  # the same command as a local CI run
    packages = " ".join(runs)
    for package in ("chromium", "nginx-light", "prometheus", "python3-venv", "make"):
        assert package in packages, package
    assert job["container"].startswith("debian:bookworm")  # Python 3.11, the Debian packages above
    assert (ROOT / ".ci" / "run").exists()
