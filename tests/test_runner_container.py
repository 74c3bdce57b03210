"""`runner start` end to end, on the real kernel, seen from inside the container.

Each test runs runner in a fresh sandbox netns that plays the host, and
checks afterwards that nothing is left: processes, mounts, /var/run/netns
entries, veth ends.
"""

from __future__ import annotations

import os
import re
import select
import signal
import socket
import subprocess

import pytest

from backends import NAMES

from .sandbox import ROOT
from .test_runner_support import (RUNNER, Leftovers, cache_dir, popen, processes_with, wait_gone,  # noqa: F401
                                  scratch, start, token)

INSIDE = """
echo "uid=$(id -u)"
echo "hostname=$(hostname)"
echo "pids=$(cd /proc && echo [0-9]*)"
ls /work >/dev/null 2>&1 && echo "host=reachable" || echo "host=unreachable"
ip -o -4 addr
ip route
ping -c1 -W5 10.10.10.100 >/dev/null && echo "ping=ok"
"""


@pytest.mark.parametrize("backend", NAMES)
def test_inside_the_container(sandbox, cache_dir, backend):
    box = sandbox()
    name = token()
    leftovers = Leftovers(box, name, cache_dir)
    host_name = socket.gethostname()
    proc = start(box, cache_dir, "--hostname", name, "--backend", backend, "--", "/bin/sh", "-c", INSIDE)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "uid=0" in out
    assert f"hostname={name}" in out
    assert socket.gethostname() == host_name  # the sandbox shares the machine's UTS namespace
    # PID 1 is runner's init, 2 the shell, the rest its children: no host process.
    pids = [int(p) for p in re.search(r"pids=(.*)", out).group(1).split()]
    assert 1 in pids and 2 in pids and max(pids) < 20, pids
    assert "host=unreachable" in out
    assert re.search(r"^\d+: lo +inet 127\.0\.0\.1/8", out, re.M)
    assert re.search(r"^\d+: veth_conta +inet 10\.10\.10\.101/24", out, re.M)
    assert "default via 10.10.10.100 dev veth_conta" in out
    assert "ping=ok" in out
    assert leftovers.after() == []


def test_tcp_to_the_bridge(sandbox, cache_dir):
    box = sandbox()
    # The listener binds the wildcard address before runner makes the bridge.
    with box.hello_server() as port:
        proc = start(box, cache_dir, "--", "/bin/sh", "-c", f"nc -w 5 10.10.10.100 {port} </dev/null")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "hello 10.10.10.101"


@pytest.mark.parametrize("script, status", [("exit 7", 7), ("kill -9 $$", 128 + 9), ("true", 0)])
def test_exit_status_is_the_commands(sandbox, cache_dir, script, status):
    box = sandbox()
    proc = start(box, cache_dir, "--no-net", "--", "/bin/sh", "-c", script)
    assert proc.returncode == status, proc.stderr
    assert proc.stderr == ""


@pytest.mark.parametrize("command, status, cause", [("/bin/nonexistent", 127, "No such file or directory"),
                                                    ("/etc/passwd", 126, "Permission denied")])
def test_command_that_cannot_run(sandbox, cache_dir, command, status, cause):
    box = sandbox()
    proc = start(box, cache_dir, "--no-net", "--", command)
    assert proc.returncode == status
    assert proc.stderr == f'runner: error: failed to execute "{command}": {cause}\n'


def test_no_net_gives_only_lo(sandbox, cache_dir):
    box = sandbox()
    proc = start(box, cache_dir, "--no-net", "--", "/bin/sh", "-c", "ip -o link; ping -c1 -W2 127.0.0.1 >/dev/null && echo lo=ok")
    assert proc.returncode == 0, proc.stderr
    links = [line.split(":")[1].strip() for line in proc.stdout.splitlines() if re.match(r"^\d+:", line)]
    assert links == ["lo"]
    assert "lo=ok" in proc.stdout
    assert "brg-demo" not in box.ip("link").stdout  # --no-net touches nothing on the host


def test_clean_environment(sandbox, cache_dir):
    box = sandbox()
    proc = start(box, cache_dir, "--no-net", "--env", "FOO=bar=baz", "-e", "EMPTY=", "--", "/usr/bin/env",
                 env={"LEAK": "secret", "TERM": "vt100"})
    assert proc.returncode == 0, proc.stderr
    env = dict(line.split("=", 1) for line in proc.stdout.splitlines())
    assert env == {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root",
                   "TERM": "vt100", "PS1": "-[namespace-process]-# ", "FOO": "bar=baz", "EMPTY": ""}


def test_nothing_left_behind_in_the_hosts_mount_table(sandbox, cache_dir):
    # `ip netns exec` gives its command a mount namespace of its own, which would
    # hide a leak; nsenter --net changes the netns alone, so runner's mount
    # namespace is a direct child of the host's and a leak would show here.
    box = sandbox()
    name = token()
    leftovers = Leftovers(box, name, cache_dir)
    proc = subprocess.run(["nsenter", f"--net=/var/run/netns/{box.name}", "env", f"RUNNER_CACHE_DIR={cache_dir}",
                           *RUNNER, "--hostname", name, "--", "/bin/sh", "-c", "cut -d' ' -f5 /proc/self/mountinfo"],
                          capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    # /, /proc with its read-only and masked parts, /dev and its bound devices: none of the host's.
    points = proc.stdout.split()
    assert points[0] == "/" and points.count("/") == 1
    assert all(p == "/proc" or p.startswith("/proc/") or p == "/dev" or p.startswith("/dev/") for p in points[1:]), points
    assert leftovers.after() == []


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_signal_reaches_the_command_and_cleanup_runs(sandbox, cache_dir, signum):
    box = sandbox()
    name = token()
    leftovers = Leftovers(box, name, cache_dir)
    # `wait` returns as soon as a trapped signal arrives; a foreground sleep would finish first.
    script = f"trap 'echo got {signum.name}; exit 3' {signum.name[3:]}; echo ready; sleep 60 & wait"
    proc = popen(box, cache_dir, "--hostname", name, "--", "/bin/sh", "-c", script)
    try:
        assert proc.stdout.readline() == "ready\n"
        os.kill(proc.pid, signum)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert out == f"got {signum.name}\n", err
    assert proc.returncode == 3
    assert leftovers.after() == []


def test_signal_that_ends_the_command_gives_128_plus_n(sandbox, cache_dir):
    box = sandbox()
    proc = popen(box, cache_dir, "--no-net", "--", "/bin/sh", "-c", "echo ready; exec sleep 60")
    try:
        assert proc.stdout.readline() == "ready\n"
        os.kill(proc.pid, signal.SIGTERM)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 128 + signal.SIGTERM


def test_killed_runner_leaves_no_process(sandbox, cache_dir):
    # SIGKILL cannot be caught: the kernel's parent-death signal takes the child,
    # init and with it the whole PID namespace down.
    box = sandbox()
    name = token()
    proc = popen(box, cache_dir, "--no-net", "--hostname", name, "--", "/bin/sh", "-c",
                 f"echo ready; exec sleep 60 {name}")
    try:
        assert proc.stdout.readline() == "ready\n"
        assert processes_with(name)
        proc.kill()
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    # The chain of parent-death signals is asynchronous: wait for each process by its pidfd.
    wait_gone(name)
    assert processes_with(name) == []


def test_timeout_is_an_error_and_undoes_the_network(sandbox, cache_dir):
    box = sandbox()
    name = token()
    leftovers = Leftovers(box, name, cache_dir)
    proc = start(box, cache_dir, "--hostname", name, "--backend", "ip", "--timeout", "0.01", "--", "/bin/true")
    assert proc.returncode == 125
    assert re.fullmatch(r"runner: error: timed out after 0\.01 s waiting for .* \(see --timeout\)\n", proc.stderr)
    assert leftovers.after() == []


def test_network_failure_stops_the_container(sandbox, cache_dir):
    # A link of the host veth end's name, asked for by name, already exists: netsetter
    # refuses, the container is killed before its command runs, and that link is left alone.
    box = sandbox()
    box.ip("link", "add", "veth_host", "type", "bridge")  # any kind; this kernel has no dummy driver
    name = token()
    leftovers = Leftovers(box, name, cache_dir)
    proc = start(box, cache_dir, "--hostname", name, "--veth-host", "veth_host", "--",
                 "/bin/sh", "-c", "echo should not run")
    assert proc.returncode == 125
    assert proc.stdout == ""
    assert proc.stderr.startswith('runner: error: failed to set up the network of container "')
    assert "a link of that name already exists" in proc.stderr and proc.stderr.count("\n") == 1
    assert "veth_host" in box.ip("link", "show", "veth_host").stdout
    assert leftovers.after() == []


def test_failure_inside_is_reported_first(sandbox, cache_dir, scratch):
    # A root whose /proc is a file: init cannot mount there, exits, and the
    # network step then fails too; the error shown is init's.
    box = sandbox()
    name = token()
    leftovers = Leftovers(box, name, cache_dir)
    root = scratch / "root"
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "true").write_text("")
    (root / "proc").write_text("not a directory")
    proc = start(box, cache_dir, "--hostname", name, "--rootfs", str(root), "--", "/bin/true")
    assert proc.returncode == 125
    assert proc.stderr == f'runner: error: failed to create mount point "{root}/proc": File exists\n'
    assert leftovers.after() == []


def test_interactive_shell_on_a_terminal(sandbox, cache_dir):
    import pty

    box = sandbox()
    argv = ["ip", "netns", "exec", box.name, "env", f"RUNNER_CACHE_DIR={cache_dir}", f"PYTHONPATH={ROOT}",
            *RUNNER, "--no-net"]
    pid, fd = pty.fork()  # the child gets the terminal as its controlling tty, as in a login
    if pid == 0:
        try:
            os.execvp(argv[0], argv)
        finally:
            os._exit(127)
    output = b""
    try:
        os.write(fd, b"echo hello from $$\nexit 5\n")
        while select.select([fd], [], [], 30)[0]:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the other side of the terminal is closed
                break
            if not chunk:
                break
            output += chunk
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    text = output.decode(errors="replace")
    assert "-[namespace-process]-# " in text
    assert "hello from 2" in text  # the shell is PID 2, under runner's init
    assert os.waitstatus_to_exitcode(status) == 5
