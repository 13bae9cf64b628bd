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


def _rate(r: LoadResult) -> float:
    return r.rate


def _events(r: LoadResult) -> float:
    return r.rate * 100


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
        "<= 25 ms",
        lambda v, c: v <= 25,
        lambda r: f"{r.p95_ms:.1f} ({r.rate:,.0f}/s)",
    ),
    Row("ingest batch of 100: events/s", "batch", _events, "rate", ">= 150,000", lambda v, c: v >= 150_000),
    Row("  batch p95 ms", "batch", lambda r: r.p95_ms, "ms"),
    Row("  server CPU us per event", "batch", lambda r: r.cpu_us_per_request / 100, "ms"),
    Row("inbox page (limit 200): req/s", "inbox", _rate, "rate"),
    Row("  inbox p95 ms", "inbox", lambda r: r.p95_ms, "ms"),
    Row("acknowledge 1 event: req/s", "ack", _rate, "rate"),
    Row("  acknowledge p95 ms", "ack", lambda r: r.p95_ms, "ms"),
    Row(
        "delivery to a receiver: events/s",
        "delivery",
        _rate,
        "rate",
        ">= 5,000",
        lambda v, c: v >= 5_000,
    ),
    Row("fan-out to 3 subscriptions: events/s", "fanout", _rate, "rate"),
)


def other_process_count(workers: int) -> int:
    """The process count of the "ours, N procs" column: 2 when the run measures 1, else 1."""
    return 2 if workers == 1 else 1


def _fmt_value(value: float, unit: str) -> str:
    if unit == "rate":
        return f"{value:,.0f}"
    return f"{value:.1f}"


def _ratio(ours: float, other: float) -> str:
    if other <= 0:
        return "-"
    ratio = ours / other
    return f"{ratio:.2f}x" if ratio < 10 else f"{ratio:.0f}x"


def render_table(results: dict[str, TargetResult], options: Options, machine: str, elapsed: float) -> str:
    present = [t for t in ("ours", "ours-traced", "ours-alt", "ours-pg", *CEILINGS) if t in results]
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
            if isinstance(cell, LoadResult):
                values[target] = row.value(cell)
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
            line.append(_ratio(ours, values[target]) if ours is not None and target in values else "-")
        if has_pg:
            pg = values.get("ours-pg")
            line.append(_ratio(pg, ours) if pg is not None and ours is not None else "-")
        if has_traced:
            traced = values.get("ours-traced")
            line.append(_ratio(traced, ours) if traced is not None and ours is not None else "-")
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
    out = [
        f"Triggers API benchmarks: {machine}",
        f"{options.workers} uvicorn worker(s) per Python target, nginx {options.workers} worker(s); "
        f"saturation rows: {generator} -c{options.connections}, {options.duration:g} s after "
        f"{options.warmup:g} s warm-up; fixed-rate row: bench.paced, {options.rate:,.0f} req/s offered, open loop; "
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
