"""The library's sandboxes, with what tests need on top: running commands in them.

A :class:`Sandbox` is a netns that plays the host; its containers are
processes in netns of their own. Both are removed when the test ends.
"""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from netsetter.compare import sandbox as lib

ROOT = Path(__file__).resolve().parent.parent
NETSETTER = [sys.executable, "-m", "netsetter"]


def front(name: str) -> str:
    """The installed command ``name`` (bin/netsetter, beside the virtualenv's python)."""
    path = Path(sys.executable).parent / name
    if not path.is_file():
        pytest.fail(f"{path} is not installed: {sys.executable} -m pip install -e {ROOT} --no-deps")
    return str(path)


class Sandbox(lib.Sandbox):
    def run(self, *argv: str, env: dict[str, str] | None = None, user: int | None = None,
            timeout: float = 60, stdin: str | None = None) -> subprocess.CompletedProcess:
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
                              input=stdin, env={**os.environ, "PYTHONPATH": str(ROOT)})

    def netsetter(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        return self.run(*NETSETTER, *args, **kwargs)

    @contextmanager
    def hello_server(self, address: str = "0.0.0.0") -> Iterator[str]:
        """A TCP listener in this host namespace that answers one client with
        "hello <the client's address>"; yields its port."""
        server = (f"import socket; s = socket.create_server(({address!r}, 0)); print(s.getsockname()[1], flush=True);"
                  "s.settimeout(30); c, peer = s.accept(); c.sendall(b'hello ' + peer[0].encode()); c.close()")
        listener = subprocess.Popen(["ip", "netns", "exec", self.name, sys.executable, "-c", server],
                                    stdout=subprocess.PIPE, text=True)
        try:
            assert listener.stdout is not None
            yield listener.stdout.readline().strip()
        finally:
            listener.kill()
            listener.wait()
            listener.stdout.close()

    def ip(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "-n", self.name, *args], capture_output=True, text=True, check=True)
