"""Run the port's steps in a jail like the script's, with a snapshot after each step.

The jail's payload runs :func:`netsetter.engine.setup` against the jail's
container, so the port starts where the script starts: the same kind of
namespaces, owned by the same kind of unprivileged root, with the same empty
/run. After each step it reports the step over fd 3 and waits until we have
taken the snapshot.
"""

from __future__ import annotations

import json
import os
import socket
import traceback
from dataclasses import dataclass, field
from collections.abc import Iterator
from typing import Any, Callable

from backends import open_backend

from nskit.errors import NsError

from ..config import NetConfig
from ..engine import setup
from ..errors import NetsetterError
from ..result import Result, StepResult
from .snapshot import State
from .jail import TRACE_FD, Jail

MAX_LINE = 1 << 20


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
    def __init__(self, fd: int) -> None:
        self.fd = fd

    def _send(self, message: dict[str, Any]) -> None:
        os.write(self.fd, (json.dumps(message) + "\n").encode())

    def start(self, result: Result) -> None: ...

    def __call__(self, record: StepResult) -> None:
        if record.status in ("ok", "skipped", "failed") and record.undo is None:
            self._send({"event": "step", "record": record.as_dict()})
            os.read(self.fd, 1)

    def finish(self, result: Result) -> None:
        self._send({"event": "end", "result": result.as_dict()})


def _run_steps(backend: str, config: NetConfig, container_pid: int) -> None:
    reporter = _PausingReporter(TRACE_FD)
    try:
        with open_backend(backend) as chosen:
            setup(container_pid, config, chosen, reporter=reporter)
    except NsError as exc:
        reporter._send({"event": "error", "error": str(exc)})
    except BaseException:  # report anything; the jail never returns into compare's code
        reporter._send({"event": "error", "error": traceback.format_exc()})


def trace_port(backend: str, config: NetConfig, *, time_limit: float,
               on_step: Callable[[PortStep], None] | None = None) -> PortTrace:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    jail = Jail(f"port ({backend})", lambda pid: _run_steps(backend, config, pid), time_limit=time_limit,
                trace_fd=theirs.fileno())
    try:
        jail.start()
        theirs.close()
        trace = PortTrace(backend, initial=jail.state())
        jail.go()
        for message in _messages(ours, jail):
            if message.get("event") == "step":
                step = PortStep(message["record"], jail.state())
                trace.steps.append(step)
                if on_step:
                    on_step(step)
                try:
                    ours.sendall(b"k")
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the payload is gone: the next read says so
            elif message.get("event") == "end":
                trace.result = message["result"]
                trace.error = trace.result.get("error")
            else:
                trace.error = str(message.get("error"))
    finally:
        jail.close()
        theirs.close()
        ours.close()
    return trace


def _messages(sock: socket.socket, jail: Jail) -> Iterator[dict[str, Any]]:
    """The payload's JSON lines, until it closes fd 3."""
    buf = b""
    while True:
        jail.wait_readable(sock.fileno())
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            return
        buf += chunk
        while b"\n" in buf:
            line, _, buf = buf.partition(b"\n")
            yield json.loads(line)
        if len(buf) > MAX_LINE:
            raise NetsetterError(f"the {jail.what} sent a line of more than {MAX_LINE} bytes")
