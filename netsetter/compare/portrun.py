"""Run the port's steps in a sandbox, with a snapshot after each step.

A forked child enters the sandbox's host netns (setns on the whole, single
threaded process, so every `ip` it starts is in there too) and runs
:func:`netsetter.engine.setup`; after each step it reports the step over a
pipe and waits until we have taken the snapshot.
"""

from __future__ import annotations

import json
import os
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

from nskit import syscalls
from nskit.errors import NsError

from ..config import NetConfig
from ..result import Result, StepResult
from ..sandbox import Container, Sandbox
from ..snapshot import State, state_of


@dataclass
class PortStep:
    record: dict[str, Any]
    after: State


@dataclass
class PortTrace:
    backend: str
    initial: State
    steps: list[PortStep] = field(default_factory=list)
    result: dict[str, Any] | None = None
    error: str | None = None


class _PausingReporter:
    def __init__(self, out: int, ack: int) -> None:
        self.out, self.ack = out, ack

    def _send(self, message: dict[str, Any]) -> None:
        os.write(self.out, (json.dumps(message) + "\n").encode())

    def start(self, result: Result) -> None: ...

    def __call__(self, record: StepResult) -> None:
        if record.status in ("ok", "skipped", "failed") and record.undo is None:
            self._send({"event": "step", "record": record.as_dict()})
            os.read(self.ack, 1)

    def finish(self, result: Result) -> None:
        self._send({"event": "end", "result": result.as_dict()})


def _child(box: Sandbox, pid: int, backend: str, config: NetConfig, out: int, ack: int) -> None:
    from backends import open_backend

    from ..engine import setup

    reporter = _PausingReporter(out, ack)
    try:
        fd = os.open(box.path, os.O_RDONLY)
        syscalls.setns(fd, syscalls.CLONE_NEWNET, box.path)
        with open_backend(backend) as chosen:
            setup(pid, config, chosen, reporter=reporter)
    except NsError as exc:
        reporter._send({"event": "error", "error": str(exc)})
    except BaseException:  # report anything, and never return into the parent's code
        reporter._send({"event": "error", "error": traceback.format_exc()})


def trace_port(box: Sandbox, container: Container, backend: str, config: NetConfig,
               on_step: Callable[[PortStep], None] | None = None) -> PortTrace:
    trace = PortTrace(backend, initial=state_of(box.ref(), container.pid))
    out_r, out_w = os.pipe()
    ack_r, ack_w = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            os.close(out_r)
            os.close(ack_w)
            _child(box, container.pid, backend, config, out_w, ack_r)
        finally:
            os._exit(0)
    os.close(out_w)
    os.close(ack_r)
    try:
        with os.fdopen(out_r) as events:
            for line in events:
                message = json.loads(line)
                if message["event"] == "step":
                    step = PortStep(message["record"], state_of(box.ref(), container.pid))
                    trace.steps.append(step)
                    if on_step:
                        on_step(step)
                    os.write(ack_w, b"k")
                elif message["event"] == "end":
                    trace.result = message["result"]
                    trace.error = trace.result.get("error")
                else:
                    trace.error = message["error"]
    finally:
        os.close(ack_w)
        os.waitpid(child, 0)
    return trace
