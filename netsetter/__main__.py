"""`netsetter` (the console script) and `python -m netsetter`: the signal handlers come
first, then the launcher (typer only for what it does not parse itself), so that Ctrl-C
at any moment is one line and 130."""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing before the handlers
if TYPE_CHECKING:
    from typing import Callable, NoReturn

try:
    from nskit.boundary import start
except KeyboardInterrupt:  # Ctrl-C before the handlers existed: the same one line and 130
    import os

    os.write(2, b"netsetter: interrupted\n")
    os._exit(130)


def _load() -> Callable[[], int]:
    # netsetter.launch parses a plain `netsetter PID` / `netsetter down PID` itself and
    # hands the rest to typer (netsetter.cli).
    from .launch import main

    return main


def run() -> NoReturn:
    start("netsetter", _load)


if __name__ == "__main__":
    run()
