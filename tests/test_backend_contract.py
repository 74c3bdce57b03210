"""The backend contract: every registered backend, each primitive of ``Backend``, on the real kernel.

Each test gets a fresh sandbox (a netns that plays the host) and, where it
needs one, a container (a process in a netns of its own, also named under
/var/run/netns as the steps expose it). The backend runs in a worker process
inside the sandbox (tests/backend_worker.py), so its "host" is the sandbox;
the test calls the primitives one by one and checks what they return against
what `ip` itself reads from the kernel. Adding a backend to ``backends.REGISTRY``
adds it here.
"""

from __future__ import annotations

import errno
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Any, Iterator

import pytest

from backends import NAMES
from backends.base import Link, Route
from nskit.errors import OpError
from netsetter.compare.sandbox import Container

from .backend_worker import read_frame, write_frame
from .sandbox import ROOT, Sandbox

MAC = "12:34:56:a1:b2:c3"
MESSAGE = re.compile(r'^failed to [^"]+ "[^"]+": \S.*$')


class Remote:
    """A backend in a worker inside ``box``; attribute calls are its primitives."""

    def __init__(self, box: Sandbox, name: str) -> None:
        self.name = name
        self.proc = subprocess.Popen(["ip", "netns", "exec", box.name, sys.executable, "-m", "tests.backend_worker",
                                      name, str(os.stat("/proc/self/ns/net").st_ino)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT)

    def __getattr__(self, method: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            assert self.proc.stdin and self.proc.stdout
            write_frame(self.proc.stdin, (method, args, kwargs))
            reply = read_frame(self.proc.stdout)
            assert reply is not None, f"the {self.name} worker died (status {self.proc.wait()})"
            if reply[0] == "op_error":
                raise OpError(*reply[1:])
            assert reply[0] == "ok", reply[1]
            return reply[1]
        return call

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()


@dataclass
class Netns:
    """A container: its process, and its name under /var/run/netns."""

    proc: Container
    name: str

    @property
    def pid(self) -> int:
        return self.proc.pid


@pytest.fixture
def box(sandbox) -> Sandbox:
    return sandbox()


@pytest.fixture(params=NAMES)
def b(request: pytest.FixtureRequest, box: Sandbox) -> Iterator[Remote]:
    remote = Remote(box, request.param)
    yield remote
    remote.close()


@pytest.fixture
def ct(box: Sandbox) -> Iterator[Netns]:
    proc = box.container()
    name = f"{box.name}-c"
    path = f"/var/run/netns/{name}"
    os.symlink(f"/proc/{proc.pid}/ns/net", path)
    yield Netns(proc, name)
    if os.path.islink(path):
        os.unlink(path)


# --- what the kernel says, read with `ip` --------------------------------------------

def kernel_links(box: Sandbox | None = None, ct: Netns | None = None) -> dict[str, dict[str, Any]]:
    argv = ["ip", "-n", box.name] if box else ["nsenter", f"--net=/proc/{ct.pid}/ns/net", "ip"]  # type: ignore[union-attr]
    out = subprocess.run([*argv, "-j", "-d", "addr", "show"], capture_output=True, text=True, check=True).stdout
    return {link["ifname"]: link for link in json.loads(out)}


def kernel_routes(ct: Netns) -> list[dict[str, Any]]:
    out = subprocess.run(["nsenter", f"--net=/proc/{ct.pid}/ns/net", "ip", "-j", "-d", "-4", "route",
                          "show", "table", "main"], capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def inet(link: dict[str, Any]) -> list[str]:
    return [f"{a['local']}/{a['prefixlen']}" for a in link.get("addr_info", []) if a["family"] == "inet"]


def raises(errnum: int, call: Any, *args: Any, **kwargs: Any) -> OpError:
    """The call fails with an OpError carrying ``errnum``, in the common message style."""
    with pytest.raises(OpError) as info:
        call(*args, **kwargs)
    assert info.value.errno == errnum, f"{info.value} (errno {info.value.errno}, wanted {errno.errorcode[errnum]})"
    assert MESSAGE.match(str(info.value)), str(info.value)
    return info.value


def container_end(b: Remote, ct: Netns, host: str = "h16a", peer: str = "h16b") -> None:
    """A veth pair with ``peer`` moved into the container."""
    b.veth_add(host, peer)
    b.link_set_netns(peer, ct.pid)


# --- links -------------------------------------------------------------------------

def test_missing_link_is_none(b: Remote, ct: Netns) -> None:
    assert b.link_get("h16none") is None
    assert b.link_get("h16none", ct.name) is None
    lo = b.link_get("lo", ct.name)
    assert isinstance(lo, Link) and lo.kind is None and lo.up is False and lo.index == 1


def test_a_missing_link_is_the_gone_error(b: Remote, ct: Netns) -> None:
    # The one "already gone" rule (netsetter.steps.gone_is_fine, the CNI plugin's DEL,
    # netsetter down): ENODEV, worded as `ip` words it.
    for call, args in ((b.link_del, ("h16none",)), (b.link_del, ("h16none", ct.name)),
                       (b.link_set_up, ("h16none",)), (b.link_set_down, ("h16none", ct.name)),
                       (b.link_set_mtu, ("h16none", 1400)), (b.link_set_master, ("h16none", "lo")),
                       (b.link_set_netns, ("h16none", ct.pid)),
                       (b.addr_add, ("h16none", IPv4Interface("10.9.0.1/24"))),
                       (b.addr_del, ("h16none", IPv4Interface("10.9.0.1/24"), ct.name)),
                       (b.route_add, (IPv4Network("10.9.0.0/16"), None, "h16none", ct.name))):
        error = raises(errno.ENODEV, call, *args)
        assert 'Cannot find device "h16none"' in error.cause, error


def test_bridge_add_with_its_mac(b: Remote, box: Sandbox) -> None:
    b.bridge_add("h16br", MAC)
    link = b.link_get("h16br")
    assert (link.kind, link.mac, link.up, link.master, link.addrs) == ("bridge", MAC, False, None, ())
    seen = kernel_links(box)["h16br"]
    assert (seen["linkinfo"]["info_kind"], seen["address"], seen["ifindex"]) == ("bridge", MAC, link.index)
    raises(errno.EEXIST, b.bridge_add, "h16br", MAC)


def test_veth_pair_points_at_each_other(b: Remote, box: Sandbox) -> None:
    b.veth_add("h16a", "h16b")
    a, z = b.link_get("h16a"), b.link_get("h16b")
    assert (a.kind, z.kind) == ("veth", "veth")
    assert (a.peer_index, z.peer_index) == (z.index, a.index)
    seen = kernel_links(box)
    assert (seen["h16a"]["link"], seen["h16b"]["link"]) == ("h16b", "h16a")  # `ip` names a peer in this netns
    raises(errno.EEXIST, b.veth_add, "h16a", "h16c")
    assert "h16c" not in kernel_links(box)  # a refused pair leaves nothing behind


def test_master_and_bridge_ports(b: Remote, box: Sandbox) -> None:
    b.bridge_add("h16br", MAC)
    assert b.bridge_ports("h16br") == []
    b.veth_add("h16a", "h16b")
    b.veth_add("h16c", "h16d")
    b.link_set_master("h16a", "h16br")
    b.link_set_master("h16c", "h16br")
    assert sorted(b.bridge_ports("h16br")) == ["h16a", "h16c"]
    assert b.link_get("h16a").master == "h16br" and b.link_get("h16b").master is None
    seen = kernel_links(box)
    assert {n for n, link in seen.items() if link.get("master") == "h16br"} == {"h16a", "h16c"}
    assert b.bridge_ports("h16none") == []  # no bridge, no ports
    raises(errno.ENODEV, b.link_set_master, "h16b", "h16none")


def test_up_and_down(b: Remote, box: Sandbox, ct: Netns) -> None:
    b.bridge_add("h16br", MAC)
    b.link_set_up("h16br", dev=True)
    assert b.link_get("h16br").up and "UP" in kernel_links(box)["h16br"]["flags"]
    b.link_set_down("h16br")
    assert not b.link_get("h16br").up and "UP" not in kernel_links(box)["h16br"]["flags"]
    b.link_set_up("lo", ct.name)
    assert b.link_get("lo", ct.name).up and "UP" in kernel_links(ct=ct)["lo"]["flags"]
    b.link_set_down("lo", ct.name)
    assert "UP" not in kernel_links(ct=ct)["lo"]["flags"]


def test_hairpin_on_a_bridge_port(b: Remote, box: Sandbox) -> None:
    b.bridge_add("h16br", MAC)
    b.veth_add("h16a", "h16b")
    b.link_set_master("h16a", "h16br")
    b.link_set_hairpin("h16a", True)
    assert kernel_links(box)["h16a"]["linkinfo"]["info_slave_data"]["hairpin"] is True
    b.link_set_hairpin("h16a", False)
    assert kernel_links(box)["h16a"]["linkinfo"]["info_slave_data"]["hairpin"] is False
    raises(errno.ENODEV, b.link_set_hairpin, "h16none", True)
    with pytest.raises(OpError) as info:  # not a bridge port: the kernel refuses (EOPNOTSUPP or EINVAL)
        b.link_set_hairpin("h16b", True)
    assert info.value.errno in (errno.EOPNOTSUPP, errno.EINVAL) or "not" in info.value.cause, info.value


def test_promisc(b: Remote, box: Sandbox, ct: Netns) -> None:
    b.bridge_add("h16br", MAC)
    b.link_set_promisc("h16br", True)
    assert kernel_links(box)["h16br"]["promiscuity"] == 1 and "PROMISC" in kernel_links(box)["h16br"]["flags"]
    b.link_set_promisc("h16br", True)  # a flag, not a counter: setting it twice counts once
    assert kernel_links(box)["h16br"]["promiscuity"] == 1
    b.link_set_promisc("h16br", False)
    assert kernel_links(box)["h16br"]["promiscuity"] == 0
    b.link_set_promisc("lo", True, ct.name)
    assert "PROMISC" in kernel_links(ct=ct)["lo"]["flags"]
    raises(errno.ENODEV, b.link_set_promisc, "h16none", True)


def test_alias_is_set_and_read_back(b: Remote, box: Sandbox, ct: Netns) -> None:
    container_end(b, ct)
    b.bridge_add("h16br", MAC)
    assert b.link_get("h16br").alias == ""
    b.link_set_alias("h16br", "ns-proc:pid:1:2")
    b.link_set_alias("h16b", "ns-proc:cni:ctr:eth0", ct.name)
    assert kernel_links(box)["h16br"]["ifalias"] == "ns-proc:pid:1:2"
    assert kernel_links(ct=ct)["h16b"]["ifalias"] == "ns-proc:cni:ctr:eth0"
    assert b.link_get("h16br").alias == "ns-proc:pid:1:2"
    assert b.link_get("h16b", ct.name).alias == "ns-proc:cni:ctr:eth0"
    raises(errno.ENODEV, b.link_set_alias, "h16none", "x")


def test_mtu(b: Remote, box: Sandbox, ct: Netns) -> None:
    container_end(b, ct)
    b.link_set_mtu("h16a", 1400)
    b.link_set_mtu("h16b", 1300, ct.name)
    assert kernel_links(box)["h16a"]["mtu"] == 1400
    assert kernel_links(ct=ct)["h16b"]["mtu"] == 1300
    raises(errno.EINVAL, b.link_set_mtu, "h16a", 10)  # below the minimum: refused, not clamped


def test_link_set_netns_moves_it_into_the_pid_netns(b: Remote, box: Sandbox, ct: Netns) -> None:
    container_end(b, ct)
    host = b.link_get("h16a")
    assert b.link_get("h16b") is None and "h16b" not in kernel_links(box)
    inside = b.link_get("h16b", ct.name)
    assert inside.kind == "veth" and inside.peer_index == host.index and host.peer_index == inside.index
    seen = kernel_links(ct=ct)["h16b"]
    assert (seen["ifindex"], seen["link_index"]) == (inside.index, host.index)
    b.veth_add("h16c", "h16d")
    raises(errno.ESRCH, b.link_set_netns, "h16d", 2 ** 22 + 1)  # above pid_max: no such process
    assert "h16d" in kernel_links(box)


def test_link_set_netns_refuses_a_name_taken_in_the_container(b: Remote, box: Sandbox, ct: Netns) -> None:
    container_end(b, ct)
    b.veth_add("h16c", "h16b")  # the same name as the end already inside
    raises(errno.EEXIST, b.link_set_netns, "h16b", ct.pid)
    assert "h16b" in kernel_links(box)


def test_deleting_one_end_deletes_its_peer_in_the_container(b: Remote, ct: Netns) -> None:
    container_end(b, ct)
    b.link_del("h16a")
    assert b.link_get("h16b", ct.name) is None and "h16b" not in kernel_links(ct=ct)


# --- addresses ----------------------------------------------------------------------

def test_addr_add_and_del(b: Remote, box: Sandbox, ct: Netns) -> None:
    b.bridge_add("h16br", MAC)
    addr = IPv4Interface("10.10.10.100/24")
    b.addr_add("h16br", addr)
    assert b.link_get("h16br").addrs == (addr,)
    seen = kernel_links(box)["h16br"]["addr_info"]
    assert [(a["local"], a["prefixlen"], a["scope"], "broadcast" in a) for a in seen if a["family"] == "inet"] == \
        [("10.10.10.100", 24, "global", False)]  # as `ip addr add` makes it: no broadcast
    raises(errno.EEXIST, b.addr_add, "h16br", addr)
    b.addr_add("h16br", IPv4Interface("10.20.0.1/16"))
    assert set(b.link_get("h16br").addrs) == {addr, IPv4Interface("10.20.0.1/16")}
    b.addr_del("h16br", addr)
    assert inet(kernel_links(box)["h16br"]) == ["10.20.0.1/16"]
    raises(errno.EADDRNOTAVAIL, b.addr_del, "h16br", addr)  # gone: one of gone_is_fine's errnos


def test_addr_in_the_container(b: Remote, ct: Netns) -> None:
    container_end(b, ct)
    addr = IPv4Interface("10.10.10.101/24")
    b.addr_add("h16b", addr, ct.name)
    assert b.link_get("h16b", ct.name).addrs == (addr,)
    assert inet(kernel_links(ct=ct)["h16b"]) == ["10.10.10.101/24"]
    b.addr_del("h16b", addr, ct.name)
    assert inet(kernel_links(ct=ct)["h16b"]) == []


# --- routes -------------------------------------------------------------------------

def routed_container(b: Remote, ct: Netns) -> None:
    container_end(b, ct)
    b.addr_add("h16b", IPv4Interface("10.10.10.101/24"), ct.name)
    b.link_set_up("h16b", ct.name)


def test_default_route(b: Remote, ct: Netns) -> None:
    routed_container(b, ct)
    assert b.default_route(ct.name) is None
    b.route_add_default(IPv4Address("10.10.10.100"), "h16b", ct.name)
    assert b.default_route(ct.name) == ("10.10.10.100", "h16b")
    default = [r for r in kernel_routes(ct) if r["dst"] == "default"]
    assert [(r["gateway"], r["dev"], r["protocol"], r.get("scope", "global")) for r in default] == \
        [("10.10.10.100", "h16b", "boot", "global")]
    raises(errno.EEXIST, b.route_add_default, IPv4Address("10.10.10.100"), "h16b", ct.name)


def test_route_add_with_and_without_gateway_and_routes(b: Remote, ct: Netns) -> None:
    routed_container(b, ct)
    on_link, via = IPv4Network("10.124.0.0/16"), IPv4Network("10.125.0.0/16")
    b.route_add(on_link, None, "h16b", ct.name)
    b.route_add(via, IPv4Address("10.10.10.1"), "h16b", ct.name)
    b.route_add(IPv4Network("0.0.0.0/0"), IPv4Address("10.10.10.100"), "h16b", ct.name)
    listed = b.routes(ct.name)
    assert all(isinstance(r, Route) for r in listed)
    assert set(listed) == {Route(IPv4Network("10.10.10.0/24"), None, "h16b"),  # the address's own
                           Route(on_link, None, "h16b"),
                           Route(via, IPv4Address("10.10.10.1"), "h16b"),
                           Route(IPv4Network("0.0.0.0/0"), IPv4Address("10.10.10.100"), "h16b")}
    seen = {r["dst"]: r for r in kernel_routes(ct)}
    assert (seen["10.124.0.0/16"]["scope"], seen["10.124.0.0/16"]["protocol"]) == ("link", "boot")
    assert (seen["10.125.0.0/16"]["gateway"], seen["10.125.0.0/16"].get("scope", "global")) == \
        ("10.10.10.1", "global")
    assert b.default_route(ct.name) == ("10.10.10.100", "h16b")
    assert b.routes() == []  # the sandbox host has no IPv4 route of its own
    raises(errno.EEXIST, b.route_add, on_link, None, "h16b", ct.name)


def test_a_gateway_off_the_link_is_refused(b: Remote, ct: Netns) -> None:
    routed_container(b, ct)
    with pytest.raises(OpError) as info:
        b.route_add(IPv4Network("10.126.0.0/16"), IPv4Address("10.99.0.1"), "h16b", ct.name)
    assert MESSAGE.match(str(info.value)) and "10.126.0.0/16" in str(info.value)
    assert "10.126.0.0/16" not in {r["dst"] for r in kernel_routes(ct)}


# --- the peer made in place ------------------------------------------------------------

def test_veth_add_peer_in_makes_the_peer_inside(b: Remote, box: Sandbox, ct: Netns) -> None:
    b.bridge_add("h16br", MAC)
    b.link_set_up("h16br")
    b.veth_add_peer_in("h16a", "eth0", ct.name, master="h16br", mtu=1400, mac="02:00:00:00:00:01",
                       peer_mac="02:00:00:00:00:02")
    host = b.link_get("h16a")
    assert (host.kind, host.master, host.up, host.mac) == ("veth", "h16br", True, "02:00:00:00:00:01")
    assert b.link_get("eth0") is None and "eth0" not in kernel_links(box)
    inside = b.link_get("eth0", ct.name)
    assert (inside.kind, inside.up, inside.mac, inside.peer_index) == ("veth", False, "02:00:00:00:00:02",
                                                                       host.index)
    assert kernel_links(box)["h16a"]["mtu"] == 1400 and kernel_links(ct=ct)["eth0"]["mtu"] == 1400
    assert b.bridge_ports("h16br") == ["h16a"]
    # the peer's name is taken in the container: refused, and nothing is left on the host
    raises(errno.EEXIST, b.veth_add_peer_in, "h16c", "eth0", ct.name, master="h16br")
    assert "h16c" not in kernel_links(box)


def test_veth_add_peer_in_without_mtu_or_macs(b: Remote, ct: Netns) -> None:
    b.bridge_add("h16br", MAC)
    b.veth_add_peer_in("h16a", "eth1", ct.name, master="h16br")
    inside = b.link_get("eth1", ct.name)
    assert inside is not None and inside.mac and kernel_links(ct=ct)["eth1"]["mtu"] == 1500
    raises(errno.ENODEV, b.veth_add_peer_in, "h16c", "eth2", ct.name, master="h16none")


# --- namespaces by name ------------------------------------------------------------------

def test_a_missing_netns_name_is_an_error_with_errno(b: Remote) -> None:
    error = raises(errno.ENOENT, b.link_get, "lo", "h16-no-such-netns")
    assert "h16-no-such-netns" in str(error)


def test_a_name_that_comes_to_mean_another_netns_is_followed(b: Remote, box: Sandbox, ct: Netns) -> None:
    # As `ip netns exec NAME`: the entry is read at each call. A pid reused by a new
    # container must not reach the old container's namespace through a kept socket.
    b.link_set_up("lo", ct.name)
    other = box.container()
    os.unlink(f"/var/run/netns/{ct.name}")
    os.symlink(f"/proc/{other.pid}/ns/net", f"/var/run/netns/{ct.name}")
    assert b.link_get("lo", ct.name).up is False
    b.link_set_up("lo", ct.name)
    assert "UP" in kernel_links(ct=Netns(other, ct.name))["lo"]["flags"]


# --- the trace ---------------------------------------------------------------------------

def test_every_change_is_traced_and_queries_are_marked(b: Remote, ct: Netns) -> None:
    b.link_get("lo", ct.name)
    b.routes(ct.name)
    queries = b.trace()
    assert queries and not any(change for _, change in queries)
    b.bridge_add("h16br", MAC)
    changes = b.trace()[len(queries):]
    assert [change for _, change in changes][-1] is True and "h16br" in changes[-1][0]
    assert all(text for text, _ in changes)
