"""N `runner start` containers alive at once, on one bridge of the current sandbox.

Each container runs ``sh -c 'echo ready; read line'``. runner starts the
command only once the container's network is configured, so its "ready"
line means "started and networked". All commands share two pipes:

    stdout -> READY pipe   we count N lines (a write under PIPE_BUF bytes is atomic)
    stdin  <- HOLD pipe    we keep its write end; closing it gives every `read` EOF,
                           so all commands end and every runner tears its network down

Two ways to start a member:

    cli    runner start ...   a new Python process per container, as a user runs it
    fork   runner.cli.main([...]) in a child forked from this process, which imported
           runner, netsetter and the backend once: each container then costs no
           interpreter start-up and no imports (a zygote, as Mininet is one Python process)

At most ``window`` members are starting at any time (default: one per CPU).
:meth:`Fleet.close` kills whatever is still running, by pid, after asking
politely: SIGTERM reaches the command through runner, which then cleans up.
"""

from __future__ import annotations

import gc
import os
import select
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from . import addressing
from .sandboxes import STOPPING, shielded

COMMAND = ["/bin/sh", "-c", "echo ready; read line || true"]
READY = b"ready\n"


class FleetError(RuntimeError):
    pass


class Member(Protocol):
    pid: int

    def poll(self) -> int | None: ...
    def wait(self, timeout: float) -> int: ...


@dataclass
class Forked:
    pid: int
    status: int | None = None

    def poll(self) -> int | None:
        if self.status is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(status)
        return self.status

    def wait(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while self.poll() is None:
            if time.monotonic() > deadline:
                raise FleetError(f"runner {self.pid} did not end within {timeout:.0f} s")
            time.sleep(0.005)
        return self.status  # type: ignore[return-value]


@dataclass
class Spawned:
    proc: subprocess.Popen

    @property
    def pid(self) -> int:
        return self.proc.pid

    def poll(self) -> int | None:
        return self.proc.poll()

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout)


# A launcher starts member i with the given stdin, stdout and stderr, closing ``others`` in it.
Launcher = Callable[[int, int, int, int, list[int]], Member]


def runner_args(i: int, cache: Path, backend: str) -> list[str]:
    return ["start", "--cache-dir", str(cache), "--backend", backend, *addressing.cli_options(i), "--", *COMMAND]


def cli_launcher(runner: str, cache: Path, backend: str) -> Launcher:
    def launch(i: int, stdin: int, stdout: int, stderr: int, others: list[int]) -> Member:
        # Popen closes every other descriptor in the child (close_fds).
        return Spawned(subprocess.Popen([runner, *runner_args(i, cache, backend)], stdin=stdin, stdout=stdout,
                                        stderr=stderr))

    return launch


def fork_launcher(cache: Path, backend: str) -> Launcher:
    import runner.cli  # noqa: F401 - and below: imported once, before the first fork
    import runner.child  # noqa: F401
    import runner.init  # noqa: F401
    import runner.network  # noqa: F401
    import runner.parent  # noqa: F401
    import netsetter.engine  # noqa: F401
    import netsetter.host.teardown  # noqa: F401
    from backends import backend_class

    backend_class(backend)  # imports backends.netlink (pyroute2) or backends.iproute (sh)
    try:
        # typer >= 0.29 imports pydantic (~150 ms) lazily, at the first parse of options
        import typer._adapters  # noqa: F401
    except ImportError:
        pass
    # Objects that exist now are never collected again: the garbage collector would
    # otherwise touch them in every child and copy their pages (copy-on-write).
    gc.freeze()

    def launch(i: int, stdin: int, stdout: int, stderr: int, others: list[int]) -> Member:
        sys.stdout.flush()
        sys.stderr.flush()  # else what is buffered would be written again by the child
        pid = os.fork()
        if pid == 0:
            status = 125
            try:
                for fd, target in ((stdin, 0), (stdout, 1), (stderr, 2)):
                    os.dup2(fd, target)
                for fd in others:
                    os.close(fd)
                signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the bench's handler
                signal.pthread_sigmask(signal.SIG_UNBLOCK, STOPPING)  # forked inside shielded()
                from runner.cli import main

                status = main(runner_args(i, cache, backend))
            except BaseException:  # noqa: BLE001 - the child must never return into the bench
                traceback.print_exc()
            finally:
                os._exit(status)
        return Forked(pid)

    return launch


@dataclass
class Fleet:
    n: int
    launch: Launcher
    log: Path  # the members' stderr, appended
    window: int = field(default_factory=lambda: os.cpu_count() or 1)
    timeout: float = 120.0  # without any container becoming ready
    members: list[Member] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._ready_r, self._ready_w = os.pipe()
        self._hold_r, self._hold_w = os.pipe()
        self._stderr = os.open(self.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def start(self) -> float:
        """Start all N; return the seconds until the last one said ready."""
        others = [self._ready_r, self._hold_w]
        ready, last_progress = 0, time.monotonic()
        started = time.perf_counter()
        while ready < self.n:
            while len(self.members) < self.n and len(self.members) - ready < self.window:
                with shielded():  # started and listed, or neither: close() must know every member
                    self.members.append(self.launch(len(self.members), self._hold_r, self._ready_w,
                                                    self._stderr, others))
            if select.select([self._ready_r], [], [], 0.2)[0]:
                got = os.read(self._ready_r, 65536).count(READY)
                ready += got
                if got:
                    last_progress = time.monotonic()
                continue
            ended = [m for m in self.members if m.poll() is not None]
            if ended:
                raise FleetError(f"runner {ended[0].pid} exited {ended[0].poll()} before its container "
                                 f"was ready: {self.last_error()}")
            if time.monotonic() - last_progress > self.timeout:
                raise FleetError(f"no container became ready for {self.timeout:.0f} s ({ready}/{self.n} ready)")
        return time.perf_counter() - started

    def stop(self) -> float:
        """Let every command end; return the seconds until every runner has exited."""
        started = time.perf_counter()
        os.close(self._hold_w)
        self._hold_w = -1
        failed = [m for m in self.members if m.wait(self.timeout) != 0]
        seconds = time.perf_counter() - started
        self.members.clear()
        if failed:
            raise FleetError(f"{len(failed)} runners exited with an error: {self.last_error()}")
        return seconds

    def pids(self) -> list[int]:
        return [m.pid for m in self.members]

    def last_error(self) -> str:
        try:
            lines = self.log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "no log"
        return lines[-1] if lines else "no message"

    def close(self) -> None:
        """Stop what is still running, by pid: SIGTERM (runner cleans up), then SIGKILL."""
        alive = [m for m in self.members if m.poll() is None]
        for m in alive:
            try:
                os.kill(m.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 20
        for m in alive:
            try:
                m.wait(max(deadline - time.monotonic(), 0.1))
            except (FleetError, subprocess.TimeoutExpired):
                os.kill(m.pid, signal.SIGKILL)
                m.wait(10)
        self.members.clear()
        for fd in (self._ready_r, self._ready_w, self._hold_r, self._hold_w, self._stderr):
            if fd >= 0:
                os.close(fd)
        self._ready_r = self._ready_w = self._hold_r = self._hold_w = self._stderr = -1

    def __enter__(self) -> "Fleet":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
