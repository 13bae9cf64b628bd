"""deploy/systemd/: the units parse, run real subcommands, restart, outwait the delivery grace."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import typer

from triggers_api.cli import cli
from triggers_api.config import Settings

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "deploy" / "systemd"
HARDENING = ("NoNewPrivileges", "ProtectSystem", "ProtectHome", "PrivateTmp", "RestrictAddressFamilies")


def parse(path: Path) -> dict[str, dict[str, list[str]]]:
    """systemd's INI dialect: repeated keys accumulate."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def seconds(value: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(s|min)?", value)
    assert match, value
    return float(match.group(1)) * (60 if match.group(2) == "min" else 1)


def accepts(exec_start: str) -> Any:
    """The command line parses against the real CLI (without running it)."""
    argv = exec_start.split()
    assert argv[0].endswith("/triggers-api")
    group: Any = typer.main.get_command(cli)
    command = group.get_command(group.context_class(group), argv[1])
    assert command is not None, argv[1]
    context: Any = command.make_context(argv[1], argv[2:])
    return context


def test_api_and_worker_units_restart_outwait_the_grace_and_are_hardened() -> None:
    grace = Settings.model_fields["delivery_grace"].default
    for name, subcommand in (("triggers-api.service", "serve"), ("triggers-api-worker.service", "worker")):
        unit = parse(UNITS / name)
        service = unit["Service"]
        assert service["Restart"][0] in ("always", "on-failure"), name
        assert seconds(service["TimeoutStopSec"][0]) > grace, name
        assert service["KillSignal"] == ["SIGTERM"]
        for option in HARDENING:
            assert option in service, f"{name}: {option}"
        assert service["User"] == ["triggers"] and service["EnvironmentFile"] == ["/etc/triggers-api/env"]
        ctx = accepts(service["ExecStart"][0])
        assert ctx.info_name == subcommand
        assert unit["Install"]["WantedBy"] == ["multi-user.target"]
    api = accepts(parse(UNITS / "triggers-api.service")["Service"]["ExecStart"][0])
    assert api.params["no_worker"] is True  # the worker unit pushes
    backup = accepts(parse(UNITS / "triggers-api-backup.service")["Service"]["ExecStart"][0])
    assert backup.info_name == "backup"
    assert "OnCalendar" in parse(UNITS / "triggers-api-backup.timer")["Timer"]


def test_systemd_analyze_verifies_the_units(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    for unit in UNITS.iterdir():  # the executable path must exist for verify: point it at /bin/true
        (tmp_path / unit.name).write_text(
            unit.read_text().replace("/opt/triggers-api/bin/triggers-api", "/bin/true")
        )
    if analyze is None:  # parsed above already; verify is a bonus where systemd is installed
        return
    done = subprocess.run(
        [analyze, "verify", *sorted(str(p) for p in tmp_path.iterdir())],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
