"""Each backend ends in the state the original netsetter.sh leaves, on the real kernel."""

from __future__ import annotations

import json
import os
import shlex
import sys

import pytest

from backends import NAMES

EXPECTED_HOST = {
    "brg-demo": {"kind": "bridge", "master": None, "state": "up", "mtu": 1500, "address": "12:34:56:a1:b2:c3"},
    "veth_host": {"kind": "veth", "master": "brg-demo", "state": "up", "mtu": 1500, "address": None},
}


def run_script(box, script, pid):
    proc = box.run("bash", str(script), str(pid))
    # The script's first line deletes a bridge that is not there: it says so and goes on.
    assert "brg-demo" in proc.stderr
    return proc


@pytest.mark.parametrize("backend", NAMES)
def test_same_state_as_the_original_script(sandbox, original_script, backend):
    ref_box, port_box = sandbox(), sandbox()
    ref_c, port_c = ref_box.container(), port_box.container()

    run_script(ref_box, original_script, ref_c.pid)
    proc = port_box.netsetter(str(port_c.pid), "--backend", backend)
    assert proc.returncode == 0, proc.stderr

    assert port_box.snapshot() == ref_box.snapshot()
    assert port_c.snapshot() == ref_c.snapshot()
    # ...and that state is the network the script means to build, not a shared failure:
    assert port_box.snapshot().links == EXPECTED_HOST
    inside = port_c.snapshot()
    assert inside.links == {"veth_conta": {"kind": "veth", "master": None, "state": "up", "mtu": 1500,
                                           "address": None}}
    assert "inet 10.10.10.101/24 scope global dev veth_conta" in inside.addrs
    assert "0.0.0.0/0 via 10.10.10.100 dev veth_conta" in inside.routes or \
        "default via 10.10.10.100 dev veth_conta" in inside.routes


@pytest.mark.parametrize("backend", NAMES)
def test_leaves_no_netns_entry(sandbox, backend):
    box = sandbox()
    c = box.container()
    assert box.netsetter(str(c.pid), "--backend", backend).returncode == 0
    assert not snapshot_entry(c.pid)


def snapshot_entry(pid: int) -> bool:
    from netsetter.compare.snapshot import netns_entry_exists

    return netns_entry_exists(pid)


@pytest.mark.parametrize("backend", NAMES)
def test_container_reaches_the_bridge_over_tcp(sandbox, backend):
    box = sandbox()
    c = box.container()
    assert box.netsetter(str(c.pid), "--backend", backend).returncode == 0
    with box.hello_server("10.10.10.100") as port:
        client = c.run(sys.executable, "-c",
                       "import socket; s = socket.create_connection(('10.10.10.100', %s), timeout=10);"
                       "print(s.recv(100).decode())" % port)
    assert client.returncode == 0, client.stderr
    assert client.stdout.strip() == "hello 10.10.10.101"


def test_ip_backend_runs_the_script_lines(sandbox):
    box = sandbox()
    c = box.container()
    proc = box.netsetter(str(c.pid), "--backend", "ip", "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    executed = [cmd["cmd"] for step in result["steps"] for cmd in step["commands"]
                if cmd["change"] and cmd["cmd"].startswith("ip ")]
    script_ip_lines = [line for step in result["steps"] if step["difference"] is None
                       for line in step["script"] if line.startswith("ip ")]
    # beyond the script: lo up, and the marker (alias) of each link netsetter makes (issue 14)
    marked = [x for x in executed if "alias" in shlex.split(x)]
    assert [shlex.split(x)[-2:] for x in marked] == [["alias", f"ns-proc:pid:{c.pid}:{os.stat(f'/proc/{c.pid}/ns/net').st_ino}"]] * 2
    assert [shlex.split(x) for x in executed if "lo" not in shlex.split(x) and x not in marked] == \
        [shlex.split(x) for x in script_ip_lines]
    # the script's 11 ip lines, less the deleted bridge the port deliberately keeps
    assert len(script_ip_lines) == 10
    by_name = {s["name"]: s for s in result["steps"]}
    assert not [c for c in by_name["bridge-check"]["commands"] if c["change"]]


def test_netlink_backend_runs_no_ip_process(sandbox, tmp_path):
    box = sandbox()
    c = box.container()
    # A PATH with no `ip` on it: the netlink backend must not need one.
    bindir = tmp_path / "bin"
    bindir.mkdir()
    proc = box.netsetter(str(c.pid), "--backend", "netlink", "--json", env={"PATH": str(bindir)})
    assert proc.returncode == 0, proc.stderr
    inside = c.snapshot()
    assert "inet 10.10.10.101/24 scope global dev veth_conta" in inside.addrs


def test_rtnl_backend_runs_no_process_and_imports_no_netlink_library(sandbox, tmp_path):
    box = sandbox()
    c = box.container()
    bindir = tmp_path / "bin"
    bindir.mkdir()
    proc = box.netsetter(str(c.pid), "--backend", "rtnl", "--json", env={"PATH": str(bindir)})
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    changes = [cmd["cmd"] for s in result["steps"] for cmd in s["commands"] if cmd["change"]]
    assert "RTM_NEWLINK veth_host type veth peer veth_conta" in changes
    assert f"RTM_NEWROUTE default via 10.10.10.100 dev veth_conta (netns {c.pid})" in changes
    assert "0.0.0.0/0 via 10.10.10.100 dev veth_conta" in c.snapshot().routes or \
        "default via 10.10.10.100 dev veth_conta" in c.snapshot().routes
    # the library path, in a process of its own: neither sh nor pyroute2 is loaded
    other = box.container()
    code = ("import sys; from backends import open_backend; from netsetter.config import NetConfig; from netsetter.engine import setup\n"
            f"with open_backend('rtnl') as b: setup({other.pid}, NetConfig.build(veth_host='veth_h2', "
            "veth_container='veth_c2', container_addr='10.10.10.102/24'), b)\n"
            "print(' '.join(sorted({m.split('.')[0] for m in sys.modules} & {'sh', 'pyroute2', 'asyncio'})))")
    lib = box.run(sys.executable, "-c", code)
    assert lib.returncode == 0, lib.stderr
    assert lib.stdout.strip() == ""
    assert "inet 10.10.10.102/24 scope global dev veth_c2" in other.snapshot().addrs
