"""A fleet's network: one bridge in the current netns, a veth pair and a leased address per container.

    FleetNet.open()        the bridge: made (with a MAC of its own, the gateway address, up) or
                           reused when it is already a bridge (netsetter.fast.ensure_bridge, the
                           fast path's own); the pool of the subnet
    lease(pids)            under the host lock, one pass: an address for each container
    host_side(c)           one RTM_NEWLINK on the rtnl backend: veth_h<pid> on the bridge and up,
                           its peer eth0 made in place in the container's netns
                           (IFLA_NET_NS_FD): nothing is moved, so no move to wait for; then the
                           container's address and MAC as a permanent neighbour on the bridge
    inside(c)              run by the container itself, before its exec: lo and eth0 up, the
                           address, the default route (netsetter.fast.configure_inside), the
                           gateway as a permanent neighbour. It is root of the user namespace that owns
                           its netns, so it has CAP_NET_ADMIN there; the supervisor opens no socket
                           in it, and the containers configure themselves in parallel.
    release(pids)          the leases, one pass (ipam.Pool.release_many)

Neighbours: the kernel's neighbour table is one for all namespaces, and
at 1000 containers its default gc_thresh3 (1024, settable only in the initial
netns) dropped entries, so some containers did not answer. The fleet knows
every MAC it gives, so it adds the entries itself, permanent: since Linux 4.20
those are not counted against gc_thresh (net/core/neighbour.c, 58956317c8de).

A routed fleet (Fleet(..., routed=True)) learns nothing at all: each container has
its address as a /32, a link route to the gateway and `default via <gateway>`,
so every packet it sends, to the host or to another container, goes to the
gateway's permanent entry; the host routes it on, out of the same bridge, to
the container's permanent entry. No entry is learned by ARP on either side, so
none counts against gc_thresh, however many containers talk to each other (on a
plain fleet a container that talks to 999 others learns 999 entries, and each
of them learns one of it: past the machine's 1024 the kernel refuses new ones).
The netns that plays the host routes for it while the fleet lives, as an owner of
netsetter.host.nat (the one place that changes forwarding): net.ipv4.ip_forward = 1,
send_redirects = 0 on conf/all and on the bridge (the kernel sends an ICMP redirect
when either is 1, and a container that takes one learns its peer by ARP after all),
and the bridge's traffic to itself accepted in NSPROC-FORWARD (so that a DROP policy
on FORWARD, as Docker sets, does not cut the containers off from each other). When
the fleet ends, what no other owner needs is set back as it was; should the
supervisor be killed, `netsetter gc` does it.

Teardown deletes no link: when a container's last process ends, its netns
goes, and the kernel deletes the veth pair with it, in batches (see fleet.py).
The host lock is held only while leases are chosen; names need none, as a
host end is named by the pid of a live container, and a container end is
alone in its netns.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import TYPE_CHECKING

from nskit.errors import OpError

from .errors import Failed, UsageError

if TYPE_CHECKING:
    from backends.rtnl.backend import RtnlBackend
    from netsetter.host.ipam import Pool

CONTAINER_IFNAME = "eth0"


def host_ifname(pid: int) -> str:
    return f"veth_h{pid}"


@dataclass
class FleetNet:
    bridge: str
    subnet: IPv4Network
    gateway: IPv4Interface
    backend: "RtnlBackend | None" = None  # opened by open()
    made_bridge: bool = False
    bridge_mac: str = ""  # the gateway's MAC, for each container's permanent neighbour entry
    pool: "Pool | None" = None
    routed: bool = False  # each container a /32 routed by the host: see the module's docstring
    route_owner: str = ""  # the NAT owner that holds the routing (netsetter.host.nat.route)
    leased: dict[str, int] = field(default_factory=dict)  # owner -> pid

    @classmethod
    def parse(cls, bridge: str, subnet: str, gateway: str | None = None) -> "FleetNet":
        from nskit.errors import UsageError as NetUsageError
        from nskit.names import check_ifname

        try:
            check_ifname("bridge name", bridge)
        except NetUsageError as exc:
            raise UsageError(exc.what, exc.value, exc.reason) from None
        try:
            net = IPv4Network(subnet, strict=True)
        except ValueError as exc:
            raise UsageError("subnet", subnet, f"is not an IPv4 network ({exc})") from None
        if net.num_addresses < 4:
            raise UsageError("subnet", subnet, "has no room for a gateway and a container; use a /30 or larger")
        try:
            gw = IPv4Address(gateway) if gateway else net.network_address + 1
        except ValueError as exc:
            raise UsageError("gateway", gateway, str(exc)) from None
        if gw not in net or gw in (net.network_address, net.broadcast_address):
            raise UsageError("gateway", gw, f"is not a host address of {net}")
        return cls(bridge, net, IPv4Interface(f"{gw}/{net.prefixlen}"))

    def open(self) -> None:
        from backends.rtnl.backend import RtnlBackend
        from netsetter.fast import ensure_bridge
        from netsetter.host.ipam import Pool

        from nskit.boundary import deferred
        from nskit.names import random_mac

        self.backend = backend = RtnlBackend()
        try:
            self.made_bridge = ensure_bridge(backend, self.bridge, random_mac(), self.gateway)
            link = backend.link_get(self.bridge)
            assert link is not None
            self.bridge_mac = link.mac
        except OpError as exc:
            self.close()
            raise Failed("set up bridge", self.bridge, exc) from None
        except BaseException:
            self.close()
            raise
        if self.routed:
            try:
                self.route()
            except BaseException:
                with deferred():  # set back whole, whatever signal comes next
                    try:
                        self.unroute()  # what route() did before it failed or was interrupted
                    finally:
                        self.remove_bridge()  # if made here: nothing is on it yet
                        self.close()
                raise
        self.pool = Pool.for_range(self.bridge, self.subnet, self.gateway.ip, self.subnet.network_address + 1)

    def lease(self, pids: list[int]) -> list[IPv4Interface]:
        """An address for each container, chosen in one pass under the host lock."""
        from netsetter.host.ipam import pid_owner
        from netsetter.host.lock import host_lock

        owners = [pid_owner(pid, netns_inode(pid)) for pid in pids]
        try:
            with host_lock():
                assert self.pool is not None, "lease() before open()"
                addresses = self.pool.allocate_many(owners)
        except OpError as exc:
            raise Failed("lease addresses on", self.bridge, exc.cause) from None
        self.leased.update(zip(owners, pids, strict=True))
        prefix = 32 if self.routed else self.subnet.prefixlen  # what the container has on its eth0
        return [IPv4Interface(f"{a}/{prefix}") for a in addresses]

    def host_side(self, pid: int, address: IPv4Interface) -> None:
        """veth_h<pid> on the bridge, up; its peer eth0 born in the netns of ``pid`` with a MAC
        chosen here, so that the host knows it before any ARP: a permanent neighbour entry."""
        from nskit.names import random_mac

        mac = random_mac()
        try:
            # An absolute path is taken as the netns file itself (nskit.netns.entry_path joins it).
            assert self.backend is not None, "host_side() before open()"
            self.backend.veth_add_peer_in(host_ifname(pid), CONTAINER_IFNAME, f"/proc/{pid}/ns/net",
                                          master=self.bridge, peer_mac=mac)
            self.backend.neigh_add_permanent(self.bridge, address.ip, mac)
        except OpError as exc:
            raise Failed("add the veth pair of container", pid, exc.cause) from None
        no_ipv6(host_ifname(pid))

    def release(self, pids: list[int] | None = None) -> None:
        """Drop the leases of these containers (all of the fleet's by default), in one pass."""
        wanted = set(self.leased.values() if pids is None else pids)
        owners = {owner for owner, pid in self.leased.items() if pid in wanted}
        if owners and self.pool is not None:
            self.pool.release_many(owners)
        for owner in owners:
            del self.leased[owner]

    def host_ends(self) -> list[str]:
        """The fleet's host ends still on the bridge (the kernel removes them as netns go)."""
        if self.backend is None:
            return []
        try:
            return [p for p in self.backend.bridge_ports(self.bridge) if p.startswith("veth_h")]
        except OpError:
            return []

    def route(self) -> None:
        """The current netns routes between the containers (netsetter.host.nat.route: forwarding
        on, redirects off, the bridge's traffic to itself accepted), owned by this process."""
        from netsetter.host import nat
        from netsetter.host.ipam import pid_owner
        from netsetter.host.lock import host_lock
        from nskit.errors import NsError

        # Known before nat.route writes its file: a signal within it (or a failure half-way)
        # leaves an owner that unroute() then releases, where it was left to a later gc.
        self.route_owner = f"{pid_owner(os.getpid(), netns_inode(os.getpid()))}:route-{self.bridge}"
        try:
            with host_lock():
                nat.route(self.bridge, self.route_owner)
        except (NsError, OSError) as exc:
            raise Failed("route between the containers on", self.bridge, exc) from None

    def unroute(self) -> None:
        """What route() asked for, released (what another owner still needs stays)."""
        if not self.route_owner:
            return
        from netsetter.host import nat
        from netsetter.host.lock import host_lock
        from nskit.errors import NsError

        try:
            with host_lock():
                nat.release(self.route_owner)
        except (NsError, OSError) as exc:
            raise Failed("stop routing between the containers on", self.bridge, exc) from None
        self.route_owner = ""

    def remove_bridge(self) -> None:
        if self.made_bridge and self.backend is not None:
            try:
                if not self.backend.bridge_ports(self.bridge):
                    self.backend.link_del(self.bridge)
                    self.made_bridge = False
            except OpError as exc:
                if exc.errno != errno.ENODEV:
                    raise Failed("delete bridge", self.bridge, exc.cause) from None

    def close(self) -> None:
        if self.backend is not None:
            self.backend.close()
            self.backend = None


def inside(address: IPv4Interface, gateway: IPv4Address, gateway_mac: str) -> None:
    """The container's own half, run by the clone in its netns before it execs. A /32
    address is a routed fleet's: the gateway reached by a link route of its own, and through
    it every other address (nothing on the link but the gateway, so nothing to learn by ARP)."""
    from backends.rtnl.backend import RtnlBackend
    from netsetter.fast import configure_inside

    backend = RtnlBackend()  # a clone: sockets of its own, in its own netns
    try:
        # Not no_ipv6(): a thousand clones writing that sysctl at once spin on rtnl_trylock
        # (15 of 18 s of a 1000-container start); this request waits on the mutex instead.
        backend.link_set_addrgenmode_none(CONTAINER_IFNAME)
        if address.network.prefixlen == 32:
            # `ip route add GATEWAY dev eth0` first, so that `default via GATEWAY` finds it on the link.
            backend.addr_add(CONTAINER_IFNAME, address)
            backend.link_set_up(CONTAINER_IFNAME)
            backend.link_set_up("lo")
            backend.route_add(IPv4Network(f"{gateway}/32"), None, CONTAINER_IFNAME)
            backend.route_add_default(gateway, CONTAINER_IFNAME)
        else:
            configure_inside(backend, CONTAINER_IFNAME, address, gateway)
        # The gateway known without ARP, outside the shared table's gc limit (see host_side).
        backend.neigh_add_permanent(CONTAINER_IFNAME, gateway, gateway_mac)
    except OpError as exc:
        raise Failed("configure the network inside, on", CONTAINER_IFNAME, exc.cause) from None
    finally:
        backend.close()


def no_ipv6(ifname: str) -> None:
    """IPv6 off on one end of a pair, before its carrier is up: the fleet's network is IPv4.

    Otherwise every new port's link-local start-up (DAD, router solicitation, MLD
    reports) is multicast, which the bridge floods to every other port: N² frames for N
    containers, a softirq storm at a thousand. A per-link sysctl of the netns that has it.
    """
    path = f"/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6"
    try:
        with open(path, "w") as f:
            f.write("1")
    except FileNotFoundError:
        pass  # a kernel without IPv6: nothing to turn off
    except OSError as exc:
        raise Failed("turn IPv6 off on", ifname, f"{exc.strerror} ({path})") from None


def netns_inode(pid: int) -> int:
    return os.stat(f"/proc/{pid}/ns/net").st_ino
