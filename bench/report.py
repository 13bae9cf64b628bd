"""The table: our figures, the ceilings measured in the same run, our figure as a ratio of each."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Union

from bench.load import LoadResult

if TYPE_CHECKING:
    from bench.run import Options, TargetResult

#: A measured figure, or the reason there is none.
Cell = Union[LoadResult, str]  # noqa: UP007 - a runtime alias, evaluated on 3.11

CEILINGS = ("nginx", "raw", "fastapi", "baseline")
HEADINGS = {
    "ours": "ours",
    "ours-traced": "ours, traced",
    "ours-alt": "ours, other N",
    "ours-pg": "ours (PG)",
    "ours-aws": "ours (AWS emulator)",
    "nginx": "nginx",
    "raw": "raw ASGI",
    "fastapi": "FastAPI",
    "baseline": "baseline",
}


@dataclass(frozen=True)
class Row:
    label: str
    cell: str  # which measurement
    value: Callable[[LoadResult], float]
    unit: str  # "rate" (higher is better) or "ms" (lower is better)
    target: str = ""
    passes: Callable[[float, dict[str, float]], bool] | None = None
    text: Callable[[LoadResult], str] | None = None
    #: A figure computed from several of one target's measurements (a ratio of two rows of the
    #: same run), instead of ``value`` of the ``cell`` measurement; None when one is missing.
    derive: Callable[[dict[str, Cell]], float | None] | None = None
    over: str = ""  # when set: the value as a ratio of the same target's value in this cell


def _ratio_of(
    top: str,
    bottom: str,
    top_value: Callable[[LoadResult], float],
    bottom_value: Callable[[LoadResult], float],
) -> Callable[[dict[str, Cell]], float | None]:
    def derive(cells: dict[str, Cell]) -> float | None:
        a, b = cells.get(top), cells.get(bottom)
        if not isinstance(a, LoadResult) or not isinstance(b, LoadResult) or a.errors:
            return None
        denominator = bottom_value(b)
        return top_value(a) / denominator if denominator > 0 else None

    return derive


def _paced_text(r: LoadResult) -> str:
    return f"{r.p95_ms:.1f} ({r.offered_rate:,.0f}/s)"


def _cpu(r: LoadResult) -> float:
    return r.cpu_us_per_request


def _rate(r: LoadResult) -> float:
    return r.rate


def _events(r: LoadResult) -> float:
    return r.rate * 100


def _page_events(r: LoadResult) -> float:
    return r.rate * 200


ROWS = (
    Row(
        "ingest 1 event: req/s (saturation)",
        "ingest",
        _rate,
        "rate",
        ">= 10,000; >= 2.5x baseline; >= 0.4x raw",
        lambda v, c: v >= 10_000 and v >= 2.5 * c.get("baseline", 0) and v >= 0.4 * c.get("raw", 0),
    ),
    Row(
        "  p50 / p95 / p99 ms (saturation)",
        "ingest",
        lambda r: r.p99_ms,
        "ms",
        "p99 <= 100 ms",
        lambda v, c: v <= 100,
        lambda r: f"{r.p50_ms:.1f}/{r.p95_ms:.1f}/{r.p99_ms:.1f}",
    ),
    Row("  server CPU us per request", "ingest", lambda r: r.cpu_us_per_request, "ms"),
    Row(
        "ingest 1 event: p95 ms at fixed rate",
        "paced",
        lambda r: r.p95_ms,
        "ms",
        "<= 25 ms at 1/2 saturation",
        lambda v, c: v <= 25,
        _paced_text,
    ),
    Row("ingest batch of 100: events/s", "batch", _events, "rate", ">= 150,000", lambda v, c: v >= 150_000),
    Row("  batch p95 ms", "batch", lambda r: r.p95_ms, "ms"),
    Row("  server CPU us per event", "batch", lambda r: r.cpu_us_per_request / 100, "ms"),
    Row("inbox page (limit 200): req/s", "inbox", _rate, "rate"),
    Row("  inbox p95 ms", "inbox", lambda r: r.p95_ms, "ms"),
    Row("  inbox events/s", "inbox", _page_events, "rate"),
    Row(
        "  inbox events/s / batch-ingest events/s",
        "inbox",
        _rate,
        "x",
        ">= 3x",
        lambda v, c: v >= 3,
        derive=_ratio_of("inbox", "batch", _page_events, _events),
    ),
    Row("acknowledge 1 event: req/s", "ack", _rate, "rate"),
    Row("  acknowledge p95 ms", "ack", lambda r: r.p95_ms, "ms"),
    Row("  server CPU us per acknowledgement", "ack", _cpu, "ms"),
    Row(
        "  ack req/s / ingest req/s",
        "ack",
        _rate,
        "x",
        ">= 1.0x",
        lambda v, c: v >= 1.0,
        derive=_ratio_of("ack", "ingest", _rate, _rate),
    ),
    Row(
        "  ack CPU / ingest CPU (per request)",
        "ack",
        _rate,
        "x",
        "<= 1.0x",
        lambda v, c: v <= 1.0,
        derive=_ratio_of("ack", "ingest", _cpu, _cpu),
    ),
    Row(
        "acknowledge 1 event: p95 ms at fixed rate",
        "ackpaced",
        lambda r: r.p95_ms,
        "ms",
        "<= 25 ms at 1/2 saturation",
        lambda v, c: v <= 25,
        _paced_text,
    ),
    Row("acknowledge batch of 100: events/s", "ackbatch", _events, "rate"),
    Row("  ack batch p95 ms", "ackbatch", lambda r: r.p95_ms, "ms"),
    Row("  server CPU us per acknowledged event", "ackbatch", lambda r: r.cpu_us_per_request / 100, "ms"),
    Row(
        "  ack events/s / batch-ingest events/s",
        "ackbatch",
        _rate,
        "x",
        ">= 1.0x",
        lambda v, c: v >= 1.0,
        derive=_ratio_of("ackbatch", "batch", _events, _events),
    ),
    Row("ingest with a schema (10 properties): req/s", "schema", _rate, "rate"),
    Row("  server CPU us per request", "schema", _cpu, "ms"),
    Row(
        "  CPU vs the same event, no schema",
        "schema",
        _cpu,
        "x",
        "<= 1.15x",
        lambda v, c: v <= 1.15,
        over="schema-base",
    ),
    Row(
        "  type without a schema: CPU vs no catalog",
        "schema-none",
        _cpu,
        "x",
        "<= 1.05x",
        lambda v, c: v <= 1.05,
        over="schema-base",
    ),
    Row(
        "delivery to a receiver: events/s",
        "delivery",
        _rate,
        "rate",
        ">= 5,000",
        lambda v, c: v >= 5_000,
    ),
    Row(
        "  delivery events/s / ingest req/s",
        "delivery",
        _rate,
        "x",
        ">= 1.5x (PG >= 1.0x)",
        lambda v, c: v >= 1.5 and c.get("ours-pg", 1.0) >= 1.0,
        derive=_ratio_of("delivery", "ingest", _rate, _rate),
    ),
    Row("fan-out to 3 subscriptions: events/s", "fanout", _rate, "rate"),
)


def other_process_count(workers: int) -> int:
    """The process count of the "ours, N procs" column: 2 when the run measures 1, else 1."""
    return 2 if workers == 1 else 1


def _fmt_value(value: float, unit: str) -> str:
    if unit == "rate":
        return f"{value:,.0f}"
    if unit == "x":
        return f"{value:.2f}x"
    return f"{value:.1f}"


def _ratio(ours: float, other: float) -> str:
    if other <= 0:
        return "-"
    ratio = ours / other
    return f"{ratio:.2f}x" if ratio < 10 else f"{ratio:.0f}x"


def render_table(results: dict[str, TargetResult], options: Options, machine: str, elapsed: float) -> str:
    present = [
        t for t in ("ours", "ours-traced", "ours-alt", "ours-pg", "ours-aws", *CEILINGS) if t in results
    ]
    ceilings = [t for t in CEILINGS if t in results]
    has_pg = "ours-pg" in results and not results["ours-pg"].note
    has_traced = "ours-traced" in results and not results["ours-traced"].note
    other = other_process_count(options.workers)
    headings = {**HEADINGS, "ours-alt": f"ours, {other} proc{'s' if other > 1 else ''}"}
    header = (
        ["metric"]
        + [headings[t] for t in present]
        + [f"ours/{headings[t]}" for t in ceilings]
        + (["PG/ours"] if has_pg else [])
        + (["traced/ours"] if has_traced else [])
        + ["target", "met"]
    )
    lines: list[list[str]] = []
    notes: list[str] = []
    for row in ROWS:
        values: dict[str, float] = {}
        line = [row.label]
        for target in present:
            result = results[target]
            cell = result.cells.get(row.cell)
            if row.derive is not None:
                derived = row.derive(result.cells) if isinstance(cell, LoadResult) else None
                if derived is None:
                    line.append("-")
                else:
                    values[target] = derived
                    line.append(_fmt_value(derived, row.unit))
                continue
            base = result.cells.get(row.over) if row.over else None
            if row.over and isinstance(cell, LoadResult) and not isinstance(base, LoadResult):
                cell = None
            if isinstance(cell, LoadResult):
                values[target] = row.value(cell)
                if isinstance(base, LoadResult):
                    values[target] = values[target] / row.value(base) if row.value(base) else 0.0
                text = row.text(cell) if row.text else _fmt_value(values[target], row.unit)
                if cell.errors:
                    text += "!"
                    note = f"{headings[target]} {row.cell}: {cell.errors:,} of {cell.requests:,} requests failed or went unanswered"
                    if note not in notes:
                        notes.append(note)
                line.append(text)
            elif isinstance(cell, str):
                line.append("n/a")
                note = f"{headings[target]} {row.cell}: {cell}"
                if note not in notes:
                    notes.append(note)
            else:
                line.append("-")
        ours = values.get("ours")
        for target in ceilings:
            comparable = row.derive is None and ours is not None and target in values
            line.append(_ratio(ours, values[target]) if comparable else "-")
        if has_pg:
            pg = values.get("ours-pg")
            line.append(_ratio(pg, ours) if pg is not None and ours is not None and not row.derive else "-")
        if has_traced:
            traced = values.get("ours-traced")
            line.append(
                _ratio(traced, ours) if traced is not None and ours is not None and not row.derive else "-"
            )
        line.append(row.target)
        if row.passes is None or ours is None:
            line.append("")
        else:
            line.append("yes" if row.passes(ours, values) else "NO")
        lines.append(line)
    rss = results["ours"].peak_rss if "ours" in results else 0
    rss_line = ["peak RSS of the service, MB"]
    for target in present:
        peak = results[target].peak_rss
        rss_line.append(f"{peak / 2**20:,.0f}" if peak else ("n/a" if target.startswith("ours") else "-"))
    rss_line += [""] * len(ceilings) + ([""] if has_pg else []) + ([""] if has_traced else [])
    rss_line += ["<= 200 MB", ("yes" if rss <= 200 * 2**20 else "NO") if rss else ""]
    lines.append(rss_line)

    widths = [max(len(r[i]) for r in [header, *lines]) for i in range(len(header))]

    def fmt(cells: list[str]) -> str:
        return " | ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    rule = "-+-".join("-" * w for w in widths)
    generator = "wrk -t1" if not options.smoke else "bench.paced (closed loop)"
    offered = (
        f"{options.rate:,.0f} req/s"
        if options.rate > 0
        else "half of the saturation rate the same target reached on that route in this run"
    )
    out = [
        f"Triggers API benchmarks: {machine}",
        f"{options.workers} uvicorn worker(s) per Python target, nginx {options.workers} worker(s); "
        f"saturation rows: {generator} -c{options.connections}, {options.duration:g} s after "
        f"{options.warmup:g} s warm-up; fixed-rate rows: bench.paced, open loop, offering "
        f"{offered}; "
        f"{f'best of {options.repeat} per row; ' if options.repeat > 1 else ''}whole run {elapsed:.0f} s",
        "",
        fmt(header),
        rule,
        *(fmt(line) for line in lines),
    ]
    skipped = [f"{headings[t]}: {results[t].note}" for t in present if results[t].note]
    if skipped or notes:
        out.append("")
    out += [f"* {s}" for s in skipped]
    out += [
        f"* {n}"
        for n in notes
        if not any(n.startswith(headings[t] + " ") for t in present if results[t].note)
    ]
    return "\n".join(out)
