"""CHECK: is the attachment still as ADD left it? prevResult says what to expect.

    check(invocation, conf, backend)
      -> CHECK exists from cniVersion 0.4.0 on (else code 1); prevResult is required (7)
      -> the container's netns exists (3) and is held by an fd meanwhile (netns.opened)
      -> check_bridge      the bridge of the configuration: a bridge, its MAC as listed
                           (and with isGateway, the gateway address on it)
      -> check_container   CNI_IFNAME in the netns listed as its sandbox: a veth, its MAC as listed
      -> check_host_end    a listed host interface that is a veth, a port of the bridge,
                           and the peer of the container's end (each one's IFLA_LINK is the other's index)
      -> check_addresses   each address of the container's interface is on it, and leased to the attachment
      -> check_routes      each route is in the container's main table, via its next hop
      -> check_masquerade  ipMasq: netsetter.host.nat holds a masquerade of the subnet for the attachment

Any difference is code 102 with ``failed to check <what> "<object>": <cause>``.
Nothing is changed and the host lock is not taken: CHECK only reads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import netns, version
from .args import Invocation
from .config import NetConf
from .errors import CHECK_FAILED, INCOMPATIBLE_VERSION, INVALID_CONFIG, CniError
from .result import Interface, Result, parse

if TYPE_CHECKING:
    from backends.base import Backend, Link


def check(inv: Invocation, conf: NetConf, backend: "Backend") -> None:
    if not version.allows_check(conf.cni_version):
        raise CniError(INCOMPATIBLE_VERSION, f"incompatible CNI version {conf.cni_version!r} for CHECK",
                       "CHECK came with CNI 0.4.0")
    if conf.prev_result is None:
        raise CniError(INVALID_CONFIG, "invalid network configuration: CHECK needs prevResult",
                       "the runtime passes the result of the ADD it checks")
    prev = parse(conf.prev_result)
    netns.require(inv.netns)  # gone: code 3, before the IPAM plugin is asked
    if conf.ipam_plugin:  # as the reference bridge plugin: the IPAM plugin checks its own part first
        from .delegate import run_plugin

        run_plugin(conf.ipam_plugin, "CHECK", conf.raw)
    with netns.opened(inv.netns) as ns:
        bridge = check_bridge(backend, conf, prev)
        index, container = check_container(backend, inv, prev, ns)
        check_host_end(backend, prev, bridge, container)
        check_addresses(conf, inv, prev, index, container)
        check_routes(backend, conf, prev, inv.ifname, ns)
    check_masquerade(conf, inv, prev)


def _failed(what: str, obj: str, cause: str) -> CniError:
    return CniError(CHECK_FAILED, f'failed to check {what} "{obj}": {cause}')


def _listed(prev: Result, name: str, in_sandbox: bool) -> Interface | None:
    return next((i for i in prev.interfaces if i.name == name and bool(i.sandbox) == in_sandbox), None)


def _same_mac(listed: Interface, link: "Link") -> bool:
    return not listed.mac or listed.mac.lower() == link.mac.lower()


def check_bridge(backend: "Backend", conf: NetConf, prev: Result) -> "Link":
    listed = _listed(prev, conf.bridge, in_sandbox=False)
    if listed is None:
        raise _failed("bridge", conf.bridge, "prevResult lists no host interface of that name")
    link = backend.link_get(conf.bridge)
    if link is None:
        raise _failed("bridge", conf.bridge, "no such link on the host")
    if link.kind != "bridge":
        raise _failed("bridge", conf.bridge, f"it is a {link.kind or 'plain'} device, not a bridge")
    if not _same_mac(listed, link):
        raise _failed("bridge", conf.bridge, f"its MAC is {link.mac}, prevResult says {listed.mac}")
    if conf.is_gateway:
        from ipaddress import IPv4Interface

        wanted = ([conf.ipam.prefixed(conf.ipam.gateway)] if conf.ipam is not None else
                  [IPv4Interface(f"{ip.gateway}/{ip.address.network.prefixlen}") for ip in prev.ips if ip.gateway])
        for gateway in wanted:
            if gateway not in link.addrs:
                raise _failed("bridge", conf.bridge, f"the gateway address {gateway} is missing")
    return link


def check_container(backend: "Backend", inv: Invocation, prev: Result, ns: str) -> tuple[int, "Link"]:
    found = prev.sandbox_interface(inv.ifname, inv.netns)
    if found is None:
        raise _failed("interface", inv.ifname, f"prevResult lists no interface of that name in sandbox {inv.netns}")
    index, listed = found
    link = backend.link_get(inv.ifname, ns)
    if link is None:
        raise _failed("interface", inv.ifname, f"no such link in the container's netns {inv.netns}")
    if link.kind != "veth":
        raise _failed("interface", inv.ifname, f"it is a {link.kind or 'plain'} device, not a veth")
    if not _same_mac(listed, link):
        raise _failed("interface", inv.ifname, f"its MAC is {link.mac}, prevResult says {listed.mac}")
    return index, link


def check_host_end(backend: "Backend", prev: Result, bridge: "Link", container: "Link") -> None:
    # The host end is the listed host veth that is the container end's peer; the
    # peers name each other by ifindex (IFLA_LINK), each in the other's netns.
    for listed in prev.interfaces:
        if listed.sandbox or listed.name == bridge.name:
            continue
        link = backend.link_get(listed.name)
        if link is None or link.kind != "veth" or link.index != container.peer_index:
            continue
        if link.peer_index != container.index:
            raise _failed("host end", listed.name, f"its peer is ifindex {link.peer_index}, "
                          f"not the container's {container.name} (ifindex {container.index})")
        if link.master != bridge.name:
            raise _failed("host end", listed.name, f"it is not a port of {bridge.name} (master: {link.master})")
        if not link.up:
            raise _failed("host end", listed.name, "it is down")
        if not _same_mac(listed, link):
            raise _failed("host end", listed.name, f"its MAC is {link.mac}, prevResult says {listed.mac}")
        return
    raise _failed("host end", container.name, "no listed host interface is the peer of the container's end")


def check_addresses(conf: NetConf, inv: Invocation, prev: Result, index: int, container: "Link") -> None:
    pool = None
    if conf.ipam is not None:
        ipam = conf.ipam
        pool = ipam.pool(conf.bridge)
    for ip in prev.ips:
        if ip.interface not in (None, index):
            continue
        if ip.address not in container.addrs:
            raise _failed("address", str(ip.address), f"it is not on {inv.ifname}")
        lease = pool.get(ip.address.ip) if pool else None
        if pool is not None and (lease is None or lease.owner != inv.owner):
            raise _failed("address", str(ip.address), f"it is not leased to {inv.owner}"
                          + (f" but to {lease.owner}" if lease else ""))


def check_routes(backend: "Backend", conf: NetConf, prev: Result, ifname: str, ns: str) -> None:
    present = backend.routes(ns)
    gateway = conf.ipam.gateway if conf.ipam else next((ip.gateway for ip in prev.ips if ip.gateway), None)
    for route in prev.routes:
        hop = route.gw or gateway
        if not any(r.dst == route.dst and r.gateway == hop and r.dev == ifname for r in present):
            raise _failed("route", str(route.dst), f"no route via {hop} on {ifname} in the container")


def check_masquerade(conf: NetConf, inv: Invocation, prev: Result) -> None:
    if not conf.ip_masq or (conf.ipam is None and not prev.ips):
        return
    from netsetter.host import nat

    subnet = str(conf.ipam.subnet if conf.ipam is not None else prev.ips[0].address.network)
    if not any(data["owner"] == inv.owner and m["subnet"] == subnet and m["bridge"] == conf.bridge
               for data in nat.summary() for m in data["masquerade"]):
        raise _failed("masquerade", subnet, f"netsetter.host.nat holds none for {inv.owner}")
