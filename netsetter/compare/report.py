"""Show a comparison: a table on a terminal, plain rows otherwise, then the differences."""

from __future__ import annotations

from typing import IO, TYPE_CHECKING

from ..steps import STEPS
from .comparison import Comparison
from .align import CARRIED, DELIBERATE, DIFFERS, SAME, Row

if TYPE_CHECKING:
    from rich.console import Console

MARKS = {SAME: "✓ same", DELIBERATE: "≈ deliberate", DIFFERS: "✗ differs", CARRIED: "· carried"}
STYLES = {SAME: "green", DELIBERATE: "cyan", DIFFERS: "bold red", CARRIED: "yellow"}


def _step(row: Row) -> str:
    if row.step_index is None:
        return "—"
    step = STEPS[row.step_index]
    return f"{row.step_index + 1:2d} {step.name}" + (" (deliberate)" if step.difference else "")


def _where(row: Row) -> str:
    if row.command is not None:
        return f"line {row.command.line} `{row.command.text}`"
    return f"step {STEPS[row.step_index].name} (no script line)" if row.step_index is not None else "?"


def difference_lines(comparison: Comparison) -> list[str]:
    """Each row's new differences, once for all the backends that share them."""
    lines = []
    for row in comparison.rows:
        groups: dict[tuple[str, tuple[str, ...]], list[str]] = {}
        for backend, found in row.differences.items():
            if found and row.status[backend] != CARRIED:
                groups.setdefault((row.status[backend], tuple(found)), []).append(backend)
        for (status, shown), backends in groups.items():
            lines.append(f"{_where(row)} [{', '.join(backends)}: {status}]")
            lines += [f"    {d}" for d in shown]
    return lines


def verdict_line(comparison: Comparison) -> str:
    refusal = comparison.refusal
    if refusal is not None:
        where = f"line {refusal.line} `{refusal.text}`" if refusal.line else "the script"
        ran = "the script was stopped there" if comparison.script.commands or comparison.script.initial \
            else "nothing of the script ran"
        return f"refused: {where}: {refusal.reason}; {ran}, and the port was not run"
    backends = ", ".join(p.backend for p in comparison.ports)
    deliberate = sum(1 for r in comparison.rows if r.step_index is not None and STEPS[r.step_index].difference)
    if comparison.same:
        return (f"same: the port ({backends}) ends every aligned command in the script's state "
                f"({deliberate} deliberate differences marked)")
    first = next(r for r in comparison.rows if any(s == DIFFERS for s in r.status.values()))
    bad = [b for b, ok in comparison.verdicts.items() if not ok]
    return f"different ({', '.join(bad)}): first at {_where(first)}, port step {_step(first).strip()}"


def command_lines(comparison: Comparison) -> list[str]:
    """A refused script: each command that ran, then the one refused."""
    lines = []
    for command in comparison.script.commands:
        what = f"refused: {command.refused}" if command.refused else f"ran, exit {command.status}"
        lines.append(f"{command.line:4d}  {command.text:<60}  {what}")
    refusal = comparison.refusal
    if refusal is not None and not any(c.refused for c in comparison.script.commands):
        lines.append(f"{refusal.line:4d}  {refusal.text:<60}  refused: {refusal.reason}")
    return lines


def plain(comparison: Comparison, out: IO[str]) -> None:
    if comparison.refusal is not None:
        print(f"netsetter compare: {comparison.script.path} (refused)", file=out)
        for line in command_lines(comparison):
            print(line, file=out)
        print(verdict_line(comparison), file=out)
        return
    print(f"netsetter compare: {comparison.script.path} (exit {comparison.script.status}) vs "
          f"{', '.join(p.backend for p in comparison.ports)}", file=out)
    for row in comparison.rows:
        line = f"{row.command.line:4d}" if row.command else "   -"
        text = row.command.text if row.command else "(not in the script)"
        marks = "  ".join(f"{b}: {s}" for b, s in row.status.items())
        print(f"{line}  {text:<60}  {_step(row):<28}  {marks}", file=out)
    for line in difference_lines(comparison):
        print(line, file=out)
    print(verdict_line(comparison), file=out)


def rich(comparison: Comparison, console: "Console") -> None:
    from rich.markup import escape
    from rich.table import Table

    if comparison.refusal is not None:
        console.print(f"netsetter compare: {escape(comparison.script.path)} (refused)", highlight=False)
        for line in command_lines(comparison):
            console.print(escape(line), style="red" if "refused: " in line else None, highlight=False)
        console.print(f"[bold red]{escape(verdict_line(comparison))}[/]", highlight=False)
        return

    table = Table(title=f"{comparison.script.path} vs the port", title_justify="left")
    table.add_column("line", justify="right", style="dim")
    table.add_column("script command", overflow="fold")
    table.add_column("port step")
    for port in comparison.ports:
        table.add_column(port.backend)
    for row in comparison.rows:
        text = escape(row.command.text) if row.command else "[italic dim](not in the script)[/]"
        table.add_row(str(row.command.line) if row.command else "", text, escape(_step(row)),
                      *(f"[{STYLES[s]}]{MARKS[s]}[/]" for s in row.status.values()))
    console.print(table)
    for line in difference_lines(comparison):
        console.print(escape(line), style="red" if not line.startswith("    ") else None, highlight=False)
    colour = "green" if comparison.same else "red"
    console.print(f"[{colour}]{escape(verdict_line(comparison))}[/]", highlight=False)
