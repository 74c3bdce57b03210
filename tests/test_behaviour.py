"""What a user sees beyond the script's happy path: reuse, stale entries, rollback, output."""

from __future__ import annotations

import json
import os
import re

import pytest

from backends import NAMES
from netsetter.compare.snapshot import netns_entry_exists


def lo_is_up(container) -> bool:
    out = container.run("ip", "-j", "link", "show", "dev", "lo").stdout
    return "UP" in json.loads(out)[0]["flags"]


@pytest.mark.parametrize("backend", NAMES)
def test_existing_bridge_is_reused_and_keeps_its_ports(sandbox, backend):
    box = sandbox()
    c = box.container()
    # Another container's port already sits on brg-demo: the script would delete the bridge.
    box.ip("link", "add", "name", "brg-demo", "address", "12:34:56:a1:b2:c3", "type", "bridge")
    box.ip("addr", "add", "10.10.10.100/24", "dev", "brg-demo")
    box.ip("link", "set", "dev", "brg-demo", "up")
    box.ip("link", "add", "other0", "type", "veth", "peer", "name", "other1")
    box.ip("link", "set", "other0", "master", "brg-demo")
    proc = box.netsetter(str(c.pid), "--backend", backend, "--json")
    assert proc.returncode == 0, proc.stderr
    steps = {s["name"]: s for s in json.loads(proc.stdout)["steps"]}
    assert steps["bridge-check"]["status"] == "ok" and "reused" in steps["bridge-check"]["detail"]
    assert [steps[n]["status"] for n in ("bridge-add", "bridge-addr", "bridge-up")] == ["skipped"] * 3
    links = box.snapshot().links
    assert links["other0"]["master"] == "brg-demo" and links["veth_host"]["master"] == "brg-demo"
    assert box.snapshot().addrs == ["inet 10.10.10.100/24 scope global dev brg-demo"]


@pytest.mark.parametrize("backend", NAMES)
def test_stale_netns_entry_is_replaced(sandbox, backend):
    box = sandbox()
    c = box.container()
    entry = f"/var/run/netns/{c.pid}"
    os.makedirs("/var/run/netns", exist_ok=True)
    # left by a run for this pid that was killed (issue 14: an entry naming anything else is
    # refused and kept, see test_trust.py)
    os.symlink(f"/proc/{c.pid}/ns/net", entry)
    try:
        proc = box.netsetter(str(c.pid), "--backend", backend, "--json")
        assert proc.returncode == 0, proc.stderr
        expose = next(s for s in json.loads(proc.stdout)["steps"] if s["name"] == "netns-expose")
        assert "replaced its own stale entry" in expose["detail"]
        assert not netns_entry_exists(c.pid)
        assert "inet 10.10.10.101/24 scope global dev veth_conta" in c.snapshot().addrs
    finally:
        if os.path.islink(entry):
            os.unlink(entry)


@pytest.mark.parametrize("backend", NAMES)
def test_failure_late_undoes_everything_and_hides_the_netns(sandbox, backend):
    box = sandbox()
    c = box.container()
    # The container already has a default route, so the script's last ip line must fail.
    for cmd in (["link", "add", "d0", "type", "veth", "peer", "name", "d1"],
                ["addr", "add", "10.99.0.1/24", "dev", "d0"], ["link", "set", "d0", "up"],
                ["route", "add", "default", "via", "10.99.0.2"]):
        assert c.run("ip", *cmd).returncode == 0
    host_before, inside_before = box.snapshot(), c.snapshot()
    proc = box.netsetter(str(c.pid), "--backend", backend, "--json")
    assert proc.returncode == 1
    result = json.loads(proc.stdout)
    assert result["outcome"] == "failed"
    failed = [s for s in result["steps"] if s["status"] == "failed"]
    assert [s["name"] for s in failed] == ["container-route"]
    assert "File exists" in failed[0]["detail"]
    assert proc.stderr.strip().splitlines() == [
        "netsetter: error: step 'container-route' failed: failed to add default route via 10.10.10.100 "
        'on "veth_conta": File exists']
    assert box.snapshot() == host_before and not host_before.links
    assert c.snapshot() == inside_before
    assert not lo_is_up(c)
    assert not netns_entry_exists(c.pid)


def test_json_result_describes_the_run(sandbox):
    box = sandbox()
    c = box.container()
    proc = box.netsetter(str(c.pid), "--json", "--container-addr", "10.10.10.150/24")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["outcome"] == "ok" and result["error"] is None and result["pid"] == c.pid
    assert result["backend"] == "ip"
    assert result["config"]["container_addr"] == "10.10.10.150/24"
    assert [s["name"] for s in result["steps"]] == [
        "bridge-check", "bridge-add", "bridge-addr", "bridge-up", "veth-add", "veth-host-up",
        "veth-host-master", "veth-container-netns", "netns-expose", "container-addr", "container-up",
        "container-lo-up", "container-route", "netns-hide"]
    assert all(s["status"] == "ok" and s["ms"] > 0 for s in result["steps"])
    addr = next(s for s in result["steps"] if s["name"] == "container-addr")
    assert addr["script"] == [f"ip netns exec {c.pid} ip addr add 10.10.10.150/24 dev veth_conta"]
    assert "inet 10.10.10.150/24 scope global dev veth_conta" in c.snapshot().addrs


def test_backend_from_environment(sandbox):
    box = sandbox()
    c = box.container()
    proc = box.netsetter(str(c.pid), "--json", env={"NETSETTER_BACKEND": "netlink"})
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["backend"] == "netlink"
    assert all(not cmd["cmd"].startswith("ip ") for s in result["steps"] for cmd in s["commands"])
    bad = box.netsetter(str(c.pid), env={"NETSETTER_BACKEND": "iproute"})
    assert bad.returncode == 2
    assert bad.stderr.strip() == ("netsetter: error: invalid backend (from NETSETTER_BACKEND) 'iproute': "
                                  "choose one of: ip, netlink, rtnl")


def test_plain_output_is_one_line_per_step(sandbox):
    box = sandbox()
    c = box.container()
    proc = box.netsetter(str(c.pid))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[0] == f"netsetter: pid {c.pid}, backend ip, 14 steps"
    assert lines[-1].startswith("netsetter: ok in ")
    assert len(lines) == 16
    assert lines[2].startswith("ok       2 bridge-add") and \
        "$ ip link add name brg-demo address 12:34:56:a1:b2:c3 type bridge  # added bridge brg-demo" in lines[2]


def test_terminal_output_is_a_table(sandbox):
    box = sandbox()
    c = box.container()
    # `script` gives netsetter a terminal, as a user at a shell has.
    cmd = f"{' '.join(__import__('tests.sandbox', fromlist=['NETSETTER']).NETSETTER)} {c.pid}"
    proc = box.run("script", "-qec", cmd, "/dev/null", env={"COLUMNS": "160", "TERM": "xterm"})
    assert proc.returncode == 0, proc.stdout
    text = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", proc.stdout)
    assert "\x1b[" in proc.stdout  # coloured, as a terminal shows it
    assert f"netsetter: pid {c.pid}, backend ip" in text
    assert " ✓  1 bridge-check " in text and " ✓ 14 netns-hide " in text
    assert f"$ ip netns exec {c.pid} ip route add default via 10.10.10.100 dev veth_conta" in text
    assert "(deliberate difference)" in text
    assert re.search(r"^ok in [0-9.]+ ms$", text, re.M)
