"""Helpers for the runner tests: run `runner start` in a sandbox, and find what a run left behind.

Not a test module (it defines no tests); the runner tests import from it.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

from .sandbox import ROOT

RUNNER = [sys.executable, "-m", "runner", "start"]


@pytest.fixture(scope="session")
def cache_dir():
    """One root filesystem cache for the whole session, removed at the end."""
    path = Path(tempfile.mkdtemp(prefix="rnr-cache-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def scratch():
    """A temporary directory removed when the test ends (pytest's tmp_path keeps the last runs')."""
    path = Path(tempfile.mkdtemp(prefix="rnr-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def token() -> str:
    """A unique host name: it shows in the cmdline of runner, child and init."""
    return f"rnr-{uuid.uuid4().hex[:10]}"


def start(box, cache: Path, *args: str, env: dict[str, str] | None = None,
          timeout: float = 60) -> subprocess.CompletedProcess:
    """`runner start ARGS` with the sandbox as its host."""
    return box.run(*RUNNER, *args, env={"RUNNER_CACHE_DIR": str(cache), **(env or {})}, timeout=timeout)


def popen(box, cache: Path, *args: str) -> subprocess.Popen:
    """Like :func:`start`, but running: its pid is runner's (`ip netns exec` execs, it does not fork)."""
    return subprocess.Popen(["ip", "netns", "exec", box.name, "env", f"RUNNER_CACHE_DIR={cache}", *RUNNER, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})


def netns_entries() -> set[str]:
    try:
        return set(os.listdir("/var/run/netns"))
    except FileNotFoundError:
        return set()


def stale(entry: str) -> bool:
    """A /var/run/netns/PID link whose process is gone: left behind.

    Entries of live processes are let be: other runs on this machine (other
    test sessions) expose their containers' netns while they configure them.
    """
    path = os.path.join("/var/run/netns", entry)
    return entry.isdigit() and os.path.islink(path) and not os.path.exists(f"/proc/{entry}")


def host_links(box) -> dict[str, str]:
    """The sandbox host's links, name -> kind."""
    data = json.loads(box.ip("-j", "-d", "link", "show").stdout)
    return {link["ifname"]: link.get("linkinfo", {}).get("info_kind", "") for link in data}


def records_of(box) -> list[str]:
    """netsetter's records of containers on the sandbox host (see netsetter/host/records.py)."""
    from netsetter.host import state_dir
    from nskit.netns import cookie

    folder = Path(state_dir.host_dir(cookie(f"/var/run/netns/{box.name}"))) / "containers"
    return sorted(p.name for p in folder.glob("*.json")) if folder.is_dir() else []


def wait_gone(name: str) -> None:
    """Wait (by pidfd, 10 s each) for the processes whose command line has ``name`` to end:
    the chain of parent-death signals is asynchronous."""
    for entry in processes_with(name):
        try:
            fd = os.pidfd_open(int(entry.split(":")[0]))
        except ProcessLookupError:
            continue
        try:
            assert select.select([fd], [], [], 10)[0], f"still running: {entry}"
        finally:
            os.close(fd)


def processes_with(marker: str) -> list[str]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if marker in cmdline:
                found.append(f"{entry}: {cmdline}")
    return found


def mounts_with(text: str) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line for line in f if text in line]


class Leftovers:
    """What exists before a run, to compare with what exists after it."""

    def __init__(self, box, marker: str, cache: Path) -> None:
        self.box, self.marker, self.cache = box, marker, cache
        self.entries = netns_entries()

    def after(self) -> list[str]:
        problems = [f"process left: {p}" for p in processes_with(self.marker)]
        problems += [f"mount left: {m}" for m in mounts_with(str(self.cache))]
        problems += [f"/var/run/netns entry left: {e}" for e in netns_entries() - self.entries if stale(e)]
        problems += [f"link left on the host: {name} ({kind})" for name, kind in host_links(self.box).items()
                     if kind == "veth"]
        problems += [f"netsetter record left: {r}" for r in records_of(self.box)]
        return problems
