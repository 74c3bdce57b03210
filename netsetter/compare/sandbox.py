"""Throwaway sandboxes: a named netns that plays the host, and a process in a
netns of its own that plays the container.

`netsetter compare` runs the original script and the port side by side in
sandboxes, and the tests build every case in them. Names are unique, so
sandboxes can run in parallel; :meth:`Sandbox.close` removes everything a
sandbox made, and is safe to call twice.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from dataclasses import dataclass, field

from . import snapshot
from nskit.netns import cookie as netns_cookie

from ..host import state_dir
from ..errors import NetsetterError


@dataclass
class Container:
    """A process in a fresh network namespace, sleeping until it is stopped."""

    proc: subprocess.Popen

    @classmethod
    def start(cls) -> "Container":
        # The process prints once unshare has made its netns: no polling.
        proc = subprocess.Popen(["unshare", "--net", "--", "sh", "-c", "echo ready; exec sleep infinity"],
                                stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                                start_new_session=True)
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            proc.wait()
            raise NetsetterError(f"failed to start a sandbox container: unshare --net exited {proc.returncode}")
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
    tag: str = "sbx"
    name: str = ""
    containers: list[Container] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.name = f"nsp-{self.tag[:12]}-{uuid.uuid4().hex[:8]}"
        proc = subprocess.run(["ip", "netns", "add", self.name], capture_output=True, text=True)
        if proc.returncode:
            raise NetsetterError(f'failed to add sandbox netns "{self.name}": {proc.stderr.strip()}')

    @property
    def path(self) -> str:
        return f"/var/run/netns/{self.name}"

    def container(self) -> Container:
        c = Container.start()
        self.containers.append(c)
        return c

    def ref(self) -> snapshot.NetnsRef:
        return snapshot.NetnsRef(name=self.name)

    def snapshot(self) -> snapshot.Snapshot:
        return snapshot.take(self.ref())

    def close(self) -> None:
        for c in self.containers:
            c.stop()
        self.containers.clear()
        try:
            state_dir.forget(netns_cookie(self.path))  # what netsetter recorded for this host
        except OSError:
            pass
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
