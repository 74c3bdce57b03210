"""The fast path (netsetter.fast) ends in the script's state, on the real kernel, for every backend."""

from __future__ import annotations

import json
import sys

import pytest

from backends import NAMES

from .test_faithful import EXPECTED_HOST, run_script, snapshot_entry

SETUP = """
import json, sys
from netsetter.fast import setup_fast, teardown_fast
from netsetter.config import NetConfig
net = setup_fast(int(sys.argv[1]), NetConfig.build(**json.loads(sys.argv[3])), sys.argv[2] or None)
print(json.dumps(net.as_dict()))
if sys.argv[4] == "down":
    print(json.dumps(teardown_fast(net)))
"""


def fast(box, pid, backend="", config=None, down=False):
    return box.run(sys.executable, "-c", SETUP, str(pid), backend, json.dumps(config or {}),
                   "down" if down else "keep")


@pytest.mark.parametrize("backend", NAMES)
def test_same_state_as_the_script(sandbox, original_script, backend):
    ref_box, box = sandbox(), sandbox()
    ref_c, c = ref_box.container(), box.container()
    run_script(ref_box, original_script, ref_c.pid)
    proc = fast(box, c.pid, backend)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["backend"] == backend
    assert box.snapshot() == ref_box.snapshot()
    assert c.snapshot() == ref_c.snapshot()
    assert box.snapshot().links == EXPECTED_HOST
    inside = c.snapshot()
    assert "inet 10.10.10.101/24 scope global dev veth_conta" in inside.addrs
    assert not snapshot_entry(c.pid)  # the deliberate difference: never a /var/run/netns entry
    # ...and it works: the container reaches the bridge.
    ping = c.run("ping", "-c", "1", "-W", "2", "10.10.10.100")
    assert ping.returncode == 0, ping.stdout + ping.stderr


def test_default_backend_is_rtnl_and_peer_made_in_place(sandbox):
    box = sandbox()
    c = box.container()
    proc = fast(box, c.pid)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["backend"] == "rtnl"
    assert not any("netns pid" in r for r in out["requests"])  # nothing was moved
    assert any("type veth peer veth_conta" in r for r in out["requests"])


def test_second_container_gets_its_own_names_and_address(sandbox):
    box = sandbox()
    a, b = box.container(), box.container()
    assert fast(box, a.pid, config={"veth_host": "auto", "container_addr": "auto"}).returncode == 0
    proc = fast(box, b.pid, config={"veth_host": "auto", "container_addr": "auto"})
    assert proc.returncode == 0, proc.stderr
    cfg = json.loads(proc.stdout)["config"]
    assert cfg["veth_host"] == f"veth_h{b.pid}" and cfg["container_addr"] == "10.10.10.102/24"
    assert "inet 10.10.10.102/24 scope global dev veth_conta" in b.snapshot().addrs
    assert b.run("ping", "-c", "1", "-W", "2", "10.10.10.101").returncode == 0


def test_teardown_removes_the_pair_lease_and_record(sandbox):
    box = sandbox()
    c = box.container()
    proc = fast(box, c.pid, down=True)
    assert proc.returncode == 0, proc.stderr
    assert set(box.snapshot().links) == {"brg-demo"}
    assert "veth_conta" not in c.snapshot().links
    # the lease is free again: the next container gets 10.10.10.101
    d = box.container()
    again = fast(box, d.pid, config={"container_addr": "auto"})
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["config"]["container_addr"] == "10.10.10.101/24"


def test_a_failure_half_way_leaves_nothing(sandbox):
    box = sandbox()
    c = box.container()
    made = c.run("ip", "link", "add", "veth_conta", "type", "bridge")  # the name taken inside the container
    assert made.returncode == 0, made.stderr
    proc = fast(box, c.pid)
    assert proc.returncode != 0
    assert "veth_conta" in proc.stderr and "already exists in the netns" in proc.stderr
    assert box.snapshot().links == {}  # the bridge this run made is gone again
    assert set(c.snapshot().links) == {"veth_conta"}  # the container's own link, left alone
    d = box.container()
    again = fast(box, d.pid, config={"container_addr": "auto"})
    assert json.loads(again.stdout)["config"]["container_addr"] == "10.10.10.101/24"  # lease released


CONCURRENT = """
import json, sys, threading
from netsetter.config import NetConfig
from netsetter.fast import setup_fast

said = {}

def one(pid):
    try:
        net = setup_fast(pid, NetConfig.build(veth_host="auto", container_addr="auto"))
        said[pid] = [net.config.veth_host, str(net.config.container_addr)]
    except Exception as exc:
        said[pid] = f"{type(exc).__name__}: {exc}"

threads = [threading.Thread(target=one, args=(int(p),)) for p in sys.argv[1:]]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps(said))
"""


@pytest.mark.parametrize("attempt", range(3))
def test_four_concurrent_setups_in_a_fresh_sandbox_each_get_their_host_end(sandbox, attempt):
    # The first runs in a fresh host netns make its state folder at once: each thread must
    # write the folder's files through a temporary file of its own (it once shared the pid's).
    box = sandbox()
    cs = [box.container() for _ in range(4)]
    proc = box.run(sys.executable, "-c", CONCURRENT, *(str(c.pid) for c in cs))
    assert proc.returncode == 0, proc.stderr
    said = json.loads(proc.stdout)
    assert all(isinstance(v, list) for v in said.values()), said
    hosts = sorted(v[0] for v in said.values())
    assert len(set(hosts)) == 4 and len({v[1] for v in said.values()}) == 4
    ports = box.ip("-o", "link", "show", "master", "brg-demo").stdout
    assert sorted(line.split()[1].split("@")[0] for line in ports.splitlines()) == hosts
    for c in cs:
        assert c.run("ping", "-c", "1", "-W", "2", "10.10.10.100").returncode == 0
