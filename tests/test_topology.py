"""netsetter ls: bridges, ports, containers (alive or stale), leases and NAT, as they are."""

from __future__ import annotations

import json


def test_ls_shows_the_bridge_its_containers_and_what_is_stale(sandbox):
    box = sandbox()
    one, two, gone = box.container(), box.container(), box.container()
    for c in (one, two, gone):
        assert box.netsetter(str(c.pid), "--container-addr", "auto", "--veth-host", "auto",
                             "--veth-container", "auto").returncode == 0
    assert box.netsetter(str(one.pid), "-p", "8080:80").returncode == 0  # a re-run may publish a port
    box.ip("link", "add", "other0", "type", "veth", "peer", "name", "other1")
    box.ip("link", "set", "other0", "master", "brg-demo")
    gone.stop()  # its netns, and so its veth pair, go with it; its record and lease stay, stale
    proc = box.netsetter("ls", "--json")
    assert proc.returncode == 0, proc.stderr
    view = json.loads(proc.stdout)
    [bridge] = view["bridges"]
    assert (bridge["name"], bridge["address"], bridge["addrs"]) == ("brg-demo", "12:34:56:a1:b2:c3",
                                                                   ["10.10.10.100/24"])
    ports = {p["name"]: p["container"] for p in bridge["ports"]}
    assert ports["other0"] is None
    assert ports["veth_host"] == {"pid": one.pid, "interface": "veth_conta", "address": "10.10.10.101/24",
                                  "lease": "10.10.10.101", "alive": True}
    assert ports[f"veth_h{two.pid}"]["address"] == "10.10.10.102/24"
    assert bridge["other_leases"][0]["address"] == "10.10.10.103"
    assert bridge["other_leases"][0]["alive"] is False
    assert view["records_without_link"] == [{"pid": gone.pid, "host_interface": f"veth_h{gone.pid}",
                                             "address": "10.10.10.103/24", "alive": False}]
    [nat] = view["nat"]
    assert nat["publish"] == [{"bridge": "brg-demo", "container": "10.10.10.101", "host_port": 8080,
                               "container_port": 80, "proto": "tcp"}]
    tree = box.netsetter("ls", env={"COLUMNS": "200"}).stdout
    assert "host port 8080/tcp → 10.10.10.101:80" in tree
    assert "brg-demo bridge 12:34:56:a1:b2:c3 10.10.10.100/24 up" in tree
    assert f"veth_host ⇄ veth_conta  pid {one.pid}  10.10.10.101/24  lease 10.10.10.101  alive" in tree
    assert f"record of pid {gone.pid}" in tree and f"netsetter down {gone.pid} removes it" in tree
    # a new container reclaims the stale lease: the first free address again
    new = box.container()
    assert box.netsetter(str(new.pid), "--container-addr", "auto", "--veth-host", "auto",
                         "--veth-container", "auto", "--json").returncode == 0
    assert "inet 10.10.10.103/24" in " ".join(new.snapshot().addrs)
