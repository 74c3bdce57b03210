"""A thousand containers on one bridge: all configured, all reachable, and no storm after.

Each container is a process in a netns of its own, as runner's are; one
netsetter process (the library, in a loop, netlink backend) configures them
all, as a container engine would. Per-setup time is measured by the
benchmark, not here: this test checks what holds whatever the speed.
"""

from __future__ import annotations

import pytest
import json
import sys

from .sandbox import ROOT

N = 1000

CONFIGURE = f"""
import json, sys
sys.path.insert(0, {str(ROOT)!r})
from backends import open_backend
from netsetter.config import NetConfig
from netsetter.engine import setup
config = NetConfig.build(bridge_addr="10.20.0.1/16", container_addr="auto", veth_host="auto", veth_container="auto")
addresses = []
with open_backend("netlink") as backend:
    for pid in map(int, sys.argv[1:]):
        addresses.append(setup(pid, config, backend).config["container_addr"])
print(json.dumps(addresses))
"""

# Every address answers a ping from the host; then the bridge's packet counters over 2 s.
# The kernel's ARP table is one for all namespaces, 1024 entries by default
# (net.ipv4.neigh.default.gc_thresh3, a machine-wide setting we leave alone here):
# each reply leaves an entry in the container (for the gateway) and one on the host.
# The host's entry is dropped after each ping, so that a thousand pings stay under
# the limit; a host with a thousand busy containers would raise gc_thresh1-3.
PROBE = """
import json, subprocess, sys, time
def answers(address):
    try:
        return any(subprocess.run(["ping", "-c", "1", "-W", str(wait), "-q", address],
                                  capture_output=True).returncode == 0 for wait in (2, 3, 5))
    finally:
        subprocess.run(["ip", "neigh", "del", address, "dev", "brg-demo"], capture_output=True)
missing = [a for a in json.load(sys.stdin) if not answers(a.split("/")[0])]
def packets():
    out = subprocess.run(["ip", "-j", "-s", "link", "show", "brg-demo"], capture_output=True, text=True).stdout
    stats = json.loads(out)[0]["stats64"]
    return stats["rx"]["packets"] + stats["tx"]["packets"]
before = packets(); time.sleep(2); after = packets()
print(json.dumps({"missing": missing, "packets_per_s": (after - before) / 2}))
"""


@pytest.mark.slow
@pytest.mark.serial  # alone: the neighbour table it fills is the whole machine's
def test_a_thousand_containers_on_one_bridge(sandbox):
    box = sandbox()
    containers = [box.container() for _ in range(N)]
    proc = box.run(sys.executable, "-c", CONFIGURE, *(str(c.pid) for c in containers), timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    addresses = json.loads(proc.stdout)
    assert len(set(addresses)) == N
    assert addresses[0] == "10.20.0.101/16" and addresses[-1] == "10.20.4.76/16"  # the first N from .101 on
    ports = [name for name, link in box.snapshot().links.items() if link["master"] == "brg-demo"]
    assert len(ports) == N
    probe = box.run(sys.executable, "-c", PROBE, stdin=proc.stdout, timeout=900)
    assert probe.returncode == 0, probe.stderr
    result = json.loads(probe.stdout)
    by_address = dict(zip(addresses, containers, strict=True))
    assert [(a, "its process has exited" if by_address[a].proc.poll() is not None else "alive")
            for a in result["missing"]] == []
    # IPv6 start-up chatter flooded to a thousand ports would be tens of thousands a second
    assert result["packets_per_s"] < 1000, result
