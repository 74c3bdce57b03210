"""Issue 14: state and targets netsetter can trust.

Never the machine's own network namespace; never someone else's /var/run/netns
entry; state keyed by the netns cookie, private and not following symlinks;
links that say who made them, so that a run killed at any point is recovered.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from backends import NAMES

# Should a refusal ever regress, the first step fails before it changes anything: the
# machine's own namespace is never at risk because of a test.
SAFETY_NET = {"NETSETTER_TEST_FAIL_AT": "bridge-check"}


def one_line_error(proc, status, words):
    assert proc.returncode == status, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("netsetter: error: "), proc.stderr
    assert words in lines[0], lines[0]
    assert "Traceback" not in proc.stderr + proc.stdout


def initial_links() -> list[str]:
    return subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout.split("\n")


@pytest.mark.parametrize("backend", NAMES)
@pytest.mark.parametrize("who", ["pid 1", "a process of the initial netns"])
def test_a_target_in_the_initial_netns_is_refused_from_a_sandbox(sandbox, backend, who):
    box = sandbox()
    before_box, before_machine = box.snapshot(), initial_links()
    pid = "1" if who == "pid 1" else str(os.getpid())  # pytest runs in the machine's own netns
    proc = box.netsetter(pid, "--backend", backend, env=SAFETY_NET)
    one_line_error(proc, 2, "the machine's initial network namespace")
    assert f"pid {pid} " in proc.stderr
    assert box.snapshot() == before_box
    assert initial_links() == before_machine
    assert not os.path.lexists(f"/var/run/netns/{pid}")


@pytest.mark.parametrize("backend", NAMES)
def test_a_symlink_under_var_run_netns_to_another_container_is_refused(sandbox, backend):
    box = sandbox()
    victim, target = box.container(), box.container()
    entry = f"/var/run/netns/{target.pid}"
    os.symlink(f"/proc/{victim.pid}/ns/net", entry)
    try:
        before_box, before_victim, before_target = box.snapshot(), victim.snapshot(), target.snapshot()
        proc = box.netsetter(str(target.pid), "--backend", backend)
        one_line_error(proc, 1, f"{entry} is a symlink to /proc/{victim.pid}/ns/net")
        assert box.snapshot() == before_box
        assert victim.snapshot() == before_victim and target.snapshot() == before_target
        assert os.readlink(entry) == f"/proc/{victim.pid}/ns/net"  # untouched
        # down neither follows nor removes it
        down = box.netsetter("down", str(target.pid), "--backend", backend)
        assert down.returncode == 0, down.stderr
        assert os.readlink(entry) == f"/proc/{victim.pid}/ns/net"
        assert victim.snapshot() == before_victim
    finally:
        os.unlink(entry)


def test_a_named_netns_under_the_pid_is_refused_and_kept(sandbox):
    box = sandbox()
    target = box.container()
    name = str(target.pid)
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        proc = box.netsetter(name)
        one_line_error(proc, 1, "is a named network namespace")
        assert subprocess.run(["ip", "netns", "exec", name, "true"]).returncode == 0
    finally:
        subprocess.run(["ip", "netns", "del", name], check=True)


@pytest.mark.parametrize("backend", NAMES)
def test_a_stale_entry_of_our_own_for_the_same_pid_is_replaced(sandbox, backend):
    box = sandbox()
    c = box.container()
    entry = f"/var/run/netns/{c.pid}"
    os.symlink(f"/proc/{c.pid}/ns/net", entry)  # as a run killed mid-way leaves it
    proc = box.netsetter(str(c.pid), "--backend", backend)
    assert proc.returncode == 0, proc.stderr
    assert not os.path.lexists(entry)
    assert "10.10.10.101/24" in c.run("ip", "-o", "addr").stdout


CNI_CONF = {"cniVersion": "1.0.0", "name": "trust", "type": "netsetter-cni", "bridge": "cni-trust0",
            "isGateway": True, "ipam": {"subnet": "10.123.0.0/24", "rangeStart": "10.123.0.10",
                                        "rangeEnd": "10.123.0.20"}}


def cni(box, command, netns, backend="ip", cid="ctr1", ifname="eth0", conf=None, stdin=None):
    import json

    env = {"NETSETTER_BACKEND": backend, "CNI_COMMAND": command, "CNI_CONTAINERID": cid,
           "CNI_NETNS": netns, "CNI_IFNAME": ifname, "CNI_PATH": "/usr/lib/cni"}
    return box.run(sys.executable, "-m", "netsetter_cni.main", env=env,
                   stdin=stdin if stdin is not None else json.dumps(conf or CNI_CONF))


@pytest.mark.parametrize("backend", NAMES)
@pytest.mark.parametrize("netns", ["/proc/1/ns/net", "/proc/2/ns/net", "pytest's"])
def test_cni_refuses_the_initial_netns(sandbox, backend, netns):
    import json

    box = sandbox()
    netns = f"/proc/{os.getpid()}/ns/net" if netns == "pytest's" else netns
    before_box, before_machine = box.snapshot(), initial_links()
    proc = cni(box, "ADD", netns, backend)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    out = json.loads(proc.stdout)
    assert out["code"] == 4 and "the machine's initial network namespace" in out["msg"], out
    assert "Traceback" not in proc.stderr
    assert box.snapshot() == before_box and initial_links() == before_machine
