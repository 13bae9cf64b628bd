"""deploy/grafana/triggers-api.json: the panels of section 18.3, on metrics the service exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client.metrics_core import Metric

from triggers_api.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "triggers-api.json"
PROMQL_WORDS = {
    "sum", "rate", "increase", "max", "min", "avg", "by", "without", "histogram_quantile", "le",
    "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "offset", "bool",
}  # fmt: skip


def exported_series() -> set[str]:
    """Every series name the service's registry exports (as Prometheus sees it), plus ``up``."""
    names = {"up"}
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_count", "_sum", "_created"),
        "gauge": ("",),
    }
    for family in Metrics().registry.collect():
        assert isinstance(family, Metric)
        names.update(family.name + suffix for suffix in suffixes[family.type])
    return names


def metric_names(expr: str) -> set[str]:
    without_labels = re.sub(r"\{[^}]*\}", "", expr)
    without_labels = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", without_labels)
    without_ranges = re.sub(r"\[[^\]]*\]", "", without_labels)
    words = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", without_ranges))
    return {w for w in words if w not in PROMQL_WORDS}


def test_every_panel_queries_only_metrics_the_service_exports() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exported = exported_series()
    queries = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert len(queries) >= 15
    used: set[str] = set()
    for expr in queries:
        names = metric_names(expr)
        assert names, expr
        assert names <= exported, f"{expr}: {sorted(names - exported)} not exported"
        used |= names
    # the key series of every area are on the dashboard
    for series in (
        "triggers_http_request_duration_seconds_count",
        "triggers_events_ingested_total",
        "triggers_deliveries_total",
        "triggers_ingest_commit_seconds_bucket",
        "triggers_delivery_attempt_duration_seconds_bucket",
        "triggers_circuit_state",
        "triggers_delivery_queue_depth",
        "triggers_dead_letter_depth",
    ):
        assert series in used, series


def test_the_rows_are_the_areas_of_section_18_3() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    rows = [p["title"] for p in dashboard["panels"] if p["type"] == "row"]
    assert rows == ["API health", "Event processing", "Database", "Workers", "Queue"]
    assert dashboard["uid"] == "triggers-api"
    assert {v["name"] for v in dashboard["templating"]["list"]} == {"datasource", "job"}
