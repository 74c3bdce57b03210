"""ADD: put the container on the bridge, with a leased address and its routes.

    add(invocation, conf, backend)
      -> the container's netns exists and is not the host's (else code 3 or 4)
      -> under the host lock, with the netns held by an fd (netns.opened; nothing named under /var/run/netns):
         ensure_bridge       create it (with a MAC of its own and the MTU), or verify it is a bridge; up;
                             promiscMode: promiscuous
         lease_address       own allocator: the first free address of the range (or CNI_ARGS IP), owned
                             by the attachment; ipam.type naming a plugin: its ADD (its DEL on failure),
                             its result merged as the reference bridge plugin merges it
         ensure_gateway      isGateway: the gateway address on the bridge (forceAddress: replacing another)
         setup_veth          one request: the host end on the bridge and up, the container end born in
                             the netns as CNI_IFNAME (taken already: code 104, as the spec requires);
                             both ends marked as the attachment's (IFLA_IFALIAS "ns-proc:cni:<id>:<ifname>",
                             what DEL and GC go by); hairpinMode: the host end's port flag
         configure_container the address, the link up, the routes (via the gateway)
         masquerade          ipMasq: NAT for the subnet's traffic leaving the host
         describe            the result: the three interfaces with their MACs, the address, the routes
      -> any failure (or Ctrl-C, SIGTERM) undoes what was made, newest first (nskit.undo)

The shape follows the reference bridge plugin (containernetworking/plugins):
one verb-named function per step, and an orchestrator that reads like a
script. Unlike it, the host end's name is derived from the attachment (DEL
finds it without the netns), addresses come from netsetter's own leases, and
the plugin picks the veth MACs itself, so the result needs no read-back. With
an existing bridge, ADD is four kernel requests plus one per route: each is a
process for the ip backend, which makes their number matter.
"""

from __future__ import annotations

import errno
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from functools import partial
from types import ModuleType

from backends.base import Link, marker
from nskit.errors import OpError
from nskit.names import random_mac
from nskit.undo import UndoStack

from netsetter import faults
from netsetter.host.links import delete_bridge_if_unused, delete_link
from netsetter.host.lock import host_lock
from . import netns
from .args import Invocation
from .config import NetConf, RouteConf, wanted_address
from .delegate import run_plugin
from .errors import INTERFACE_EXISTS, NO_ADDRESS, OPERATION_FAILED, UNSUPPORTED_FIELD, CniError, as_cni_error
from .result import Interface, IpConfig, Result, Route, parse

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~5 ms a CNI call)
if TYPE_CHECKING:
    from typing import Any
    from backends.base import Backend

CONTAINER_INDEX = 2  # the container's interface in the result: after the bridge and the host end
DEFAULT = IPv4Network("0.0.0.0/0")


class Addressing:
    """What the container gets, from either allocator: its addresses (each with its gateway),
    the routes to add (a gw of None: via the gateway), the DNS settings of the result."""

    def __init__(self, ips: list[tuple[IPv4Interface, IPv4Address | None]], routes: list[RouteConf],
                 dns: dict[str, Any]) -> None:
        self.ips, self.routes, self.dns = ips, routes, dns

    @property
    def gateway(self) -> IPv4Address | None:
        return next((gw for _, gw in self.ips if gw is not None), None)


def add(inv: Invocation, conf: NetConf, backend: "Backend") -> Result:
    want = wanted_address(conf, inv.args)
    if conf.ip_masq:
        nat_module()  # refuse before any change when NAT is not available
    with netns.opened(inv.netns) as ns:  # checked before any change: gone is code 3, the host's 4
        undo = UndoStack()
        try:
            with host_lock(), undo:
                faults.CNI_ADD("start")
                bridge = ensure_bridge(backend, conf, undo)
                faults.CNI_ADD("bridge")
                addressing = lease_address(conf, inv, want, undo)
                faults.CNI_ADD("lease")
                ensure_gateway(backend, conf, bridge, addressing, undo)
                faults.CNI_ADD("gateway")
                macs = setup_veth(backend, conf, inv, ns, undo)
                faults.CNI_ADD("veth")
                routes = configure_container(backend, inv.ifname, ns, addressing)
                faults.CNI_ADD("container")
                masquerade(conf, inv, addressing, undo)
                faults.CNI_ADD("masquerade")
                return describe(conf, inv, bridge, macs, addressing, routes)
        except Exception as exc:  # undone already (Ctrl-C and SIGTERM too, and they go on)
            error = as_cni_error(exc)
            error.add_details("undo also failed: " + "; ".join(undo.failures) if undo.failures
                              else "what was made was undone")
            if error is exc:
                raise
            raise error from exc


def ensure_bridge(backend: "Backend", conf: NetConf, undo: UndoStack) -> "Link":
    """Create the bridge, or verify the link of that name is one; bring it up; return it as it now is."""
    name = conf.bridge
    link = backend.link_get(name)
    made = link is None
    if link is None:
        mac = random_mac()
        backend.bridge_add(name, mac)
        undo.push(f"delete bridge {name}", lambda: delete_bridge_if_unused(backend, name))  # kept if a port joined meanwhile
        backend.link_set_alias(name, marker(f"cni-network:{conf.name}"))
        if conf.mtu:
            backend.link_set_mtu(name, conf.mtu)
        link = Link(name=name, kind="bridge", up=False, master=None, mac=mac)
    elif link.kind != "bridge":
        raise CniError(OPERATION_FAILED, f'failed to use bridge "{name}": a link of that name exists and is a '
                       f"{link.kind or 'plain'} device, not a bridge", "choose another \"bridge\" name")
    if conf.promisc:  # as the bridge plugin: set, and left set (other containers may rely on it)
        backend.link_set_promisc(name, True)
    if not link.up:
        backend.link_set_up(name)
        if not made:  # an existing bridge that was down: down again on failure
            undo.push(f"set {name} down", lambda: backend.link_set_down(name))
        link = link.replace(up=True)
    return link


def lease_address(conf: NetConf, inv: Invocation, want: IPv4Address | None, undo: UndoStack) -> Addressing:
    """The container's addresses and routes: from the IPAM plugin, or leased to the attachment
    from netsetter's own range (held until DEL, not tied to a pid)."""
    if conf.ipam_plugin:
        return delegated_address(conf, undo)
    if conf.ipam is None:
        return Addressing([], [], dict(conf.dns))
    ipam = conf.ipam
    pool = ipam.pool(conf.bridge)
    # A repeated ADD of the attachment finds its lease held already: that lease is the first
    # ADD's, and this ADD's rollback must not release it (two containers would share an address).
    held = any(lease.owner == inv.owner for lease in pool.leases())
    try:
        address = pool.allocate(inv.owner, want=want)
    except OpError as exc:
        if want is not None:
            holder = pool.get(want)
            raise CniError(NO_ADDRESS, f'failed to lease address "{want}": it is leased to '
                           f"{holder.owner if holder else 'another container'}") from None
        raise CniError(NO_ADDRESS, f'failed to lease an address in "{ipam.range_start}-{ipam.range_end}": '
                       "every address is leased", "DEL a container of this network, or widen the range") from exc
    if not held:
        undo.push(f"release {address}", lambda: pool.release(inv.owner))
    return Addressing([(ipam.prefixed(address), ipam.gateway)], conf.routes(), dict(conf.dns))


def delegated_address(conf: NetConf, undo: UndoStack) -> Addressing:
    """The IPAM plugin's ADD, merged as the reference bridge plugin does: a missing gateway is
    the subnet's first address when isGateway; isDefaultGateway adds a default route via it
    unless the plugin gave one; the network's own dns, when set, replaces the plugin's."""
    kind = conf.ipam_plugin
    assert kind
    got = run_plugin(kind, "ADD", conf.raw)
    undo.push(f'DEL of IPAM plugin "{kind}"', lambda: run_plugin(kind, "DEL", conf.raw))
    if not got or not got.get("ips"):
        raise CniError(OPERATION_FAILED, f'failed to get an address from IPAM plugin "{kind}": its result has '
                       "no ips", "check its configuration (ipam.ranges, ipam.subnet)")
    v6 = [ip.get("address") for ip in got["ips"] if isinstance(ip, dict) and ":" in str(ip.get("address", ""))]
    if v6:
        raise CniError(UNSUPPORTED_FIELD, f'unsupported IPv6 address {v6[0]} from IPAM plugin "{kind}"',
                       "netsetter-cni configures IPv4 only; give the plugin IPv4 ranges")
    try:
        theirs = parse(got)
    except CniError as exc:
        raise CniError(OPERATION_FAILED, f'failed to use the result of IPAM plugin "{kind}": '
                       f"{exc.msg.removeprefix('invalid prevResult: ')}") from None
    ips = []
    for ip in theirs.ips:
        gateway = ip.gateway
        if gateway is None and conf.is_gateway:
            gateway = ip.address.network.network_address + 1
        ips.append((ip.address, gateway))
    routes = [RouteConf(r.dst, r.gw) for r in theirs.routes]
    gateway = next((gw for _, gw in ips if gw is not None), None)
    if conf.is_default_gateway and gateway is not None and not any(r.dst == DEFAULT and r.gw for r in routes):
        routes.append(RouteConf(DEFAULT, gateway))
    return Addressing(ips, routes, dict(conf.dns) if conf.dns else theirs.dns)


def ensure_gateway(backend: "Backend", conf: NetConf, bridge: "Link", addressing: Addressing,
                   undo: UndoStack) -> None:
    """isGateway: the bridge carries each gateway address, so the containers' routes reach the host.
    Another address of the same subnet there is an error, or with forceAddress replaced."""
    if not conf.is_gateway:
        return
    for address, gw in addressing.ips:
        if gw is None:
            continue
        gateway = IPv4Interface(f"{gw}/{address.network.prefixlen}")
        if gateway in bridge.addrs:
            continue
        clash = [a for a in bridge.addrs if a.ip == gateway.ip or a.network.overlaps(gateway.network)]
        for other in clash:
            if not conf.force_address:
                raise CniError(OPERATION_FAILED, f'failed to add gateway "{gateway}" to "{conf.bridge}": the '
                               f"bridge has {other}, another address of that subnet",
                               "set forceAddress to replace it, or give the network another subnet")
            backend.addr_del(conf.bridge, other)
            undo.push(f"restore {other} on {conf.bridge}", partial(backend.addr_add, conf.bridge, other))
        backend.addr_add(conf.bridge, gateway)
        undo.push(f"delete {gateway} from {conf.bridge}", partial(backend.addr_del, conf.bridge, gateway))


def setup_veth(backend: "Backend", conf: NetConf, inv: Invocation, ns: str, undo: UndoStack) -> tuple[str, str]:
    """The veth pair, in one request: the host end a port of the bridge and up, the
    container end born inside the netns under its final name (no rename, no clash
    with a host link called eth0). Returns the MACs given to the two ends."""
    host, host_mac, container_mac = inv.host_veth, random_mac(), random_mac()
    try:
        backend.veth_add_peer_in(host, inv.ifname, ns, master=conf.bridge, mtu=conf.mtu,
                                 mac=host_mac, peer_mac=container_mac)
    except OpError as exc:
        if exc.errno != errno.EEXIST:
            raise
        raise _which_exists(backend, inv, ns) from None
    undo.push(f"delete {host}", lambda: delete_link(backend, host))  # the container end goes with it
    faults.CNI_ADD("pair")  # made, not yet marked
    # The kernel ignores IFLA_IFALIAS when it makes a link: the marks are requests of their own.
    # The host end first: killed before it, DEL still proves the pair ours (delete.py).
    backend.link_set_alias(host, marker(inv.owner))
    backend.link_set_alias(inv.ifname, marker(inv.owner), ns)
    if conf.hairpin:
        backend.link_set_hairpin(host, True)
    return host_mac, container_mac


def _which_exists(backend: "Backend", inv: Invocation, ns: str) -> CniError:
    """EEXIST names no link: find which end's name is taken."""
    inside = backend.link_get(inv.ifname, ns)
    if inside is not None:
        # The spec: "If an interface of the requested name already exists in the
        # container, the CNI plugin MUST return with an error."
        return CniError(INTERFACE_EXISTS, f'failed to add interface "{inv.ifname}": the container already has '
                        f"a {inside.kind or 'plain'} link of that name",
                        "each network of a container needs its own CNI_IFNAME")
    return CniError(OPERATION_FAILED, f'failed to add veth pair "{inv.host_veth}/{inv.ifname}": a link named '
                    f"{inv.host_veth} already exists on the host",
                    "it is left from an ADD of this container that had no DEL; run DEL for it first")


def configure_container(backend: "Backend", ifname: str, ns: str, addressing: Addressing) -> list[RouteConf]:
    """Inside the container: the addresses, the link up, then the routes; return the routes added.

    The order matters: a gateway is reached through the subnet route the address
    brings, and that route is only usable once the link is up; on a down link the
    kernel refuses the route ("Nexthop has invalid gateway", EINVAL). A default
    route that another network of the container set already is skipped, as the
    spec advises. Nothing to undo: it all goes with the veth pair.
    """
    for address, _ in addressing.ips:
        backend.addr_add(ifname, address, netns=ns)
    backend.link_set_up(ifname, netns=ns)
    added = []
    gateway = addressing.gateway
    for route in addressing.routes:
        try:
            backend.route_add(route.dst, route.gw or gateway, ifname, netns=ns)
        except OpError as exc:
            if exc.errno == errno.EEXIST and route.dst.prefixlen == 0:
                continue
            raise
        added.append(route)
    return added


def masquerade(conf: NetConf, inv: Invocation, addressing: Addressing, undo: UndoStack) -> None:
    """ipMasq: the subnet's traffic leaves the host with the host's address (iptables, netsetter.host.nat)."""
    if not conf.ip_masq or not addressing.ips:
        return
    nat = nat_module()
    undo.push("remove masquerade", lambda: nat.release(inv.owner))
    for subnet in dict.fromkeys(address.network for address, _ in addressing.ips):
        nat.masquerade(conf.bridge, subnet, inv.owner)


def nat_module() -> ModuleType:
    """netsetter.host.nat, imported when ipMasq asks for it (it runs iptables)."""
    try:
        from netsetter.host import nat
    except ImportError as exc:
        raise CniError(UNSUPPORTED_FIELD, "unsupported field ipMasq=true",
                       f"this installation cannot masquerade: {exc}") from None
    return nat


def describe(conf: NetConf, inv: Invocation, bridge: "Link", macs: tuple[str, str],
             addressing: Addressing, routes: list[RouteConf]) -> Result:
    """The result: every MAC is one this run chose or found, so nothing needs reading back."""
    return Result(interfaces=[Interface(conf.bridge, bridge.mac), Interface(inv.host_veth, macs[0]),
                              Interface(inv.ifname, macs[1], inv.netns)],
                  ips=[IpConfig(address, gw, CONTAINER_INDEX) for address, gw in addressing.ips],
                  routes=[Route(r.dst, r.gw) for r in routes], dns=addressing.dns)
