"""Issue 14 point 5: SIGINT/SIGTERM at any moment, once or twice, leave the finished network
(exit 0) or nothing (exit 130/143, "undone"), never a half of it and never a traceback.

Each trial starts `netsetter PID` in a sandbox, sends the signal after a random delay
spread over a whole run (and, for "twice", again 1-5 ms later), then looks: exit 0 and
the script's network, which `down --bridge` then removes; or 130/143, one line, and the
sandbox exactly as before: links, addresses, routes of both namespaces, /var/run/netns,
netsetter's records and leases, temporary files included.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest

from backends import NAMES

from .sandbox import ROOT, front

WORDS = {signal.SIGINT: (130, "netsetter: interrupted"), signal.SIGTERM: (143, "netsetter: terminated")}


def everything(box, c) -> dict:
    """What a run may change; the state folders listed whole (a leaked `.tmp` counts)."""
    from netsetter.host import state_dir
    from nskit.netns import cookie

    folder = state_dir.host_dir(cookie(box.path))

    def listing(sub: str) -> list[str]:
        path = os.path.join(folder, sub)
        return sorted(os.listdir(path)) if os.path.isdir(path) else []

    return {"host": box.snapshot(), "container": c.snapshot(), "entry": os.path.lexists(f"/var/run/netns/{c.pid}"),
            "records": listing("containers"), "leases": listing("leases"),
            "lease-files": listing("leases/brg-demo")}


def start(box, c, backend: str) -> subprocess.Popen:
    # The installed command, as a user runs it: `ip netns exec` execs it at once, and it execs
    # env and python, so the signal below reaches netsetter itself. Its front blocks SIGINT and
    # SIGTERM over the interpreter's start-up (bin/netsetter), where CPython's own handler
    # would print a traceback.
    return subprocess.Popen(["ip", "netns", "exec", box.name, front("netsetter"), str(c.pid),
                             "--backend", backend], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})


def trial(box, c, backend: str, before: dict, sig: signal.Signals, delay: float, twice: float | None) -> str:
    """One run signalled after ``delay`` s (again ``twice`` s later); says how it ended."""
    run = start(box, c, backend)
    time.sleep(delay)
    run.send_signal(sig)
    if twice is not None:
        time.sleep(twice)
        run.send_signal(sig)
    _, err = run.communicate(timeout=60)
    where = f"{sig.name} after {delay * 1000:.0f} ms{'' if twice is None else ' and twice'}, {backend}"
    assert "Traceback" not in err, f"{where}: {err}"
    if run.returncode == 0:
        shown = c.run("ip", "-o", "-4", "addr", "show", "veth_conta").stdout
        assert "10.10.10.101/24" in shown, where
        assert "default via 10.10.10.100" in c.run("ip", "route").stdout, where
        down = box.netsetter("down", str(c.pid), "--bridge", "--backend", backend)
        assert down.returncode == 0, f"{where}: {down.stderr}"
        assert everything(box, c) == before, f"{where}: down after a finished run"
        return "finished"
    status, line = WORDS[sig]
    if run.returncode < 0:  # killed before the front's exec of python (in ip, sh or env)
        assert run.returncode == -sig, f"{where}: {err}"
    else:
        assert (run.returncode, err.strip().splitlines()[-1:]) == (status, [line]), f"{where}: {err}"
        assert len(err.strip().splitlines()) == 1, f"{where}: {err}"
    assert everything(box, c) == before, f"{where}: exit {run.returncode} but the sandbox changed"
    return "undone"


def span_of_a_run(box, c, backend: str, before: dict, runs: int) -> float:
    """How long an unsignalled run takes, started as the trials start theirs: the median of
    ``runs``, so that one run slowed or sped by the rest of the machine does not set the scale."""
    spans = []
    for _ in range(runs):
        started = time.monotonic()
        run = start(box, c, backend)
        _, err = run.communicate(timeout=60)
        spans.append(time.monotonic() - started)
        assert run.returncode == 0, err
        assert box.netsetter("down", str(c.pid), "--bridge", "--backend", backend).returncode == 0
        assert everything(box, c) == before
    return sorted(spans)[runs // 2]


def trials(sandbox, backend: str, count: int, seed: int, spans: int = 1) -> dict[str, int]:
    box = sandbox()
    c = box.container()
    before = everything(box, c)
    span = span_of_a_run(box, c, backend, before, spans)
    rng = random.Random(seed)
    seen = {"finished": 0, "undone": 0}
    for _ in range(count):
        sig = rng.choice([signal.SIGINT, signal.SIGTERM])
        twice = rng.uniform(0.001, 0.005) if rng.random() < 0.5 else None
        seen[trial(box, c, backend, before, sig, rng.uniform(0.05, 1.5) * span, twice)] += 1
    return seen


@pytest.mark.parametrize("backend", NAMES)
def test_a_signal_at_random_moments_leaves_all_or_nothing(sandbox, backend):
    trials(sandbox, backend, 4, seed=5)


@pytest.mark.slow
@pytest.mark.parametrize("backend", NAMES)
def test_forty_signals_once_or_twice_leave_all_or_nothing(sandbox, backend):
    seen = trials(sandbox, backend, 40, seed=14, spans=3)
    assert seen["finished"] and seen["undone"], seen  # the delays reached both sides of the end


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_start_up_imports_is_one_line(sandbox, sig):
    box = sandbox()
    c = box.container()
    before = everything(box, c)
    # 150 ms: past the interpreter's start, within typer's and the engine's imports.
    assert trial(box, c, "ip", before, sig, 0.15, None) == "undone"


def paused_line(fifo, run: subprocess.Popen, timeout: float = 30) -> str:
    """The line the pause hook writes, or "" should the run end (or hang) before it."""
    import select

    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        deadline, got = time.monotonic() + timeout, b""
        while not got.endswith(b"\n") and time.monotonic() < deadline and run.poll() is None:
            if select.select([fd], [], [], 0.1)[0]:
                got += os.read(fd, 100)
        return got.decode()
    finally:
        os.close(fd)


def test_ls_shows_the_marked_links_of_a_killed_run(sandbox, tmp_path):
    import json

    box = sandbox()
    c = box.container()
    before = everything(box, c)
    fifo = tmp_path / "pause"
    os.mkfifo(fifo)
    run = subprocess.Popen(["ip", "netns", "exec", box.name, "env", f"NETSETTER_TEST_PAUSE_AT=veth-host-master:{fifo}",
                            sys.executable, "-m", "netsetter", str(c.pid), "--backend", "ip"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert paused_line(fifo, run) == "paused veth-host-master\n"
    run.kill()
    run.wait()
    shown = box.netsetter("ls", "--json")
    assert shown.returncode == 0, shown.stderr
    half = json.loads(shown.stdout)["links_without_record"]
    assert [link["name"] for link in half] == ["brg-demo", "veth_host"], half
    assert all(f"pid:{c.pid}:" in link["owner"] for link in half), half
    plain = box.netsetter("ls")
    assert "veth_host: made by netsetter for" in plain.stdout, plain.stdout
    assert box.netsetter(str(c.pid)).returncode == 0  # recovered: a finished record names them all
    assert json.loads(box.netsetter("ls", "--json").stdout)["links_without_record"] == []
    assert box.netsetter("down", str(c.pid), "--bridge").returncode == 0
    assert json.loads(box.netsetter("ls", "--json").stdout)["links_without_record"] == []
    assert everything(box, c) == before


def test_the_ip_and_iptables_that_netsetter_runs_have_sigint_and_sigterm_unblocked(sandbox, tmp_path):
    # Each step runs in a deferred() section (SIGINT and SIGTERM blocked), and execve() keeps the
    # mask: an `ip` or `iptables` forked there ran with both blocked, and one that hung could not be
    # stopped by them. Stand-ins first on PATH write the mask and the ignored set they were given.
    import shutil

    log = tmp_path / "masks"
    for name in ("ip", "iptables"):
        real = shutil.which(name)
        assert real, f"{name} is not installed"
        stand_in = tmp_path / name
        stand_in.write_text(f'#!/bin/sh\necho "{name} $(grep -E "^Sig(Blk|Ign)" /proc/$$/status | tr "\\n" " ")'
                            f'" >> {log}\nexec {real} "$@"\n')
        stand_in.chmod(0o755)
    box = sandbox()
    c = box.container()
    path = f"{tmp_path}:{os.environ['PATH']}"
    run = box.run(front("netsetter"), str(c.pid), "--backend", "ip", "--masquerade", env={"PATH": path})
    assert run.returncode == 0, run.stderr
    down = box.run(front("netsetter"), "down", str(c.pid), "--bridge", "--backend", "ip", env={"PATH": path})
    assert down.returncode == 0, down.stderr
    stopping = (1 << (signal.SIGINT - 1)) | (1 << (signal.SIGTERM - 1))
    seen = {"ip": 0, "iptables": 0}
    for line in log.read_text().splitlines():
        name, _, blocked, _, ignored = line.split()
        seen[name] += 1
        assert not int(blocked, 16) & stopping and not int(ignored, 16) & stopping, line
    assert seen["ip"] >= 10 and seen["iptables"] >= 1, seen
