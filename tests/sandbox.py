"""Throwaway sandboxes on the real kernel: a netns that plays the host, and a
process in a netns of its own that plays the container.

Names are unique per sandbox so tests can run in parallel; ``close()`` removes
everything the sandbox made, also after a failed test.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from netsetter import snapshot

ROOT = Path(__file__).resolve().parent.parent
NETSETTER = [sys.executable, "-m", "netsetter"]


@dataclass
class Container:
    """A process in a fresh network namespace, waiting to be killed."""

    proc: subprocess.Popen

    @classmethod
    def start(cls) -> "Container":
        # The process tells us it is ready once unshare has made its netns: no polling.
        proc = subprocess.Popen(["unshare", "--net", "--", "sh", "-c", "echo ready; exec sleep infinity"],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        return cls(proc)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def ref(self) -> snapshot.NetnsRef:
        return snapshot.NetnsRef(pid=self.pid)

    def run(self, *argv: str, timeout: float = 30) -> subprocess.CompletedProcess:
        return subprocess.run(["nsenter", f"--net=/proc/{self.pid}/ns/net", *argv],
                              capture_output=True, text=True, timeout=timeout)

    def snapshot(self) -> snapshot.Snapshot:
        return snapshot.take(self.ref())

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        if self.proc.stdout:
            self.proc.stdout.close()
        entry = f"/var/run/netns/{self.pid}"
        if os.path.islink(entry):
            os.unlink(entry)


@dataclass
class Sandbox:
    tag: str
    name: str = ""
    containers: list[Container] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.name = f"nsp-{self.tag[:12]}-{uuid.uuid4().hex[:8]}"
        subprocess.run(["ip", "netns", "add", self.name], check=True)

    def container(self) -> Container:
        c = Container.start()
        self.containers.append(c)
        return c

    def run(self, *argv: str, env: dict[str, str] | None = None, user: int | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess:
        """Run a command with this sandbox as its host network namespace.

        ``env`` is set for the command alone (not for `ip netns exec`), ``user``
        runs it under that uid and gid with no capabilities.
        """
        prefix = ["ip", "netns", "exec", self.name]
        if user is not None:
            prefix += ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups"]
        if env:
            prefix += ["env", *(f"{k}={v}" for k, v in env.items())]
        return subprocess.run([*prefix, *argv], capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})

    def netsetter(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        return self.run(*NETSETTER, *args, **kwargs)

    def ip(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "-n", self.name, *args], capture_output=True, text=True, check=True)

    def snapshot(self) -> snapshot.Snapshot:
        return snapshot.take(snapshot.NetnsRef(name=self.name))

    def close(self) -> None:
        for c in self.containers:
            c.stop()
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)
