"""One container of a fleet, as its user sees it: its pid, address and name; exec, stop.

The container is its init (Debian's catatonit) and the command under it, a
child of the process that holds the Fleet; no Python process of its own.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from ipaddress import IPv4Interface
from typing import Any

from .errors import Failed


@dataclass(eq=False)
class Container:
    pid: int  # its init on the host (PID 1 inside)
    name: str  # its hostname
    address: IPv4Interface | None  # None without a network
    argv: tuple[str, ...]
    host_ifname: str | None = None
    status: int | None = field(default=None, repr=False)  # its wait status, once reaped
    nat_owner: str | None = field(default=None, repr=False)

    def exec(self, argv: list[str], *, check: bool = False, capture_output: bool = True, text: bool = True,
             **kwargs: Any) -> "subprocess.CompletedProcess[Any]":
        """Run ``argv`` inside the container (its namespaces, root and environment), as
        :func:`subprocess.run` runs it: output captured as text unless told otherwise."""
        from .enter import Entry, forked_into

        if not self.alive():
            raise Failed("exec in container", self.name, f"it has ended ({self.describe()})")
        entry = Entry(self.pid)
        try:
            env = kwargs.pop("env", None) or entry.env
            return subprocess.run(argv, preexec_fn=lambda: forked_into(entry), env=env, check=check,
                                  capture_output=capture_output, text=text, **kwargs)
        finally:
            entry.close()

    def poll(self) -> int | None:
        """Its wait status if it has ended (reaped now), else None."""
        if self.status is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                return self.status
            if pid:
                self.status = status
        return self.status

    def alive(self) -> bool:
        return self.poll() is None

    def kill(self, signum: int = signal.SIGKILL) -> None:
        """Signal its init; SIGKILL ends the whole container (its PID namespace)."""
        if self.status is None:
            try:
                os.kill(self.pid, signum)
            except ProcessLookupError:
                pass

    def wait(self, timeout: float | None = None) -> int:
        """Its exit status as a shell gives it (128+N for signal N)."""
        if timeout is None:
            if self.status is None:
                try:
                    _, self.status = os.waitpid(self.pid, 0)
                except ChildProcessError:
                    raise Failed("wait for container", self.name, "it is not a child of this process") from None
        else:
            end = time.monotonic() + timeout
            while self.poll() is None:
                if time.monotonic() > end:
                    raise TimeoutError(f"container {self.name} (pid {self.pid}) did not end within {timeout} s")
                time.sleep(0.005)
        assert self.status is not None
        code = os.waitstatus_to_exitcode(self.status)
        return code if code >= 0 else 128 - code

    def stop(self, timeout: float = 5.0) -> int:
        """SIGTERM (catatonit passes it to the command), SIGKILL after ``timeout``; its status."""
        self.kill(signal.SIGTERM)
        try:
            return self.wait(timeout)
        except TimeoutError:
            self.kill(signal.SIGKILL)
            return self.wait()

    def describe(self) -> str:
        if self.status is None:
            return "running"
        code = os.waitstatus_to_exitcode(self.status)
        return f"exited with status {code}" if code >= 0 else f"killed by signal {-code}"
