"""Write the served OpenAPI document to a file: the input of the generated TypeScript types.

``python -m triggers_api.openapi_dump packages/shared-types/openapi.json`` (``make types``). The
document is built from ``create_app`` with fixed settings, never the caller's environment, so
the same code always gives the same bytes and the drift test (tests/unit/test_shared_types.py)
compares like with like.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from triggers_api.app import create_app
from triggers_api.config import Settings


def served_openapi() -> dict[str, Any]:
    """The document ``GET /v1/openapi.json`` serves (building the app opens nothing)."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            database_url=f"sqlite:///{Path(tmp) / 'openapi.db'}",
            archive_dir=Path(tmp) / "archive",
            bootstrap_key=False,
            dashboard_enabled=True,
        )
        return create_app(settings).openapi()


def render(spec: dict[str, Any]) -> str:
    return json.dumps(spec, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.stderr.write("usage: python -m triggers_api.openapi_dump OUTPUT.json\n")
        return 2
    Path(args[0]).write_text(render(served_openapi()), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
