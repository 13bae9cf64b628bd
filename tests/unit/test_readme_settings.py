"""README's configuration tables and ``Settings`` name the same variables with the same defaults.

Every ``TRIGGERS_*`` setting is documented once in README.md (variable, default, meaning); a
setting added to config.py without its row, or a row left after its setting went, fails here
with the names to add or remove (issue 14, item 10).
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import AliasChoices, SecretStr

from triggers_api.config import Settings

README = Path(__file__).resolve().parents[2] / "README.md"
ROW = re.compile(r"^\|\s*`([A-Z][A-Z0-9_]+)`\s*\|([^|]*)\|(.*)\|\s*$")


def readme_rows() -> dict[str, tuple[str, str]]:
    """``TRIGGERS_X`` (or a standard variable a setting reads, ``OTEL_*``) -> (default, meaning),
    from every table row that starts with one."""
    rows: dict[str, tuple[str, str]] = {}
    aliases = set(settings_variables())
    for line in README.read_text(encoding="utf-8").splitlines():
        match = ROW.match(line)
        if match and (match.group(1).startswith("TRIGGERS_") or match.group(1) in aliases):
            name, default, meaning = match.groups()
            assert name not in rows, f"README documents {name} twice"
            rows[name] = (default.strip().strip("`"), meaning.strip())
    return rows


def settings_variables() -> dict[str, object]:
    """The environment variable of every setting: ``TRIGGERS_<NAME>``, or its alias when it reads a
    standard variable instead (``OTEL_EXPORTER_OTLP_ENDPOINT``)."""
    prefix = str(Settings.model_config.get("env_prefix", ""))
    variables: dict[str, object] = {}
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            alias = next((c for c in alias.choices if isinstance(c, str)), None)
        env = alias if isinstance(alias, str) else f"{prefix}{name}"
        variables[env.upper()] = field.default
    return variables


def test_readme_table_lists_every_setting_and_nothing_else() -> None:
    documented = readme_rows()
    variables = settings_variables()
    missing = sorted(set(variables) - set(documented))
    extra = sorted(set(documented) - set(variables))
    problems = []
    if missing:
        problems.append(
            "README.md's configuration table lacks "
            + ", ".join(missing)
            + " (add a row `| `NAME` | default | meaning |` for each, as config.py defines it)"
        )
    if extra:
        problems.append(
            "README.md documents " + ", ".join(extra) + ", which Settings (config.py) does not define"
        )
    assert not problems, "\n".join(problems)


def _same_default(cell: str, default: object) -> bool:
    if default is None or default == "" or isinstance(default, SecretStr):
        return bool(cell)  # "unset", "generated", "the package's build": described in words
    if isinstance(default, bool):
        return cell == str(default).lower()
    if isinstance(default, int | float):
        try:
            return float(cell) == float(default)
        except ValueError:
            return False
    if isinstance(default, Path):
        return Path(cell) == default
    return cell == str(default)


def test_readme_defaults_and_meanings_match_settings() -> None:
    documented = readme_rows()
    wrong = [
        f"{name}: README says {documented[name][0]!r}, config.py says {default!r}"
        for name, default in settings_variables().items()
        if name in documented and not _same_default(documented[name][0], default)
    ]
    unexplained = [name for name, (_, meaning) in documented.items() if not meaning]
    assert not wrong, "README.md's defaults differ from Settings:\n" + "\n".join(wrong)
    assert not unexplained, f"README.md gives no meaning for {unexplained}"
