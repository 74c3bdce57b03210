"""Show a run as it happens: coloured lines on a terminal, plain lines otherwise.

Reporters receive each :class:`StepResult` when it starts, ends and (on a
rollback) is undone. JSON output is not a reporter: the CLI prints the whole
:class:`Result` once at the end.
"""

from __future__ import annotations

from typing import IO, TYPE_CHECKING

from .result import Result, StepResult

if TYPE_CHECKING:
    from rich.console import Console

_MARKS = {"pending": " ", "running": "…", "ok": "✓", "skipped": "=", "failed": "✗"}
_STYLES = {"ok": "green", "skipped": "cyan", "failed": "bold red", "running": "yellow", "pending": "dim"}


def script_text(record: StepResult) -> str:
    return " ; ".join(record.script) if record.script else "(not in the script: added by the port)"


class PlainReporter:
    """One line per finished step, for logs and pipes."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out

    def start(self, result: Result) -> None:
        print(f"netsetter: pid {result.pid}, backend {result.backend}, {len(result.steps)} steps", file=self.out)

    def __call__(self, record: StepResult) -> None:
        if record.undo is not None:
            print(f"undo  {record.index:2d} {record.name}: {record.undo}", file=self.out)
        elif record.status not in ("running", "pending"):
            print(f"{record.status:<7} {record.index:2d} {record.name:<20} {record.ms:7.1f} ms  "
                  f"$ {script_text(record)}  # {record.detail}", file=self.out, flush=True)

    def finish(self, result: Result) -> None:
        print(f"netsetter: {result.outcome} in {result.ms:.1f} ms", file=self.out)


class RichReporter:
    """Coloured lines on a terminal: each step as it ends, its script line beside it."""

    def __init__(self, console: "Console") -> None:
        self.console = console

    def start(self, result: Result) -> None:
        self.console.print(f"[bold]netsetter[/]: pid [bold]{result.pid}[/], backend [bold]{result.backend}[/]",
                           highlight=False)

    def __call__(self, record: StepResult) -> None:
        from rich.markup import escape

        if record.undo is not None:
            self.console.print(f"   [magenta]↺ {record.index:2d} {record.name}[/]  {escape(record.undo)}",
                               highlight=False)
            return
        if record.status in ("running", "pending"):
            return
        style = _STYLES.get(record.status, "")
        note = " [dim italic](deliberate difference)[/]" if record.difference else ""
        self.console.print(f" [{style}]{_MARKS[record.status]} {record.index:2d} {record.name:<20}[/] "
                           f"[dim]{record.ms:6.1f} ms[/]  [{style}]{escape(record.detail)}[/]{note}",
                           highlight=False)
        for line in record.script or ["# not in the script: added by the port"]:
            self.console.print(f"        [bright_black]$ {escape(line)}[/]", highlight=False)

    def finish(self, result: Result) -> None:
        colour = "green" if result.outcome == "ok" else "red"
        self.console.print(f"[{colour}]{result.outcome}[/] in {result.ms:.1f} ms", highlight=False)
