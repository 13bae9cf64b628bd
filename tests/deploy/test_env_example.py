""".env.example lists every setting with its default and meaning, and cannot drift from Settings."""

from __future__ import annotations

from pathlib import Path

from triggers_api.config import Settings
from triggers_api.envfile import env_name, render

ROOT = Path(__file__).resolve().parents[2]


def test_env_example_is_generated_from_settings() -> None:
    assert (ROOT / ".env.example").read_text() == render(), "run `make env-example`"


def test_every_setting_is_listed_and_its_shown_default_parses_to_the_default() -> None:
    lines = (ROOT / ".env.example").read_text().splitlines()
    shown = dict(
        line[1:].split("=", 1)
        for line in lines
        if line.startswith("#") and "=" in line and line[1:2].isupper()
    )
    assert set(shown) == {env_name(f) for f in Settings.model_fields}
    for field, info in Settings.model_fields.items():
        value = shown[env_name(field)]
        assert info.description, f"{field} has no description"
        if value:  # what the file shows, read back by Settings, is the default itself
            parsed = Settings.model_validate({env_name(field) if info.validation_alias else field: value})
            assert getattr(parsed, field) == info.default, field
        else:
            assert info.default in (None, ""), field
