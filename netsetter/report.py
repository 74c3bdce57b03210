"""Show a run as it happens: a live rich table on a terminal, plain lines otherwise.

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
    return " ; ".join(record.script) if record.script else "(not in the script)"


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
    """A table that fills in row by row while the steps run."""

    def __init__(self, console: "Console") -> None:
        from rich.live import Live

        self.console = console
        self.result: Result | None = None
        self.live = Live(console=console, auto_refresh=False, transient=False)

    def _table(self):  # type: ignore[no-untyped-def]
        from rich.table import Table

        assert self.result is not None
        r = self.result
        table = Table(title=f"netsetter: pid {r.pid}, backend {r.backend}", title_justify="left",
                      expand=False, show_lines=False)
        table.add_column("#", justify="right", style="dim")
        table.add_column("", width=1)
        table.add_column("step")
        table.add_column("script line", style="bright_black", overflow="fold")
        table.add_column("result", overflow="fold")
        table.add_column("ms", justify="right")
        for s in r.steps:
            style = _STYLES.get(s.status, "")
            detail = s.detail if s.undo is None else f"{s.detail}\n[magenta]undone: {s.undo}[/]"
            if s.difference and s.status != "pending":
                detail += "\n[dim italic]differs from the script on purpose[/]"
            table.add_row(str(s.index), f"[{style}]{_MARKS.get(s.status, '?')}[/]", f"[{style}]{s.name}[/]",
                          "\n".join(s.script) or "[italic](not in the script)[/]", detail,
                          f"{s.ms:.1f}" if s.status not in ("pending", "running") else "")
        return table

    def start(self, result: Result) -> None:
        self.result = result
        self.live.start()
        self.live.update(self._table(), refresh=True)

    def __call__(self, record: StepResult) -> None:
        self.live.update(self._table(), refresh=True)

    def finish(self, result: Result) -> None:
        self.live.update(self._table(), refresh=True)
        self.live.stop()
        colour = "green" if result.outcome == "ok" else "red"
        self.console.print(f"[{colour}]{result.outcome}[/] in {result.ms:.1f} ms")
