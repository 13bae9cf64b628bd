"""``make lambda-package``: the deployment zip of the four Lambda functions.

One zip per architecture (``build/lambda/triggers-api-<arch>.zip``, ``x86_64`` and ``arm64``): the
``triggers_api`` package (its ``aws`` handlers included) at the root, and the runtime
dependencies (``[project.dependencies]`` plus the ``aws`` extra of pyproject.toml) as Linux
wheels for the Lambda runtime's Python, fetched by
``pip install --platform manylinux2014_<arch> --only-binary=:all: --python-version 3.12``: no
compiler, no Docker, and the wheels are the ones Lambda's Amazon Linux can load whatever machine
builds the zip. Every function uses the same zip with a different handler
(``triggers_api.aws.lambda_api.handler``, ``...lambda_authorizer.handler``, ...).

``--no-deps`` builds the package part only (what the test does: fast, offline).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from collections.abc import Sequence
from pathlib import Path

import triggers_api

ARCHITECTURES = {"x86_64": "manylinux2014_x86_64", "arm64": "manylinux2014_aarch64"}
LAMBDA_PYTHON = "3.12"
HANDLERS = (
    "triggers_api.aws.lambda_api",
    "triggers_api.aws.lambda_authorizer",
    "triggers_api.aws.lambda_worker",
    "triggers_api.aws.lambda_archiver",
)
_SKIP_PARTS = {"__pycache__"}
_SKIP_SUFFIXES = {".pyc", ".pyo"}


def runtime_requirements(pyproject: Path) -> list[str]:
    project = tomllib.loads(pyproject.read_text())["project"]
    requirements = list(project["dependencies"]) + list(project["optional-dependencies"].get("aws", []))
    return sorted(set(requirements))


def _add_tree(archive: zipfile.ZipFile, root: Path, under: str) -> int:
    count = 0
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if path.is_dir() or _SKIP_PARTS & set(relative.parts) or path.suffix in _SKIP_SUFFIXES:
            continue
        info = zipfile.ZipInfo(f"{under}{relative.as_posix()}", date_time=(1980, 1, 1, 0, 0, 0))
        info.external_attr = 0o644 << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(info, path.read_bytes())
        count += 1
    return count


def install_dependencies(requirements: Sequence[str], target: Path, arch: str) -> None:
    subprocess.run(
        [
            sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            "--target", str(target),
            "--platform", ARCHITECTURES[arch],
            "--implementation", "cp",
            "--python-version", LAMBDA_PYTHON,
            "--only-binary=:all:",
            "--upgrade",
            "--no-warn-conflicts",
            *requirements,
        ],
        check=True,
    )  # fmt: skip


def build(out_dir: Path, arch: str, *, with_deps: bool = True, pyproject: Path | None = None) -> Path:
    """Build ``out_dir/triggers-api-<arch>.zip``; returns its path."""
    package_dir = Path(triggers_api.__file__).parent
    pyproject = pyproject or package_dir.parents[1] / "pyproject.toml"
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"triggers-api-{arch}.zip"
    tmp = target.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w") as archive:
        if with_deps:
            with tempfile.TemporaryDirectory(prefix="lambda-deps-") as deps:
                install_dependencies(runtime_requirements(pyproject), Path(deps), arch)
                _add_tree(archive, Path(deps), "")
        _add_tree(archive, package_dir, "triggers_api/")
    tmp.replace(target)
    return target


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=Path("build/lambda"))
    parser.add_argument("--arch", choices=sorted(ARCHITECTURES), action="append")
    parser.add_argument("--no-deps", action="store_true", help="the package only (no pip)")
    args = parser.parse_args(argv)
    for arch in args.arch or sorted(ARCHITECTURES):
        path = build(args.out, arch, with_deps=not args.no_deps)
        print(f"{path} ({path.stat().st_size / 1e6:.1f} MB)")  # noqa: T201 - the command's output
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
