"""The netlink backend: the same primitives through pyroute2, no `ip` process.

One ``IPRoute`` socket per network namespace. For a namespace named under
/var/run/netns, the socket is created inside it: the thread enters the netns
with setns(2) (opening /var/run/netns/NAME, as `ip netns exec` does), creates
the socket, and returns at once. A netlink socket stays bound to the netns it
was created in, so no helper process is needed (pyroute2's own
``IPRoute(netns=...)`` forks one per namespace).
"""

from __future__ import annotations

import os
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Any

from nskit import netns as netns_entry
from nskit import syscalls
from nskit.errors import OpError

from .base import Backend, Command, Link, Route

RTPROT_BOOT = 3  # what `ip route add` sets; pyroute2 would default to static
IFF_PROMISC = 0x100
IFF_UP = 0x1
RT_SCOPE_LINK = 253


class NetlinkBackend(Backend):
    name = "netlink"

    def __init__(self) -> None:
        from pyroute2 import IPRoute
        from pyroute2.netlink.exceptions import NetlinkError

        super().__init__()
        self._sockets: dict[object, Any] = {}
        self._IPRoute, self._NetlinkError = IPRoute, NetlinkError

    @classmethod
    def unavailable(cls) -> str | None:
        try:
            import pyroute2  # noqa: F401
        except ImportError:
            return "pyroute2 is not installed (pip install pyroute2)"
        return None

    # --- sockets -----------------------------------------------------------
    def _ipr(self, netns: str | None) -> Any:
        # Kept by the namespace's inode, not its name: an entry that comes to name
        # another netns (a pid reused) must not reach the old one through a kept socket.
        key: object = None
        if netns is not None:
            path = netns_entry.entry_path(netns)
            try:
                st = os.stat(path)
            except OSError as exc:
                raise OpError("open netns", path, exc.strerror or str(exc), exc.errno) from None
            key = (st.st_dev, st.st_ino)
        if key not in self._sockets:
            self._sockets[key] = self._IPRoute() if netns is None else self._open_in(netns)
        return self._sockets[key]

    def _open_in(self, netns: str) -> Any:
        path = netns_entry.entry_path(netns)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise OpError("open netns", path, exc.strerror or str(exc), exc.errno) from None
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            syscalls.setns(fd, syscalls.CLONE_NEWNET, path)
            try:
                return self._IPRoute()
            finally:
                # Back home before anything else runs in this thread.
                syscalls.setns(home, syscalls.CLONE_NEWNET, "/proc/thread-self/ns/net")
        except OSError as exc:
            raise OpError("enter netns", path, str(exc), exc.errno) from None
        finally:
            os.close(fd)
            os.close(home)

    def _call(self, verb: str, obj: str, netns: str | None, request: str, method: str,
              *args: Any, **kwargs: Any) -> Any:
        where = f" (netns {netns})" if netns else ""
        self.trace.append(Command(f"{request}{where}", change=not request.startswith("RTM_GET")))
        try:
            return getattr(self._ipr(netns), method)(*args, **kwargs)
        except self._NetlinkError as exc:
            raise OpError(verb, obj, os.strerror(exc.code) if exc.code else str(exc), exc.code) from None

    def _index(self, verb: str, name: str, netns: str | None) -> int:
        found = self._ipr(netns).link_lookup(ifname=name)
        if not found:
            raise OpError(verb, name, f"Cannot find device \"{name}\"", 19)
        return int(found[0])

    # --- queries -------------------------------------------------------------
    def link_get(self, name: str, netns: str | None = None) -> Link | None:
        ipr = self._ipr(netns)
        self.trace.append(Command(f"RTM_GETLINK {name}" + (f" (netns {netns})" if netns else ""), False))
        found = ipr.link_lookup(ifname=name)
        if not found:
            return None
        msg = ipr.get_links(found[0])[0]
        info = msg.get_attr("IFLA_LINKINFO")
        master = msg.get_attr("IFLA_MASTER")
        master_name = None
        if master:
            master_name = ipr.get_links(master)[0].get_attr("IFLA_IFNAME")
        addrs = tuple(IPv4Interface(f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}")
                      for a in ipr.get_addr(index=found[0], family=2))
        return Link(name=name, kind=info.get_attr("IFLA_INFO_KIND") if info else None,
                    up=bool(msg["flags"] & IFF_UP), master=master_name,
                    mac=msg.get_attr("IFLA_ADDRESS") or "", addrs=addrs, index=int(found[0]),
                    peer_index=msg.get_attr("IFLA_LINK"), alias=msg.get_attr("IFLA_IFALIAS") or "")

    def bridge_ports(self, bridge: str) -> list[str]:
        ipr = self._ipr(None)
        self.trace.append(Command(f"RTM_GETLINK master {bridge}", False))
        found = ipr.link_lookup(ifname=bridge)
        if not found:
            return []
        return [m.get_attr("IFLA_IFNAME") for m in ipr.get_links() if m.get_attr("IFLA_MASTER") == found[0]]

    def default_route(self, netns: str | None = None) -> tuple[str, str] | None:
        ipr = self._ipr(netns)
        self.trace.append(Command("RTM_GETROUTE default" + (f" (netns {netns})" if netns else ""), False))
        for route in ipr.get_default_routes(family=2, table=254):
            gateway = route.get_attr("RTA_GATEWAY")
            if gateway:
                oif = route.get_attr("RTA_OIF")
                dev = ipr.get_links(oif)[0].get_attr("IFLA_IFNAME") if oif else ""
                return gateway, dev
        return None

    # --- links ---------------------------------------------------------------
    def link_del(self, name: str, netns: str | None = None) -> None:
        index = self._index("delete link", name, netns)
        self._call("delete link", name, netns, f"RTM_DELLINK {name}", "link", "del", index=index)

    def bridge_add(self, name: str, mac: str) -> None:
        self._call("add bridge", name, None, f"RTM_NEWLINK {name} kind bridge address {mac}",
                   "link", "add", ifname=name, kind="bridge", address=mac)

    def veth_add(self, name: str, peer: str) -> None:
        self._call("add veth pair", f"{name}/{peer}", None, f"RTM_NEWLINK {name} kind veth peer {peer}",
                   "link", "add", ifname=name, kind="veth", peer=peer)

    def _set(self, verb: str, name: str, netns: str | None, what: str, **attrs: Any) -> None:
        index = self._index(verb, name, netns)
        self._call(verb, name, netns, f"RTM_NEWLINK {name} {what}", "link", "set", index=index, **attrs)

    def link_set_up(self, name: str, netns: str | None = None, *, dev: bool = False) -> None:
        self._set("set link up", name, netns, "up", state="up")

    def link_set_down(self, name: str, netns: str | None = None) -> None:
        self._set("set link down", name, netns, "down", state="down")

    def link_set_master(self, name: str, master: str) -> None:
        master_index = self._index(f"attach link to {master}", master, None)
        self._set(f"attach link to {master}", name, None, f"master {master}", master=master_index)

    def link_set_alias(self, name: str, alias: str, netns: str | None = None) -> None:
        self._set("set alias of", name, netns, f"alias {alias}", ifalias=alias)

    def link_set_netns(self, name: str, pid: int) -> None:
        self._set(f"move link into the netns of pid {pid}", name, None, f"netns pid {pid}", net_ns_pid=pid)

    def link_set_hairpin(self, name: str, on: bool) -> None:
        # IFLA_BRPORT_MODE in the port's IFLA_INFO_SLAVE_DATA, as `ip link set type bridge_slave` sends it
        self._set(f"set hairpin {'on' if on else 'off'} on", name, None,
                  f"bridge_slave hairpin {'on' if on else 'off'}", kind="bridge_slave", mode=int(on))

    def link_set_promisc(self, name: str, on: bool, netns: str | None = None) -> None:
        self._set(f"set promisc {'on' if on else 'off'} on", name, netns, f"promisc {'on' if on else 'off'}",
                  flags=IFF_PROMISC if on else 0, change=IFF_PROMISC)

    # --- addresses and routes ----------------------------------------------
    def addr_add(self, dev: str, addr: IPv4Interface, netns: str | None = None) -> None:
        index = self._index(f"add address {addr} to", dev, netns)
        self._call(f"add address {addr} to", dev, netns, f"RTM_NEWADDR {addr} dev {dev}", "addr", "add",
                   index=index, address=str(addr.ip), prefixlen=addr.network.prefixlen)

    def addr_del(self, dev: str, addr: IPv4Interface, netns: str | None = None) -> None:
        index = self._index(f"delete address {addr} from", dev, netns)
        self._call(f"delete address {addr} from", dev, netns, f"RTM_DELADDR {addr} dev {dev}", "addr", "del",
                   index=index, address=str(addr.ip), prefixlen=addr.network.prefixlen)

    def route_add_default(self, gateway: IPv4Address, dev: str, netns: str | None = None) -> None:
        verb = f"add default route via {gateway} on"
        index = self._index(verb, dev, netns)
        self._call(verb, dev, netns, f"RTM_NEWROUTE default via {gateway} dev {dev}", "route", "add",
                   dst="0.0.0.0/0", gateway=str(gateway), oif=index, proto=RTPROT_BOOT)

    # --- for the CNI plugin: a container netns named under /var/run/netns ------
    def veth_add_peer_in(self, name: str, peer: str, netns: str, *, master: str, mtu: int | None = None,
                         mac: str | None = None, peer_mac: str | None = None) -> None:
        # One RTM_NEWLINK: IFLA_MASTER and IFF_UP for the first end; the peer's own
        # attributes, IFLA_NET_NS_FD among them, nested in IFLA_INFO_DATA (VETH_INFO_PEER).
        verb = "add veth pair"
        master_index = self._index(verb, master, None)
        path = netns_entry.entry_path(netns)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise OpError("open netns", path, exc.strerror or str(exc), exc.errno) from None
        size = {"mtu": mtu} if mtu else {}
        try:
            self._call(verb, f"{name}/{peer}", None,
                       f"RTM_NEWLINK {name} master {master} up kind veth peer {peer} netns {netns}"
                       + (f" mtu {mtu}" if mtu else ""),
                       "link", "add", ifname=name, kind="veth", master=master_index, state="up",
                       **({"address": mac} if mac else {}), **size,
                       peer={"ifname": peer, "net_ns_fd": fd, **({"address": peer_mac} if peer_mac else {}), **size})
        finally:
            os.close(fd)

    def link_set_mtu(self, name: str, mtu: int, netns: str | None = None) -> None:
        self._set(f"set MTU {mtu} on", name, netns, f"mtu {mtu}", mtu=mtu)

    def route_add(self, dst: IPv4Network, gateway: IPv4Address | None, dev: str,
                  netns: str | None = None) -> None:
        verb = f"add route to {dst} on"
        index = self._index(verb, dev, netns)
        # As `ip route add`: scope link for a route on the link (pyroute2 would make it global).
        via = {"gateway": str(gateway)} if gateway else {"scope": RT_SCOPE_LINK}
        self._call(verb, dev, netns, f"RTM_NEWROUTE {dst}" + (f" via {gateway}" if gateway else "") + f" dev {dev}",
                   "route", "add", dst=str(dst), oif=index, proto=RTPROT_BOOT, **via)

    def routes(self, netns: str | None = None) -> list[Route]:
        ipr = self._ipr(netns)
        self.trace.append(Command("RTM_GETROUTE table main" + (f" (netns {netns})" if netns else ""), False))
        names = {int(m["index"]): m.get_attr("IFLA_IFNAME") for m in ipr.get_links()}
        found = []
        for msg in ipr.get_routes(family=2, table=254):
            dst = msg.get_attr("RTA_DST") or "0.0.0.0"
            gateway = msg.get_attr("RTA_GATEWAY")
            found.append(Route(IPv4Network(f"{dst}/{msg['dst_len']}"), IPv4Address(gateway) if gateway else None,
                               names.get(msg.get_attr("RTA_OIF") or 0, "")))
        return found

    def close(self) -> None:
        for ipr in self._sockets.values():
            ipr.close()
        self._sockets.clear()
