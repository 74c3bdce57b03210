"""`runner exec` and `runner start`, tried from inside as an attacker would (h-attack).

Found by attacking them: the command of `runner exec` got every descriptor runner exec was
started with (a shell's `exec 7< /` was the host's root, listed from inside through
/proc/self/fd/7), and ran as the host's root left unmapped (65534 inside, no capability, the
host's groups), owner of every host file such a descriptor reached. With --map-root-to-caller
(container root is host root), the command could `mount -o remount,rw /proc/sys` and open
kernel.core_pattern for writing: the masks are not locked mounts, CAP_SYS_ADMIN undid them.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
from contextlib import contextmanager
from typing import Iterator

from .sandbox import ROOT
from .test_runner_support import cache_dir, popen  # noqa: F401

RUNNER = [sys.executable, "-m", "runner"]


@contextmanager
def running(box, cache_dir, *options: str) -> Iterator[int]:  # noqa: F811
    """A `runner start` container of ``box`` that waits; yields the pid to enter (its init's
    child: the process `runner exec` is pointed at); ended by SIGTERM afterwards."""
    container = popen(box, cache_dir, *options, "--", "/bin/sh", "-c", "echo up; exec sleep 60")
    try:
        assert container.stdout is not None and container.stdout.readline().strip() == "up"
        yield int(subprocess.run(["pgrep", "-P", str(container.pid)], capture_output=True, text=True).stdout.split()[0])
    finally:
        container.send_signal(signal.SIGTERM)
        container.wait(timeout=30)
        if container.stdout:
            container.stdout.close()


def test_runner_exec_passes_no_descriptor_and_runs_as_the_containers_root(sandbox, cache_dir, tmp_path):  # noqa: F811
    box = sandbox()
    secret = tmp_path / "host-dir"
    secret.mkdir()
    (secret / "secret").write_text("host data\n")
    with running(box, cache_dir, "--no-net") as child:
        probe = ("echo fds=$(ls /proc/self/fd | tr '\\n' ' '); cat /proc/self/fd/7/secret 2>/dev/null; "
                 "echo uid=$(id -u) gid=$(id -g) groups=$(id -G); grep CapEff /proc/self/status")
        argv = shlex.join(["ip", "netns", "exec", box.name, *RUNNER, "exec", str(child), "--", "/bin/sh", "-c", probe])
        proc = subprocess.run(["sh", "-c", f"exec 7< {shlex.quote(str(secret))}; exec {argv}"], capture_output=True,
                              text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    assert "host data" not in proc.stdout
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["fds=0", "1", "2", "3"]  # ls's own: stdio and the directory it reads
    assert lines[1] == "uid=0 gid=0 groups=0"
    assert lines[2].split()[1] != "0000000000000000"  # root of its own user namespace, as in the container


ESCAPE = """
p=/proc/sys/kernel/core_pattern
mount -o remount,rw /proc/sys 2>/dev/null && echo remount=yes || echo remount=no
(exec 3>>$p) 2>/dev/null && echo core_pattern=openable || echo core_pattern=refused
mkdir -p /tmp/p; mount -t proc p /tmp/p 2>/dev/null && echo proc=mounted || echo proc=refused
umount /proc/keys 2>/dev/null && echo unmask=yes || echo unmask=no
"""
HELD = ["remount=no", "core_pattern=refused", "proc=refused", "unmask=no"]


def test_container_root_that_is_host_root_cannot_undo_the_proc_masks(sandbox, cache_dir):  # noqa: F811
    """Opening core_pattern for writing only (the shell's `3>>`): nothing is written, even when it opens."""
    box = sandbox()
    start = box.run(*RUNNER, "start", "--no-net", "--map-root-to-caller", "--", "/bin/sh", "-c", ESCAPE,
                    env={"RUNNER_CACHE_DIR": str(cache_dir)})
    assert start.returncode == 0, start.stderr
    assert start.stdout.split() == HELD
    with running(box, cache_dir, "--no-net", "--map-root-to-caller") as child:
        entered = box.run(*RUNNER, "exec", str(child), "--", "/bin/sh", "-c", ESCAPE)
    assert entered.returncode == 0, entered.stderr
    assert entered.stdout.split() == HELD
