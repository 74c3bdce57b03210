"""dev.sh as a newcomer meets it: a fresh clone, the packages already on the machine.

The clone is of this worktree's HEAD with its uncommitted changes to tracked
files on top (`git diff HEAD`), made once for the module: its first
`./dev.sh run` makes the virtualenv, the other tests reuse it.

`./dev.sh run` runs here in the namespace the tests run in (the machine's own,
under `./dev.sh test`): that is allowed only because dev.sh makes a throwaway
namespace for the container's host itself. The tests check that it does:
that namespace must show the same links, addresses and routes afterwards,
and `ip monitor` running there meanwhile must see none of the container's
network go by. `--host` and `run PID`, which configure the namespace they
run in, run inside sandboxes.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from .sandbox import ROOT

# One worker runs this module (-n): its clone and venv are made once. sandboxes(pid) sees
# only those of the dev.sh run with that pid (dev.sh names them nsp-dev-PID-RANDOM), not
# those of other runs on the machine.
# slow: every test here stands on a fresh clone that dev.sh installs (a venv from PyPI, byte
# code compiled), about 35 s of one worker: the quick lane leaves them to ./dev.sh test.
pytestmark = [pytest.mark.xdist_group("devsh"), pytest.mark.slow]

PROBE = "ip -4 addr; ip route; ping -c1 -W 5 10.10.10.100"
PREFIX = "nsp-dev-"  # dev.sh's own sandboxes
INSTALL_TIMEOUT = 900  # a first run makes the venv: pip, compileall
RUN_TIMEOUT = 120
# What a package manager is called by; each is replaced by a loud failure on PATH.
PACKAGE_MANAGERS = ("apt-get", "apt", "apt-cache", "aptitude", "dpkg", "dpkg-query", "pip", "pip3")


def fresh_clone(where: Path) -> Path:
    subprocess.run(["git", "clone", "-q", str(ROOT), str(where)], check=True)
    diff = subprocess.run(["git", "-C", str(ROOT), "diff", "HEAD", "--binary"], capture_output=True,
                          check=True).stdout
    if diff:
        subprocess.run(["git", "-C", str(where), "apply"], input=diff, check=True)
    return where


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory):
    top = tmp_path_factory.mktemp("devsh")
    try:
        yield fresh_clone(top / "ns-proc")
    finally:
        shutil.rmtree(top, ignore_errors=True)


@pytest.fixture(scope="module")
def installed(clone: Path) -> Path:
    """The clone after a first `./dev.sh run` (done by the first test, when it ran)."""
    if not (clone / ".venv" / ".installed").exists():
        proc = devsh(clone, "run", "--", "/bin/true", timeout=INSTALL_TIMEOUT)
        assert proc.returncode == 0, proc.stderr
    return clone


class Run(subprocess.CompletedProcess):
    pid: int  # dev.sh's: in the names of its sandboxes


def devsh(clone: Path, *args: str, netns: str | None = None, env: dict[str, str] | None = None,
          drop: tuple[str, ...] = (), timeout: float = RUN_TIMEOUT) -> Run:
    environ = {k: v for k, v in {**os.environ, **(env or {})}.items() if k not in drop}
    prefix = ["ip", "netns", "exec", netns] if netns else []  # ip execs dev.sh: the same pid
    argv = [*prefix, str(clone / "dev.sh"), *args]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environ,
                          stdin=subprocess.DEVNULL, cwd="/") as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    run = Run(argv, proc.returncode, out, err)
    run.pid = proc.pid
    return run


def machine_net() -> str:
    """This namespace's links, addresses and routes, as ip shows them (address lifetimes aside)."""
    shown = [subprocess.run(["ip", *args], capture_output=True, text=True, check=True).stdout
             for args in (["-o", "link"], ["-o", "addr"], ["route", "show", "table", "all"],
                          ["-6", "route", "show", "table", "all"])]
    return re.sub(r"(valid|preferred)_lft \S+", "", "".join(shown))


def sandboxes(pid: int) -> set[str]:
    """The sandboxes of the dev.sh with this pid that are still there."""
    try:
        return {name for name in os.listdir("/var/run/netns") if name.startswith(f"{PREFIX}{pid}-")}
    except FileNotFoundError:
        return set()


def state_dirs() -> set[str]:
    try:
        return set(os.listdir("/run/ns-proc"))
    except FileNotFoundError:
        return set()


def saw_probe(stdout: str) -> None:
    assert re.search(r"inet 10\.10\.10\.101/24 .*veth_conta", stdout), stdout
    assert re.search(r"^default via 10\.10\.10\.100 dev veth_conta", stdout, re.M), stdout
    assert re.search(r"bytes from 10\.10\.10\.100", stdout), stdout


class Monitor:
    """`ip monitor` on this namespace's links, addresses and routes, while a block runs."""

    def __enter__(self) -> "Monitor":
        self.proc = subprocess.Popen(["ip", "-o", "monitor", "link", "address", "route"], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        time.sleep(0.2)  # subscribed
        return self

    def __exit__(self, *exc: object) -> None:
        time.sleep(0.2)
        self.proc.terminate()
        self.events = self.proc.communicate(timeout=10)[0]

    def ours(self) -> list[str]:
        return [e for e in self.events.splitlines() if re.search(r"brg-demo|veth_|10\.10\.10\.", e)]


class SandboxWatch:
    """The netns cookie of each dev.sh sandbox seen while a block runs, by name (polled).
    Cookies, not inodes: a freed netns inode is soon another live netns's, with a folder of
    its own."""

    def __enter__(self) -> "SandboxWatch":
        import threading

        self.cookies: dict[str, int] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()
        return self

    def _poll(self) -> None:
        from nskit.netns import cookie

        while not self.stop.wait(0.01):
            try:
                names = [n for n in os.listdir("/var/run/netns") if n.startswith(PREFIX)]
            except FileNotFoundError:
                continue
            for name in names:
                try:
                    self.cookies.setdefault(name, cookie(f"/var/run/netns/{name}"))
                except OSError:  # gone meanwhile
                    pass

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def test_run_in_a_fresh_clone_leaves_the_machine_as_it_was(clone: Path) -> None:
    before = machine_net()
    with Monitor() as seen, SandboxWatch() as watched:
        proc = devsh(clone, "run", "--", "/bin/sh", "-c", PROBE, timeout=INSTALL_TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    saw_probe(proc.stdout)
    assert seen.ours() == []
    assert machine_net() == before
    assert sandboxes(proc.pid) == set()
    # What netsetter kept for the sandbox host (/run/ns-proc/netns-<cookie>) went with it;
    # judged by the sandbox's own cookie: other tests' folders come and go meanwhile.
    cookies = [c for name, c in watched.cookies.items() if name.startswith(f"{PREFIX}{proc.pid}-")]
    assert cookies, "dev.sh's sandbox was never seen"
    assert [c for c in cookies if os.path.lexists(f"/run/ns-proc/netns-{c}")] == []
    assert (clone / ".venv" / ".installed").exists()


def stubs(where: Path) -> tuple[Path, Path]:
    """A PATH directory where every package manager fails loudly, and the log of their calls."""
    where.mkdir()
    log = where / "calls.log"
    for name in PACKAGE_MANAGERS:
        stub = where / name
        stub.write_text(f'#!/bin/sh\necho "{name} $*" >>{log}\necho "stub: {name} must not run" >&2\nexit 97\n')
        stub.chmod(0o755)
    return where, log


def files(top: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_mtime_ns, p.stat().st_size) for p in top.rglob("*")
            if p.is_file() and ".git" not in p.relative_to(top).parts}


def test_a_second_run_calls_no_package_manager(installed: Path, tmp_path: Path) -> None:
    bin_dir, log = stubs(tmp_path / "bin")
    tree = files(installed)
    path = {"PATH": f"{bin_dir}:{os.environ['PATH']}"}
    assert devsh(installed, "run", "--", "/bin/true", env=path, drop=("PYTHONDONTWRITEBYTECODE",)).returncode == 0
    probe = subprocess.run(["apt-get", "update"], env={**os.environ, **path}, capture_output=True, text=True)
    assert probe.returncode == 97 and log.read_text() == "apt-get update\n"  # the stubs do work
    log.unlink()
    for args in (("run", "--", "/bin/sh", "-c", PROBE), ("run", "-p", "8080:80", "--", "/bin/true"),
                 ("bench", "--help")):
        proc = devsh(installed, *args, env=path)
        assert proc.returncode == 0, proc.stderr
        assert not log.exists(), log.read_text()
    # Nothing reinstalled (pip would rewrite its records), nothing compiled at run time.
    assert files(installed) == tree


def test_modules_are_read_from_byte_code_compiled_at_install(installed: Path) -> None:
    proc = devsh(installed, "run", "--", "/bin/true", env={"PYTHONVERBOSE": "1"}, drop=("PYTHONDONTWRITEBYTECODE",))
    assert proc.returncode == 0, proc.stderr[-2000:]
    loaded = re.findall(r"^# code object from '?([^'\n]+)'?$", proc.stderr, re.M)
    ours = [path for path in loaded if path.startswith(str(installed))]
    assert any("/runner/" in path for path in ours) and any("/site-packages/" in path for path in ours), loaded
    assert [path for path in ours if not path.endswith(".pyc")] == []


def test_sandbox_mode_leaves_no_sandbox_on_sigterm_sigint_or_failure(installed: Path) -> None:
    for signum, status in ((signal.SIGTERM, 143), (signal.SIGINT, 130)):
        # A session of its own: the signal comes from another process, not from a terminal's Ctrl-C.
        proc = subprocess.Popen([str(installed / "dev.sh"), "run", "--", "/bin/sh", "-c", "echo up; exec sleep 60"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                                start_new_session=True)
        assert proc.stdout is not None
        assert proc.stdout.readline() == "up\n"
        mine = sandboxes(proc.pid)
        assert len(mine) == 1
        from nskit.netns import cookie

        folder = f"/run/ns-proc/netns-{cookie(f'/var/run/netns/{next(iter(mine))}')}"  # by cookie: inodes are reused
        assert os.path.isdir(folder)  # the container's lease lives there
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=RUN_TIMEOUT)
        assert proc.returncode == status, err
        assert sandboxes(proc.pid) == set()
        assert not os.path.exists(folder)
    proc = devsh(installed, "run", "--bridge-addr", "10.10.10.300/24", "--", "/bin/true")
    assert proc.returncode == 2 and "10.10.10.300" in proc.stderr
    assert sandboxes(proc.pid) == set()


def test_a_sandbox_left_by_a_killed_dev_sh_goes_with_the_next_run(installed: Path) -> None:
    proc = subprocess.Popen([str(installed / "dev.sh"), "run", "--", "/bin/sh", "-c", "echo up; exec sleep 1"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "up\n"
    left = sandboxes(proc.pid)
    proc.kill()  # no trap runs
    proc.wait()
    proc.stdout.close()
    assert len(left) == 1 and left <= sandboxes(proc.pid)
    name = left.pop()
    deadline = time.monotonic() + 30
    while subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True).stdout.strip():
        assert time.monotonic() < deadline, "runner did not end with its container"
        time.sleep(0.2)
    assert devsh(installed, "run", "--", "/bin/true").returncode == 0
    assert name not in sandboxes(proc.pid)


def test_two_runs_at_once_each_in_a_sandbox_of_its_own(installed: Path) -> None:
    before = machine_net()
    runs = [subprocess.Popen([str(installed / "dev.sh"), "run", "--", "/bin/sh", "-c", PROBE],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
            for _ in range(2)]
    for run in runs:
        out, err = run.communicate(timeout=RUN_TIMEOUT)
        assert run.returncode == 0, err
        saw_probe(out)  # each has the bridge's whole subnet to itself: both get .101
    assert machine_net() == before


def test_host_and_pid_configure_the_namespace_they_run_in(installed: Path, sandbox) -> None:
    box = sandbox()
    proc = devsh(installed, "run", "--host", "--", "/bin/sh", "-c", PROBE, netns=box.name)
    assert proc.returncode == 0, proc.stderr
    saw_probe(proc.stdout)
    assert "brg-demo" in box.ip("-o", "link", "show", "type", "bridge").stdout  # made there, and it stays
    container = box.container()
    proc = devsh(installed, "run", str(container.pid), netns=box.name)
    assert proc.returncode == 0, proc.stderr
    assert "10.10.10.101/24" in container.run("ip", "-4", "addr").stdout


def test_help_says_which_commands_configure_this_namespace(installed: Path) -> None:
    for word in ("help", "--help"):
        proc = devsh(installed, word)
        assert proc.returncode == 0
        text = " ".join(proc.stdout.split())
        assert "run PID [OPTIONS]" in text and "This configures the namespace dev.sh runs in" in text
        assert "run --host" in text and "throwaway network namespace" in text
    wrong = devsh(installed, "frobnicate")
    assert wrong.returncode == 2 and wrong.stdout == "" and "usage: ./dev.sh" in wrong.stderr


def one_line(proc: subprocess.CompletedProcess) -> str:
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_in_a_namespace_without_network_it_works_or_says_what_to_do(installed: Path, sandbox,
                                                                    tmp_path: Path) -> None:
    box = sandbox()  # lo only: no route to any mirror
    works = devsh(installed, "run", "--", "/bin/sh", "-c", PROBE, netns=box.name)
    assert works.returncode == 0, works.stderr
    saw_probe(works.stdout)
    # A fresh clone there, on a machine whose pip has only the network to install from:
    bare = fresh_clone(tmp_path / "bare")
    offline_pip = {"PIP_CONFIG_FILE": os.devnull}
    proc = devsh(bare, "run", "--", "/bin/true", netns=box.name, env=offline_pip, drop=("PIP_FIND_LINKS",))
    assert proc.returncode == 1
    line = one_line(proc)
    assert line.startswith("dev.sh: error: pip could not install the project into .venv")
    assert "run ./dev.sh from the machine's own network namespace" in line
    # ... and a Debian package missing there: apt-get is not even tried.
    script = bare / "dev.sh"
    script.write_text(script.read_text().replace("RUN_DEBS=(", "RUN_DEBS=(nsproc-no-such-package ", 1))
    proc = devsh(bare, "run", "--", "/bin/true", netns=box.name)
    assert proc.returncode == 1
    line = one_line(proc)
    assert line.startswith("dev.sh: error: missing Debian packages nsproc-no-such-package: this network namespace "
                           "has no route to the package mirrors; run ./dev.sh from the machine's own network")
    assert line.endswith("install there first: apt-get install nsproc-no-such-package")
