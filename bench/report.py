"""Show a run: the machine, a table of rows, a table of targets; or all of it as JSON,
or as Markdown for bench/RESULTS.md (from a run, or from the JSON of an earlier one)."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from .results import GROUPS, Row, Run

STATUS_STYLE = {"met": "green", "missed": "red", "reported": "cyan", "not measured": "yellow"}


def duration(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 0.01:
        return f"{seconds * 1000:.1f} ms"
    return f"{seconds * 1000:.2f} ms"


def machine_line(run: Run) -> str:
    m = run.machine
    return (f"{m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB, {m['os']}, Linux {m['kernel']}, "
            f"Python {m['python']}, load {m['load_at_start']} at start; run took {run.seconds:.0f} s")


def _note(row: Row) -> str:
    if row.skipped:
        return f"[yellow]skipped: {row.skipped}[/]"
    if row.error:
        return f"[red]error: {row.error}[/]"
    return row.note


def rows_table(run: Run) -> Table:
    table = Table(title="ns-proc benchmark: medians of each row's runs", caption=machine_line(run),
                  caption_justify="left")
    for column, justify in (("case", "left"), ("runs", "right"), ("median", "right"), ("min", "right"),
                            ("max", "right"), ("per item", "right"), ("note", "left")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    shown = None
    for row in run.rows:
        if row.group != shown:  # a heading row per group a-g
            table.add_row(f"[bold]{GROUPS.get(row.group, row.group)}[/]", end_section=False)
            shown = row.group
        s = row.stats
        if s is None:
            table.add_row(f"  {row.label}", "", "", "", "", "", _note(row))
            continue
        per = duration(s.median / row.per) if row.per > 1 else ""
        table.add_row(f"  {row.label}", str(s.n), duration(s.median), duration(s.min), duration(s.max), per,
                      _note(row))
    return table


def targets_table(run: Run) -> Table:
    table = Table(title="Targets (issue 8): ratios of medians within this run")
    for column, justify in (("target", "left"), ("ratio", "right"), ("limit", "right"), ("status", "left")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for v in run.verdicts:
        ratio = f"{v.ratio:.2f}×" if v.ratio is not None else ""
        limit = f"≤ {v.limit:g}×" if v.limit is not None else ""
        status = f"[{STATUS_STYLE[v.status]}]{v.status}[/]" + (f": {v.why_not}" if v.why_not else "")
        table.add_row(v.name, ratio, limit, status)
    return table


def print_tables(run: Run, console: Console) -> None:
    console.print(rows_table(run))
    console.print(targets_table(run))
    for key, extra in ((r.key, r.extra) for r in run.rows if r.extra):
        console.print(f"[dim]{key}:[/] " + ", ".join(f"{k} {_short(v)}" for k, v in extra.items()),
                      highlight=False)
    if run.leftovers:
        console.print(f"[red]left behind: {', '.join(run.leftovers)}[/]")


def _short(value: object) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_short(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_short(v) for v in value[:8]) + (", ..." if len(value) > 8 else "") + "]"
    return str(value)


def write_json(run: Run, path: Path) -> None:
    path.write_text(json.dumps(run.as_dict(), indent=2, ensure_ascii=False) + "\n")


def _ms(value: float | None) -> str:
    return "" if value is None else duration(value / 1000)


def markdown(data: dict) -> str:
    """The rows and targets of ``Run.as_dict()`` (a run, or its saved JSON) as Markdown tables."""
    m = data["machine"]
    lines = [f"Measured on {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB, {m['os']}, Linux {m['kernel']}, "
             f"Python {m['python']} (load {m['load_at_start']} at start; the run took {data['seconds']:.0f} s).", "",
             "| case | runs | median | min | max | per item | note |", "|---|---:|---:|---:|---:|---:|---|"]
    shown = None
    for row in data["rows"]:
        if row["group"] != shown:
            lines.append(f"| **{row['group']}** | | | | | | |")
            shown = row["group"]
        note = (f"skipped: {row['skipped']}" if row["skipped"] else f"error: {row['error']}" if row["error"]
                else row["note"]).replace("|", "/")
        times = " | ".join(_ms(row.get(k)) for k in ("median_ms", "min_ms", "max_ms", "median_per_item_ms"))
        lines.append(f"| {row['label']} | {row.get('n', '')} | {times} | {note} |")
    lines += ["", "| target | ratio | limit | status |", "|---|---:|---:|---|"]
    for t in data["targets"]:
        ratio = f"{t['ratio']:.2f}×" if t["ratio"] is not None else ""
        limit = f"≤ {t['limit']:g}×" if t["limit"] is not None else ""
        status = t["status"] + (f": {t['why_not']}" if t["why_not"] else "")
        lines.append(f"| {t['target']} | {ratio} | {limit} | {status} |")
    return "\n".join(lines) + "\n"


def write_markdown(run: Run, path: Path) -> None:
    path.write_text(markdown(run.as_dict()))
