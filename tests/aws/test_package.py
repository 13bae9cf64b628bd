"""``make lambda-package`` (aws/package.py): the zip holds the handlers and they import from it.

The full build downloads Linux wheels (about 30 s per architecture): ``make lambda-package`` runs
it. Here the package part is built (``--no-deps``, offline, well under a second) and imported in a
fresh interpreter with the zip first on ``sys.path``, the dependencies coming from this venv.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from triggers_api.aws.package import HANDLERS, main, runtime_requirements


def test_the_zip_holds_the_handlers_and_they_import_from_it(tmp_path: Path) -> None:
    assert main(["--out", str(tmp_path), "--arch", "arm64", "--no-deps"]) == 0
    path = tmp_path / "triggers-api-arm64.zip"
    names = set(zipfile.ZipFile(path).namelist())
    for module in HANDLERS:
        assert module.replace(".", "/") + ".py" in names
    assert "triggers_api/aws/__init__.py" in names and "triggers_api/app.py" in names
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    script = (
        "import importlib, sys\n"
        f"sys.path.insert(0, {str(path)!r})\n"
        f"for name in {list(HANDLERS)!r}:\n"
        "    module = importlib.import_module(name)\n"
        "    assert callable(module.handler), name\n"
        f"    assert module.__file__.startswith({str(path)!r}), module.__file__\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_the_runtime_dependencies_include_the_lambda_adapters() -> None:
    requirements = runtime_requirements(Path(__file__).parents[2] / "pyproject.toml")
    names = {r.split(">")[0].split("=")[0].split("[")[0] for r in requirements}
    assert {"mangum", "aws-lambda-powertools", "boto3", "fastapi", "limits"} <= names
    # Tracer imports aws_xray_sdk at construction, enabled or not: the zip must carry it
    assert any(r.startswith("aws-lambda-powertools[tracer]") for r in requirements)
    assert "moto" not in names and "pytest" not in names  # dev-only stays out of the zip
