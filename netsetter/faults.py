"""The one fault-injection hook, for the test suite: fail or pause at a named point.

    <PREFIX>_FAIL_AT=POINT        the run fails at POINT (an OpError, as a kernel refusal would)
    <PREFIX>_PAUSE_AT=POINT:FIFO  writes "paused POINT" to FIFO, then waits for a line from it,
                                  so a test can act (kill the target, send a signal) mid-run

The engine's hook reads NETSETTER_TEST_*, with a point per step (before the step acts);
CNI ADD's reads NETSETTER_CNI_TEST_*, with a point after each stage.
"""

from __future__ import annotations

import os

from nskit.errors import OpError
from nskit.record import Record


class FaultHook(Record):
    __slots__ = ("prefix",)

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def __call__(self, point: str) -> None:
        fail = f"{self.prefix}_FAIL_AT"
        if os.environ.get(fail) == point:
            raise OpError("run step", point, f"failure injected by {fail}")
        where, _, fifo = os.environ.get(f"{self.prefix}_PAUSE_AT", "").partition(":")
        if where == point and fifo:
            with open(fifo, "w") as out:
                out.write(f"paused {point}\n")
            with open(fifo) as back:
                back.readline()


ENGINE = FaultHook("NETSETTER_TEST")
CNI_ADD = FaultHook("NETSETTER_CNI_TEST")
