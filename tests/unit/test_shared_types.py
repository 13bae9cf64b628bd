"""The committed TypeScript types (packages/shared-types/) match the app's current OpenAPI.

Regenerates both files from ``create_app(...).openapi()`` with the pinned openapi-typescript and
compares: an API change without ``make types`` fails here, so the contract cannot drift silently.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from triggers_api.openapi_dump import render, served_openapi

ROOT = Path(__file__).resolve().parents[2]
TYPES = ROOT / "packages" / "shared-types"
GENERATOR = TYPES / "node_modules" / ".bin" / "openapi-typescript"
HINT = "packages/shared-types is out of date with the API: run `make types` and commit the result"


def test_committed_openapi_document_is_current() -> None:
    assert (TYPES / "openapi.json").read_text(encoding="utf-8") == render(served_openapi()), HINT


def test_committed_typescript_types_are_current(tmp_path: Path) -> None:
    if not GENERATOR.exists():
        pytest.skip("openapi-typescript is not installed: run `make types` (npm ci in packages/shared-types)")
    spec = tmp_path / "openapi.json"
    spec.write_text(render(served_openapi()), encoding="utf-8")
    output = tmp_path / "api.d.ts"
    subprocess.run(
        [str(GENERATOR), str(spec), "--output", str(output)], check=True, capture_output=True, timeout=120
    )
    assert output.read_text(encoding="utf-8") == (TYPES / "api.d.ts").read_text(encoding="utf-8"), HINT
