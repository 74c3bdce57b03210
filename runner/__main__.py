"""`runner` (the console script) and `python -m runner`: the signal handlers come first,
then the CLI's imports (typer), so that Ctrl-C at any moment is one line and 130."""

from __future__ import annotations

from typing import Callable, NoReturn

from nskit.boundary import start


def _load() -> Callable[[], int]:
    # runner.launch parses a plain `runner start` itself and hands the rest to typer.
    from .launch import main

    return main


def run() -> NoReturn:
    start("runner", _load)


if __name__ == "__main__":
    run()
