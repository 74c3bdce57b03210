"""One deadline for the whole start-up, so that no wait can hang.

It starts when runner forks the child. Every wait before the command runs
(the child's unshare, the id maps, the network) takes what is left of
``--timeout``: socket waits as a socket timeout, the netsetter library at
each step's start (see network.py). The parent is the one that gives up and
says why; the container's side waits one second longer, as a backstop for a
parent that stopped answering.
"""

from __future__ import annotations

import time

from .errors import RunnerError

BACKSTOP = 1.0


class NotReady(RunnerError):
    def __init__(self, what: str, seconds: float) -> None:
        super().__init__(message(what, seconds))


class Deadline:
    def __init__(self, seconds: float, start: float | None = None) -> None:
        self.seconds = seconds
        self.start = time.monotonic() if start is None else start
        self.at = self.start + seconds

    def remaining(self, what: str) -> float:
        """Seconds left, or :class:`NotReady` naming what was awaited."""
        left = self.at - time.monotonic()
        if left <= 0:
            raise NotReady(what, self.seconds)
        return left

    def expired(self) -> bool:
        return time.monotonic() >= self.at

    def backstop(self) -> "Deadline":
        """The container side's deadline: the same start, a little later."""
        return Deadline(self.seconds + BACKSTOP, self.start)


def message(what: str, seconds: float) -> str:
    return f"timed out after {seconds:g} s waiting for {what} (see --timeout)"
