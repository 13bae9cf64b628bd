"""deploy/prometheus/alerts.yml: valid, unit-tested with promtool, every alert with its runbook."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
MONITORING = ROOT / "docs" / "runbooks" / "monitoring.md"

#: Section 18.4 of the architecture document, translated (docs/runbooks/monitoring.md).
EXPECTED = {
    "TriggersHighErrorRate": "5m",
    "TriggersDeliveryFailureRate": "10m",
    "TriggersIngestLatencyHigh": "10m",
    "TriggersDeadLetters": None,
    "TriggersQueueBacklog": "5m",
    "TriggersCircuitOpen": "1m",
    "TriggersDown": "1m",
}


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus; `make test` installs it)")
    return found


def rules() -> list[dict[str, object]]:
    groups = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_promtool_checks_the_rules_and_their_unit_tests_pass() -> None:
    binary = promtool()
    check = subprocess.run(
        [binary, "check", "rules", "alerts.yml"], cwd=PROMETHEUS, capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr
    test = subprocess.run(
        [binary, "test", "rules", "alerts.test.yml"],
        cwd=PROMETHEUS,
        capture_output=True,
        text=True,
        check=False,
    )
    assert test.returncode == 0, test.stdout + test.stderr
    assert "SUCCESS" in test.stdout


def test_the_alarms_of_section_18_4_are_all_there_each_with_a_runbook_section() -> None:
    found = {str(rule["alert"]): rule for rule in rules()}
    assert set(found) == set(EXPECTED)
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in MONITORING.read_text().splitlines()
        if line.startswith("#")
    }
    for name, hold in EXPECTED.items():
        rule = found[name]
        assert rule.get("for") == hold, name
        url = rule["annotations"]["runbook_url"]  # type: ignore[index]
        path, _, anchor = url.partition("#")
        assert (ROOT / path).resolve() == MONITORING.resolve() and anchor in anchors, url


def test_every_alert_is_exercised_by_the_unit_tests() -> None:
    tests = yaml.safe_load((PROMETHEUS / "alerts.test.yml").read_text())["tests"]
    fired = {case["alertname"] for group in tests for case in group["alert_rule_test"] if case["exp_alerts"]}
    quiet = {
        case["alertname"] for group in tests for case in group["alert_rule_test"] if not case["exp_alerts"]
    }
    assert fired == set(EXPECTED) and quiet == set(EXPECTED)
