"""`netsetter` (the console script) and `python -m netsetter`: the signal handlers come
first, then the CLI's imports (typer), so that Ctrl-C at any moment is one line and 130."""

from __future__ import annotations

from typing import Callable, NoReturn

from nskit.boundary import start


def _load() -> Callable[[], int]:
    from .cli import main

    return main


def run() -> NoReturn:
    start("netsetter", _load)


if __name__ == "__main__":
    run()
