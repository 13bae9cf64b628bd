"""Hatch build hook: the wheel ships the dashboard, built from ``dashboard/`` when Node.js is here.

``pip install .`` (or ``python -m build``) from a clean clone would otherwise package the API
without the dashboard, whose build output is git-ignored. Before the wheel is assembled this hook
runs ``npm ci`` (when ``node_modules`` is missing) and ``npm run build`` in ``dashboard/`` unless
the build output is already newer than every dashboard source (the Makefile's rule, so a wheel
made after ``make dashboard`` reuses that build). Without npm it warns and the wheel serves the
API alone; a failing npm build fails the wheel build. Editable installs (``make venv``) and the
sdist are left alone: the Makefile builds the dashboard for the former, the latter ships sources.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

#: The inputs of ``npm run build`` (the same list as the Makefile's DASHBOARD_SRC).
SOURCES = ("src", "public", "scripts", "index.html", "vite.config.ts", "tsconfig.json", "package.json")
BUILT = Path("src/triggers_api/dashboard/static/index.html")


#: Outside dashboard/, the build also reads the API's generated TypeScript types.
SHARED_TYPES = Path("packages/shared-types")


def newest_source(dashboard: Path) -> float:
    stamps = [0.0]
    inputs = [dashboard / name for name in (*SOURCES, "package-lock.json")]
    for path in [*inputs, dashboard.parent / SHARED_TYPES]:
        files = (
            [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path] if path.exists() else []
        )
        stamps += [p.stat().st_mtime for p in files]
    return max(stamps)


class DashboardBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "dashboard"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or version == "editable":
            return
        root = Path(self.root)
        dashboard = root / "dashboard"
        built = root / BUILT
        if not (dashboard / "package.json").exists():
            if not built.exists():
                self.app.display_warning("dashboard: no sources and no build: the wheel serves the API alone")
            return
        if built.exists() and built.stat().st_mtime >= newest_source(dashboard):
            self.app.display_info(f"dashboard: {BUILT.parent} is newer than dashboard/: shipping that build")
            return
        npm = shutil.which(os.environ.get("NPM", "npm"))
        if npm is None:
            state = "an outdated build" if built.exists() else "no dashboard: it serves the API alone"
            self.app.display_warning(
                f"dashboard: npm not found, so the wheel ships {state}. Install Node.js 20+ (with npm) "
                "and build again to include it, or serve a build with TRIGGERS_DASHBOARD_DIR."
            )
            return
        if not (dashboard / "node_modules" / ".package-lock.json").exists():
            self.app.display_info("dashboard: npm ci")
            subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=dashboard, check=True)
        self.app.display_info("dashboard: npm run build")
        subprocess.run([npm, "run", "build"], cwd=dashboard, check=True)
        if not built.exists():
            raise RuntimeError(f"npm run build finished without writing {BUILT}")
