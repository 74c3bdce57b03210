"""``--verbose``: one line per start-up event on stderr, with the time since runner started.

Every process (runner, child, init) writes its own lines; CLOCK_MONOTONIC is
one clock for the whole machine, so their times compare.
"""

from __future__ import annotations

import sys
import time

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import TextIO


class Trace:
    def __init__(self, enabled: bool, started: float, out: "TextIO" = sys.stderr) -> None:
        self.enabled, self.started, self.out = enabled, started, out

    def __call__(self, who: str, text: str) -> None:
        if self.enabled:
            ms = (time.monotonic() - self.started) * 1000
            print(f"runner: {ms:7.1f} ms {who:<6} {text}", file=self.out, flush=True)
