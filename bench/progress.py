"""What a run shows on stderr while it goes: a live bar on a terminal, plain log lines otherwise.

A full run takes about half an hour. On a terminal the bottom line says which group
runs, how many of the chosen groups are done and how long the run has taken, and the
log lines scroll above it; piped or redirected, every line is a plain timestamped log
line (nothing redraws, so a CI log stays readable).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn


@dataclass
class Reporter:
    log: Callable[[str], None]  # one line of progress
    advance: Callable[[str], None]  # a group has ended (its title)


@contextmanager
def reporter(err: Console, groups: list[str]) -> Iterator[Reporter]:
    """A :class:`Reporter` for a run of ``groups`` (their titles), drawn on ``err``."""
    if not err.is_terminal:
        yield Reporter(log=lambda msg: err.log(msg, highlight=False), advance=lambda title: None)
        return
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("groups"), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task(groups[0] if groups else "", total=len(groups))
        remaining = list(groups)

        def log(msg: str) -> None:
            err.log(msg, highlight=False)

        def advance(title: str) -> None:
            if title in remaining:
                remaining.remove(title)
            bar.update(task, advance=1, description=remaining[0] if remaining else "tables")

        yield Reporter(log=log, advance=advance)
