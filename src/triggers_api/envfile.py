"""``.env.example``, generated from :class:`~triggers_api.config.Settings` (``make env-example``).

Every setting with its default and meaning, commented out, so the file documents the defaults
without overriding them; tests/deploy/test_env_example.py fails when the file and ``Settings``
drift apart. ``python -m triggers_api.envfile`` prints it.
"""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path

from pydantic import AliasChoices

from triggers_api.config import Settings

HEADER = """\
# Triggers API settings: every variable, its default and its meaning.
# Generated from triggers_api.config.Settings by `make env-example`; do not edit by hand
# (tests/deploy/test_env_example.py fails when this file and Settings drift apart).
# Copy it (e.g. to /etc/triggers-api/env for deploy/systemd/), uncomment and change what you need;
# a commented variable takes the default shown. Unset values are shown empty.
"""


def env_name(field: str) -> str:
    """The environment variable a field reads: ``TRIGGERS_<NAME>``, or its standard alias."""
    info = Settings.model_fields[field]
    alias = info.validation_alias
    if isinstance(alias, AliasChoices):
        first = alias.choices[0]
        return str(first)
    if isinstance(alias, str):
        return alias
    return f"TRIGGERS_{field.upper()}"


def default_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, Path):
        return str(value) if value.is_absolute() else f"./{value}"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def render() -> str:
    out = [HEADER]
    for field, info in Settings.model_fields.items():
        out.append(f"\n# {info.description or field}\n#{env_name(field)}={default_text(info.default)}\n")
    return "".join(out)


if __name__ == "__main__":
    sys.stdout.write(render())
