"""The article's own mode: runner run by a user who is not root.

The test makes a temporary system user and removes it at the end. The
container's root is that user; --no-net needs no privilege at all, and the
network step (`sudo -n netsetter`) fails with an error that suggests --no-net.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

from .sandbox import ROOT
from .test_runner_support import Leftovers, token


def userns_allowed() -> str | None:
    """Why unprivileged user namespaces are off here, or None."""
    for path, bad in (("/proc/sys/kernel/unprivileged_userns_clone", "0"), ("/proc/sys/user/max_user_namespaces", "0"),
                      ("/proc/sys/kernel/apparmor_restrict_unprivileged_userns", "1")):
        try:
            if Path(path).read_text().strip() == bad:
                return f"{path} is {bad}"
        except FileNotFoundError:
            pass
    return None


@pytest.fixture(scope="module")
def user():
    reason = userns_allowed()
    if reason:
        pytest.skip(f"unprivileged user namespaces are off: {reason}")
    name = f"rnr{uuid.uuid4().hex[:8]}"
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name], check=True)
    home = Path(tempfile.mkdtemp(prefix="rnr-home-"))
    try:
        entry = pwd.getpwnam(name)
        os.chown(home, entry.pw_uid, entry.pw_gid)
        yield entry, home
    finally:
        subprocess.run(["userdel", name], check=False)
        shutil.rmtree(home, ignore_errors=True)


def as_user(user, python: str) -> list[str]:
    """The argv prefix that runs ``python`` as the user, with a clean environment."""
    entry, home = user
    site = next(p for p in sys.path if p.endswith("site-packages"))
    # No --cache-dir: the default for a user who is not root, under $XDG_CACHE_HOME.
    return ["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--clear-groups", "env", "-i",
            f"HOME={home}", f"XDG_CACHE_HOME={home}/.cache", f"PYTHONPATH={ROOT}:{site}", "PATH=/usr/bin:/bin",
            python]


def python_for(user) -> str:
    """An interpreter the user can run, with this project and its dependencies importable.

    The venv's python may live under a directory the user cannot enter
    (pyenv under /root); then the system python3 of the same version runs
    with the venv's site-packages on PYTHONPATH.
    """
    for python in (sys.executable, f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}"):
        probe = subprocess.run([*as_user(user, python), "-c", "import typer, runner"], capture_output=True, cwd="/")
        if probe.returncode == 0:
            return python
    pytest.skip("no python interpreter the test user can run")


def run_as(box, user, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", "netns", "exec", box.name, *as_user(user, python_for(user)),
                           "-m", "runner", "start", *args], capture_output=True, text=True, timeout=60, cwd="/")
def test_user_runs_a_container_without_network(sandbox, user):
    entry, home = user
    box = sandbox()
    name = token()
    leftovers = Leftovers(box, name, home)
    proc = run_as(box, user, "--no-net", "--hostname", name, "--", "/bin/sh", "-c",
                  "id -u; hostname; cat /proc/self/uid_map /proc/self/gid_map; ip -o link | cut -d: -f2; "
                  "touch /tmp/x && echo writable")
    assert proc.returncode == 0, proc.stderr
    lines = [line.split() for line in proc.stdout.splitlines()]
    assert lines[0] == ["0"]
    assert lines[1] == [name]
    assert lines[2] == ["0", str(entry.pw_uid), "1"]  # container root is the user, and only that
    assert lines[3] == ["0", str(entry.pw_gid), "1"]
    assert lines[4:] == [["lo"], ["writable"]]
    # The built-in root was built in the user's own cache, owned by the user.
    built = next((home / ".cache" / "ns-proc" / "rootfs").iterdir())
    assert built.name.startswith("busybox-") and built.stat().st_uid == entry.pw_uid
    assert leftovers.after() == []


def test_user_without_sudo_rights_is_told_about_no_net(sandbox, user):
    box = sandbox()
    name = token()
    leftovers = Leftovers(box, name, user[1])
    proc = run_as(box, user, "--hostname", name, "--", "/bin/true")
    assert proc.returncode == 125
    assert proc.stderr.startswith("runner: error: failed to set up the network of pid ")
    assert "sudo" in proc.stderr and proc.stderr.rstrip().endswith("--no-net")
    assert proc.stderr.count("\n") == 1
    assert leftovers.after() == []
