"""``pip install .`` gets the dashboard: the hatch build hook (hatch_build.py) in real wheel builds.

Each build runs hatchling (the project's build backend, a dev dependency) on a copy of the
project in a temporary directory, so the repository is never touched (issue 14, item 13):

* with an up-to-date dashboard build (``make test`` builds it first, as ``make dashboard`` does)
  the hook ships that build without running npm: the common case, and a fast one;
* without npm and without a build, the wheel builds, warns, and carries the API alone;
* with npm and no build, the hook runs ``npm run build`` itself (``node_modules`` is linked from
  the repository's ``dashboard/`` so the test does not download packages: ``npm ci`` is the one
  step left out, the Makefile's ``dashboard`` target runs it on every ``make test``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILT = ROOT / "src" / "triggers_api" / "dashboard" / "static"
INDEX = "triggers_api/dashboard/static/index.html"
LEFT_OUT = ("node_modules", "__pycache__", "*.pyc", "*.egg-info")
SKIP = shutil.ignore_patterns(*LEFT_OUT)


def _project_copy(tmp_path: Path, *, with_build: bool) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    for name in ("pyproject.toml", "hatch_build.py", "README.md", "LICENSE", ".gitignore"):
        shutil.copy2(ROOT / name, project / name)
    shutil.copytree(ROOT / "dashboard", project / "dashboard", ignore=SKIP)
    shared = ROOT / "packages" / "shared-types"  # the dashboard imports the API's generated types
    if shared.exists():
        shutil.copytree(shared, project / "packages" / "shared-types", ignore=SKIP)
    ignore = SKIP if with_build else shutil.ignore_patterns("static", *LEFT_OUT)
    shutil.copytree(ROOT / "src", project / "src", ignore=ignore)  # copy2 keeps mtimes: still current
    return project


def _build_wheel(project: Path, path: str) -> tuple[zipfile.ZipFile, str]:
    out = project / "dist"
    script = "import sys; from hatchling.build import build_wheel; print(build_wheel(sys.argv[1]))"
    result = subprocess.run(
        [sys.executable, "-c", script, str(out)],
        cwd=project,
        env={**os.environ, "PATH": path},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, log
    return zipfile.ZipFile(out / result.stdout.strip().splitlines()[-1]), log


def _require_build() -> None:
    if not (BUILT / "index.html").exists():
        pytest.skip("the dashboard is not built: run `make dashboard` (make test does)")


def test_a_current_dashboard_build_is_shipped_without_running_npm(tmp_path: Path) -> None:
    _require_build()
    project = _project_copy(tmp_path, with_build=True)
    # No npm on PATH: the build is reused, not rebuilt (a rebuild would have to warn instead).
    wheel, log = _build_wheel(project, path=str(Path(sys.executable).parent))
    assert "shipping that build" in log, log
    assert "npm not found" not in log, log
    names = set(wheel.namelist())
    assert wheel.read(INDEX) == (BUILT / "index.html").read_bytes()
    assets = {p.relative_to(BUILT.parent.parent.parent).as_posix() for p in (BUILT / "assets").iterdir()}
    assert assets <= names, sorted(assets - names)[:5]
    assert "triggers_api/app.py" in names and "triggers_api/cli.py" in names


def test_without_npm_the_wheel_warns_and_carries_the_api_alone(tmp_path: Path) -> None:
    project = _project_copy(tmp_path, with_build=False)
    wheel, log = _build_wheel(project, path=str(Path(sys.executable).parent))
    assert "npm not found" in log and "serves the API alone" in log, log
    names = set(wheel.namelist())
    assert "triggers_api/app.py" in names
    assert not any(name.startswith("triggers_api/dashboard/static/") for name in names)


def test_with_npm_the_hook_builds_the_dashboard_into_the_wheel(tmp_path: Path) -> None:
    npm = shutil.which("npm")
    modules = ROOT / "dashboard" / "node_modules" / ".package-lock.json"
    if npm is None or not modules.exists():
        pytest.skip("npm, or dashboard/node_modules, is missing: run `make dashboard` (make test does)")
    project = _project_copy(tmp_path, with_build=False)
    (project / "dashboard" / "node_modules").symlink_to(ROOT / "dashboard" / "node_modules")
    wheel, log = _build_wheel(project, path=os.environ["PATH"])
    assert "npm run build" in log, log
    names = set(wheel.namelist())
    assert INDEX in names
    assert b'<div id="root">' in wheel.read(INDEX)
    assert any(n.startswith("triggers_api/dashboard/static/assets/") and n.endswith(".js") for n in names)
