"""ADD: put the container on the bridge, with a leased address and its routes.

    add(invocation, conf, backend)
      -> the container's netns exists and is not the host's (else code 3 or 4)
      -> under the host lock, with the netns named under /var/run/netns:
         ensure_bridge       create it (with a MAC of its own and the MTU), or verify it is a bridge; up
         lease_address       the first free address of the range (or CNI_ARGS IP), owned by the attachment
         ensure_gateway      isGateway: the gateway address on the bridge
         setup_veth          one request: the host end on the bridge and up, the container end born in
                             the netns as CNI_IFNAME (taken already: code 104, as the spec requires)
         configure_container the address, the link up, the routes (via the gateway)
         masquerade          ipMasq: NAT for the subnet's traffic leaving the host
         describe            the result: the three interfaces with their MACs, the address, the routes
      -> any failure (or Ctrl-C, SIGTERM) undoes what was made, newest first

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
import os
from dataclasses import replace
from ipaddress import IPv4Address
from typing import TYPE_CHECKING

from backends.base import Link
from nskit.errors import OpError

from netsetter.host.ipam import Pool
from netsetter.host.lock import host_lock
from . import netns
from .args import Invocation
from .config import NetConf, RouteConf, wanted_address
from .errors import INTERFACE_EXISTS, NO_ADDRESS, OPERATION_FAILED, UNSUPPORTED_FIELD, CniError
from .links import delete_if_present, random_mac
from .result import Interface, IpConfig, Result, Route
from .rollback import Rollback

if TYPE_CHECKING:
    from backends.base import Backend

CONTAINER_INDEX = 2  # the container's interface in the result: after the bridge and the host end


def add(inv: Invocation, conf: NetConf, backend: "Backend") -> Result:
    want = wanted_address(conf, inv.args)
    if conf.ip_masq:
        nat_module()  # refuse before any change when NAT is not available
    netns.require(inv.netns)
    with host_lock(), netns.named(inv.netns, inv.netns_alias) as ns, Rollback() as undo:
        _test_hook("start")
        bridge = ensure_bridge(backend, conf, undo)
        _test_hook("bridge")
        address = lease_address(conf, inv, want, undo)
        _test_hook("lease")
        ensure_gateway(backend, conf, bridge, undo)
        _test_hook("gateway")
        macs = setup_veth(backend, conf, inv, ns, undo)
        _test_hook("veth")
        routes = configure_container(backend, conf, inv.ifname, ns, address)
        _test_hook("container")
        masquerade(conf, inv, undo)
        _test_hook("masquerade")
        return describe(conf, inv, bridge, macs, address, routes)


def ensure_bridge(backend: "Backend", conf: NetConf, undo: Rollback) -> "Link":
    """Create the bridge, or verify the link of that name is one; bring it up; return it as it now is."""
    name = conf.bridge
    link = backend.link_get(name)
    made = link is None
    if link is None:
        mac = random_mac()
        backend.bridge_add(name, mac)
        undo.push(f"delete bridge {name}", lambda: _delete_bridge_if_unused(backend, name))
        if conf.mtu:
            backend.link_set_mtu(name, conf.mtu)
        link = Link(name=name, kind="bridge", up=False, master=None, mac=mac)
    elif link.kind != "bridge":
        raise CniError(OPERATION_FAILED, f'failed to use bridge "{name}": a link of that name exists and is a '
                       f"{link.kind or 'plain'} device, not a bridge", "choose another \"bridge\" name")
    if not link.up:
        backend.link_set_up(name)
        if not made:  # an existing bridge that was down: down again on failure
            undo.push(f"set {name} down", lambda: backend.link_set_down(name))
        link = replace(link, up=True)
    return link


def _delete_bridge_if_unused(backend: "Backend", name: str) -> None:
    if not backend.bridge_ports(name):  # someone else's port joined meanwhile: keep it
        delete_if_present(backend, name)


def lease_address(conf: NetConf, inv: Invocation, want: IPv4Address | None, undo: Rollback) -> IPv4Address | None:
    """Lease an address of the range to the attachment: held until DEL, not tied to a pid."""
    if conf.ipam is None:
        return None
    ipam = conf.ipam
    pool = Pool(conf.bridge, ipam.subnet, ipam.gateway, ipam.range_start, ipam.range_end)
    try:
        address = pool.allocate(inv.owner, want=want)
    except OpError as exc:
        if want is not None:
            holder = pool.get(want)
            raise CniError(NO_ADDRESS, f'failed to lease address "{want}": it is leased to '
                           f"{holder.owner if holder else 'another container'}") from None
        raise CniError(NO_ADDRESS, f'failed to lease an address in "{ipam.range_start}-{ipam.range_end}": '
                       "every address is leased", "DEL a container of this network, or widen the range") from exc
    undo.push(f"release {address}", lambda: pool.release(inv.owner))
    return address


def ensure_gateway(backend: "Backend", conf: NetConf, bridge: "Link", undo: Rollback) -> None:
    """isGateway: the bridge carries the gateway address, so the containers' routes reach the host."""
    if not conf.is_gateway or conf.ipam is None:
        return
    gateway = conf.ipam.prefixed(conf.ipam.gateway)
    present = [a for a in bridge.addrs if a.ip == gateway.ip]
    if gateway in present:
        return
    if present:
        raise CniError(OPERATION_FAILED, f'failed to add gateway "{gateway}" to "{conf.bridge}": the bridge has '
                       f"{present[0]}, the same address with another prefix length")
    backend.addr_add(conf.bridge, gateway)
    undo.push(f"delete {gateway} from {conf.bridge}", lambda: backend.addr_del(conf.bridge, gateway))


def setup_veth(backend: "Backend", conf: NetConf, inv: Invocation, ns: str, undo: Rollback) -> tuple[str, str]:
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
    undo.push(f"delete {host}", lambda: delete_if_present(backend, host))  # the container end goes with it
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


def configure_container(backend: "Backend", conf: NetConf, ifname: str, ns: str,
                        address: IPv4Address | None) -> list[RouteConf]:
    """Inside the container: the address, the link up, then the routes; return the routes added.

    The order matters: a gateway is reached through the subnet route the address
    brings, and that route is only usable once the link is up; on a down link the
    kernel refuses the route ("Nexthop has invalid gateway", EINVAL). A default
    route that another network of the container set already is skipped, as the
    spec advises. Nothing to undo: it all goes with the veth pair.
    """
    if address is not None and conf.ipam is not None:
        backend.addr_add(ifname, conf.ipam.prefixed(address), netns=ns)
    backend.link_set_up(ifname, netns=ns)
    added = []
    for route in conf.routes():
        try:
            backend.route_add(route.dst, conf.next_hop(route), ifname, netns=ns)
        except OpError as exc:
            if exc.errno == errno.EEXIST and route.dst.prefixlen == 0:
                continue
            raise
        added.append(route)
    return added


def masquerade(conf: NetConf, inv: Invocation, undo: Rollback) -> None:
    """ipMasq: the subnet's traffic leaves the host with the host's address (iptables, netsetter.host.nat)."""
    if not conf.ip_masq or conf.ipam is None:
        return
    nat = nat_module()
    nat.masquerade(conf.bridge, conf.ipam.subnet, inv.owner)
    undo.push(f"remove masquerade for {conf.ipam.subnet}", lambda: nat.release(inv.owner))


def nat_module():  # type: ignore[no-untyped-def]
    """netsetter.host.nat, imported when ipMasq asks for it (it runs iptables)."""
    try:
        from netsetter.host import nat
    except ImportError as exc:
        raise CniError(UNSUPPORTED_FIELD, "unsupported field ipMasq=true",
                       f"this installation cannot masquerade: {exc}") from None
    return nat


def describe(conf: NetConf, inv: Invocation, bridge: "Link", macs: tuple[str, str],
             address: IPv4Address | None, routes: list[RouteConf]) -> Result:
    """The result: every MAC is one this run chose or found, so nothing needs reading back."""
    result = Result(interfaces=[Interface(conf.bridge, bridge.mac), Interface(inv.host_veth, macs[0]),
                                Interface(inv.ifname, macs[1], inv.netns)],
                    routes=[Route(r.dst, r.gw) for r in routes], dns=dict(conf.dns))
    if address is not None and conf.ipam is not None:
        result.ips.append(IpConfig(conf.ipam.prefixed(address), conf.ipam.gateway, CONTAINER_INDEX))
    return result


def _test_hook(step: str) -> None:
    """Fault injection for the tests: NETSETTER_CNI_TEST_FAIL_AT=STEP fails ADD after STEP."""
    if os.environ.get("NETSETTER_CNI_TEST_FAIL_AT") == step:
        raise OpError("run step", step, "failure injected by NETSETTER_CNI_TEST_FAIL_AT")
