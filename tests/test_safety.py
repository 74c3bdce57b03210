"""Rollback, signals, teardown, re-runs and locking: the host is left as it was found."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from backends import NAMES
from netsetter.steps import STEPS

from .sandbox import NETSETTER, ROOT


def lo_up(container) -> bool:
    return "UP" in json.loads(container.run("ip", "-j", "link", "show", "lo").stdout)[0]["flags"]


def state(box, container):
    """Everything a run may change: both namespaces (lo included), the entry, the records."""
    records = box.run("sh", "-c", "ls /run/ns-proc/net-$(stat -Lc %i /proc/self/ns/net)/containers "
                                  "2>/dev/null || true").stdout.split()
    return (box.snapshot(), container.snapshot(), lo_up(container),
            os.path.lexists(f"/var/run/netns/{container.pid}"), records)


@pytest.mark.parametrize("backend", NAMES)
@pytest.mark.parametrize("step", [s.name for s in STEPS])
def test_failure_at_any_step_leaves_the_sandbox_as_it_was(sandbox, backend, step):
    box = sandbox()
    c = box.container()
    before = state(box, c)
    proc = box.netsetter(str(c.pid), "--backend", backend, env={"NETSETTER_TEST_FAIL_AT": step})
    assert proc.returncode == 1
    assert proc.stderr.strip() == (f"netsetter: error: step '{step}' failed: failed to run step \"{step}\": "
                                   "failure injected by NETSETTER_TEST_FAIL_AT")
    assert state(box, c) == before


@pytest.mark.parametrize("backend", NAMES)
def test_rollback_leaves_a_reused_bridge_and_its_ports_alone(sandbox, backend):
    box = sandbox()
    c = box.container()
    box.ip("link", "add", "name", "brg-demo", "type", "bridge")
    box.ip("addr", "add", "10.10.10.100/24", "dev", "brg-demo")
    box.ip("link", "add", "other0", "type", "veth", "peer", "name", "other1")
    box.ip("link", "set", "other0", "master", "brg-demo")
    before = state(box, c)
    proc = box.netsetter(str(c.pid), "--backend", backend, "--json",
                         env={"NETSETTER_TEST_FAIL_AT": "netns-hide"})
    assert proc.returncode == 1
    undone = {s["name"]: s["undo"] for s in json.loads(proc.stdout)["steps"] if s["undo"]}
    assert set(undone) == {"bridge-up", "veth-add", "netns-expose", "container-lo-up"}
    assert undone["bridge-up"] == "brg-demo is down again"
    assert state(box, c) == before


def pause_at(tmp_path, step):
    fifo = tmp_path / "pause"
    os.mkfifo(fifo)
    return fifo, {"NETSETTER_TEST_PAUSE_AT": f"{step}:{fifo}"}


@pytest.mark.parametrize("sig,status,word", [(signal.SIGINT, 130, "interrupted"),
                                             (signal.SIGTERM, 143, "terminated")])
@pytest.mark.parametrize("backend", NAMES)
def test_signal_during_setup_rolls_back(sandbox, tmp_path, backend, sig, status, word):
    box = sandbox()
    c = box.container()
    before = state(box, c)
    fifo, env = pause_at(tmp_path, "container-route")
    inner = ["env", *(f"{k}={v}" for k, v in env.items()), *NETSETTER, str(c.pid), "--backend", backend]
    proc = subprocess.Popen(["ip", "netns", "exec", box.name, *inner], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    with open(fifo) as paused:
        assert paused.readline() == "paused container-route\n"
    proc.send_signal(sig)  # ip netns exec has exec'd: this is netsetter's pid
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == status, err
    assert err.strip() == f"netsetter: {word}"
    assert "undo  " in out or "↺" in out
    assert state(box, c) == before


def test_target_exiting_during_the_run_is_said_and_rolled_back(sandbox, tmp_path):
    box = sandbox()
    c = box.container()
    host_before = box.snapshot()
    fifo, env = pause_at(tmp_path, "container-addr")
    inner = ["env", *(f"{k}={v}" for k, v in env.items()), *NETSETTER, str(c.pid)]
    proc = subprocess.Popen(["ip", "netns", "exec", box.name, *inner], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    with open(fifo) as paused:
        assert paused.readline() == "paused container-addr\n"
    c.proc.kill()
    c.proc.wait()
    with open(fifo, "w") as go:
        go.write("go\n")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("netsetter: error: step 'container-addr' failed: ")
    assert f"(pid {c.pid} exited during the run)" in lines[0]
    assert "undo also failed" not in lines[0]
    assert box.snapshot() == host_before
    assert not os.path.lexists(f"/var/run/netns/{c.pid}")


@pytest.mark.parametrize("backend", NAMES)
def test_rerun_changes_nothing(sandbox, backend):
    box = sandbox()
    c = box.container()
    assert box.netsetter(str(c.pid), "--backend", backend).returncode == 0
    after_first = state(box, c)
    proc = box.netsetter(str(c.pid), "--backend", backend, "--json")
    assert proc.returncode == 0, proc.stderr
    statuses = {s["name"]: s["status"] for s in json.loads(proc.stdout)["steps"]}
    assert {n for n, st in statuses.items() if st == "ok"} == {"bridge-check", "netns-expose", "netns-hide"}
    assert state(box, c) == after_first


def test_rerun_with_other_values_is_refused(sandbox):
    box = sandbox()
    c = box.container()
    assert box.netsetter(str(c.pid)).returncode == 0
    before = state(box, c)
    proc = box.netsetter(str(c.pid), "--container-addr", "10.10.10.150/24")
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        f"netsetter: error: pid {c.pid} is already configured with other values: container_addr "
        f"10.10.10.101/24 (asked 10.10.10.150/24); tear it down first with `netsetter down {c.pid}`")
    assert state(box, c) == before


@pytest.mark.parametrize("backend", NAMES)
def test_down_removes_what_up_made_and_twice_is_fine(sandbox, backend):
    box = sandbox()
    c = box.container()
    before = box.snapshot()
    assert box.netsetter(str(c.pid), "--backend", backend).returncode == 0
    first = box.netsetter("down", str(c.pid), "--backend", backend)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == [f"netsetter down {c.pid}: deleted veth_host (and its peer in the container)",
                                         f"netsetter down {c.pid}: released the lease of 10.10.10.101",
                                         f"netsetter down {c.pid}: forgot the record of pid {c.pid}"]
    assert set(box.snapshot().links) == {"brg-demo"}  # the bridge stays, for other containers
    assert c.snapshot().links == {}
    second = box.netsetter("down", str(c.pid), "--backend", backend)
    assert second.returncode == 0
    assert second.stdout.strip() == f"netsetter down {c.pid}: nothing to do"
    third = box.netsetter("down", str(c.pid), "--bridge", "--backend", backend)
    assert third.stdout.strip() == f"netsetter down {c.pid}: deleted bridge brg-demo"
    assert box.snapshot() == before


def test_down_by_interface_name_when_the_process_is_gone(sandbox):
    box = sandbox()
    c = box.container()
    # keep the container's netns alive after its process, as a bind mount or a
    # second process would: its veth pair then outlives the process
    keeper = subprocess.Popen(["nsenter", f"--net=/proc/{c.pid}/ns/net", "sleep", "300"])
    try:
        assert box.netsetter(str(c.pid)).returncode == 0
        c.proc.kill()
        c.proc.wait()
        assert "veth_host" in box.snapshot().links
        proc = box.netsetter("down", "veth_conta", "--json")
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout) == {
            "target": "veth_conta", "outcome": "done", "notes": [],
            "actions": ["deleted veth_host (and its peer in the container)", "released the lease of 10.10.10.101",
                        f"forgot the record of pid {c.pid}"]}
        assert "veth_host" not in box.snapshot().links
        again = box.netsetter("down", "veth_conta")
        assert again.returncode == 0 and again.stdout.strip() == "netsetter down veth_conta: nothing to do"
    finally:
        keeper.kill()
        keeper.wait()


def test_down_keeps_a_bridge_with_other_ports(sandbox):
    box = sandbox()
    one, two = box.container(), box.container()
    assert box.netsetter(str(one.pid)).returncode == 0
    assert box.netsetter(str(two.pid), "--veth-host", "vh2", "--veth-container", "vc2",
                         "--container-addr", "10.10.10.102/24").returncode == 0
    proc = box.netsetter("down", str(one.pid), "--bridge")
    assert proc.returncode == 0
    assert f"netsetter down {one.pid}: kept bridge brg-demo: other ports remain on it (vh2)" in proc.stdout
    links = box.snapshot().links
    assert "brg-demo" in links and links["vh2"]["master"] == "brg-demo" and "veth_host" not in links
    # the other container still has its network
    assert "inet 10.10.10.102/24 scope global dev vc2" in two.snapshot().addrs


def test_down_without_a_record_removes_only_a_proven_pair(sandbox, original_script):
    box = sandbox()
    c, stranger = box.container(), box.container()
    assert box.run("bash", str(original_script), str(c.pid)).returncode == 0  # no record: the script ran
    proc = box.netsetter("down", str(stranger.pid))
    assert proc.stdout.splitlines() == [
        f"netsetter down {stranger.pid}: left veth_host alone: its peer is not veth_conta in the netns of "
        f"pid {stranger.pid}",
        f"netsetter down {stranger.pid}: nothing to do"]
    assert "veth_host" in box.snapshot().links
    proc = box.netsetter("down", str(c.pid))
    assert proc.stdout.strip() == f"netsetter down {c.pid}: deleted veth_host (and its peer in the container)"
    assert "veth_host" not in box.snapshot().links


def test_ten_concurrent_runs_serialise_and_all_succeed(sandbox):
    box = sandbox()
    containers = [box.container() for _ in range(10)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen(["ip", "netns", "exec", box.name, *NETSETTER, str(c.pid), "--json",
                               "--backend", NAMES[i % 2], "--veth-host", f"vh{i}", "--veth-container", f"vc{i}",
                               "--container-addr", f"10.10.10.{110 + i}/24"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for i, c in enumerate(containers)]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        results.append(json.loads(out))
    spans = sorted((r["locked_at"], r["unlocked_at"]) for r in results)
    assert all(end <= next_start for (_, end), (next_start, _) in zip(spans, spans[1:], strict=False)), spans
    links = box.snapshot().links
    assert sorted(n for n, link in links.items() if link["master"] == "brg-demo") == sorted(f"vh{i}" for i in range(10))
    for i, c in enumerate(containers):
        assert f"inet 10.10.10.{110 + i}/24 scope global dev vc{i}" in c.snapshot().addrs


def test_stdout_closed_during_the_run_rolls_back(sandbox, tmp_path):
    """`netsetter PID | head -n 3`: the next step's line meets a closed pipe. The failed step's
    line met it again, before the undo, and cut the rollback short: the bridge and veth pair
    stayed, their record and lease gone."""
    from .test_signals import everything

    box = sandbox()
    c = box.container()
    before = everything(box, c)
    fifo, env = pause_at(tmp_path, "container-route")
    inner = ["env", *(f"{k}={v}" for k, v in env.items()), *NETSETTER, str(c.pid), "--backend", "ip"]
    proc = subprocess.Popen(["ip", "netns", "exec", box.name, *inner], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    with open(fifo) as paused:
        assert paused.readline() == "paused container-route\n"
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone, as head is after its lines
    with open(fifo, "w") as resume:
        resume.write("go\n")
    err = proc.stderr.read()
    proc.stderr.close()
    assert proc.wait(timeout=30) == 1, err
    assert err.startswith("netsetter: error: ") and "Broken pipe" in err and err.count("\n") == 1, err
    assert everything(box, c) == before


def test_a_finish_line_that_meets_a_closed_stdout_leaves_the_network_made_and_recorded(sandbox):
    """Unbuffered (PYTHONUNBUFFERED=1), the summary line after the last step met the closed pipe:
    the run's record and lease were dropped and the links stayed, recorded nowhere. The network
    is made; a reporter that cannot write changes nothing of it."""
    from .test_signals import everything

    box = sandbox()
    c = box.container()
    before = everything(box, c)
    code = ("import errno, sys\n"
            "from backends import open_backend\n"
            "from netsetter.config import NetConfig\n"
            "from netsetter.engine import setup\n"
            "from netsetter.report import PlainReporter\n"
            "class Closed(PlainReporter):\n"
            "    def finish(self, result):\n"
            "        raise BrokenPipeError(errno.EPIPE, 'Broken pipe')\n"
            "with open_backend('ip') as backend:\n"
            f"    print(setup({c.pid}, NetConfig.build(), backend, reporter=Closed(sys.stderr)).outcome)\n")
    run = box.run(sys.executable, "-c", code)
    assert run.returncode == 0 and run.stdout == "ok\n", run.stderr
    down = box.netsetter("down", str(c.pid), "--bridge", "--backend", "ip")
    assert down.returncode == 0 and "forgot the record" in down.stdout, down.stdout + down.stderr
    assert everything(box, c) == before
