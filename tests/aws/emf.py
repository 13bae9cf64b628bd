"""The CloudWatch EMF documents Powertools' Metrics prints (one JSON line per flush), read back as
CloudWatch would: each metric of each directive under each of its dimension sets; and the
metrics ``infrastructure/terraform/modules/monitoring`` reads from the functions' namespace."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from tests.aws.test_terraform import MODULES, _directory, _resources


@dataclass(frozen=True)
class Emitted:
    namespace: str
    name: str
    dimensions: tuple[tuple[str, str], ...]  # sorted (name, value) pairs
    values: tuple[float, ...]

    @property
    def dimension_names(self) -> frozenset[str]:
        return frozenset(name for name, _ in self.dimensions)

    def dimension(self, name: str) -> str:
        return dict(self.dimensions)[name]


def documents(out: str) -> list[dict[str, Any]]:
    """The EMF documents among captured stdout lines (Powertools' JSON logs go there too)."""
    docs = []
    for line in out.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            doc = json.loads(line)
            if isinstance(doc.get("_aws"), dict):
                docs.append(doc)
    return docs


def emitted(out: str) -> list[Emitted]:
    found = []
    for doc in documents(out):
        for directive in doc["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                raw = doc[metric["Name"]]
                values = tuple(raw) if isinstance(raw, list) else (raw,)
                for names in directive["Dimensions"]:
                    dims = tuple(sorted((name, str(doc[name])) for name in names))
                    found.append(Emitted(directive["Namespace"], metric["Name"], dims, values))
    return found


def total(found: list[Emitted], name: str, **dimensions: str) -> float:
    """The Sum CloudWatch would show for ``name`` under exactly these dimensions."""
    wanted = tuple(sorted(dimensions.items()))
    return sum(sum(e.values) for e in found if e.name == name and e.dimensions == wanted)


# -- the Terraform's side ------------------------------------------------------------------------
NAMESPACE_VAR = "${var.metrics_namespace}"
#: a dimension whose value the Terraform computes (a function name): any value matches
COMPUTED = "*"


def _monitoring_locals() -> dict[str, Any]:
    return {k: v for block in _directory(MODULES / "monitoring")["locals"] for k, v in block.items()}


def _dimensions(expression: Any) -> dict[str, str]:
    """``local.x``, a literal map, or ``merge(local.x, { k = <expr> })`` -> {name: value}."""
    local_values = _monitoring_locals()
    if isinstance(expression, dict):
        return {k: v if not str(v).startswith("${") else COMPUTED for k, v in expression.items()}
    text = str(expression).strip()
    if match := re.fullmatch(r"\$\{local\.(\w+)\}", text):
        return dict(local_values[match.group(1)])
    if match := re.fullmatch(r"\$\{merge\(local\.(\w+),\s*\{(.*)\}\)\}", text, re.S):
        out = dict(local_values[match.group(1)])
        for key, _ in re.findall(r"(\w+)\s*=\s*([^,}]+)", match.group(2)):
            out[key] = COMPUTED
        return out
    raise AssertionError(f"teach tests/aws/emf.py this dimensions expression: {expression!r}")


def terraform_metrics() -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    """(metric name, sorted dimensions) of every metric in the functions' namespace that an alarm
    or a dashboard widget of modules/monitoring reads."""
    wanted: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    for alarm in _resources(MODULES / "monitoring", "aws_cloudwatch_metric_alarm").values():
        metrics = [q["metric"][0] for q in alarm.get("metric_query", []) if "metric" in q]
        if "metric_name" in alarm:
            metrics.append(alarm)
        for metric in metrics:
            if metric.get("namespace") == NAMESPACE_VAR:
                dims = _dimensions(metric.get("dimensions", {}))
                wanted.add((metric["metric_name"], tuple(sorted(dims.items()))))
    widgets = _monitoring_locals()["widgets"]
    for widget in widgets:
        for line in widget["metrics"] if isinstance(widget["metrics"], list) else []:
            if isinstance(line, list) and line and line[0] == NAMESPACE_VAR:
                fields = [f for f in line[2:] if not isinstance(f, dict)]
                dims = dict(zip(fields[::2], fields[1::2], strict=True))
                wanted.add((line[1], tuple(sorted(dims.items()))))
    return wanted


def matches(found: list[Emitted], name: str, dimensions: tuple[tuple[str, str], ...]) -> bool:
    """Whether the code emitted ``name`` under exactly these dimension names and values."""
    for e in found:
        if e.name != name or e.dimension_names != {k for k, _ in dimensions}:
            continue
        if all(v == COMPUTED or e.dimension(k) == v for k, v in dimensions):
            return True
    return False
