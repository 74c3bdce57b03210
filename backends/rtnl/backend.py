"""The rtnl backend: the primitives as rtnetlink requests on a raw AF_NETLINK socket.

Standard library only. One socket per network namespace, opened on first use
and kept (see :mod:`.channel`); a netns named under /var/run/netns is reached
by a socket created inside it, a process's netns by the fd of /proc/PID/ns/net
(IFLA_NET_NS_FD). Links are named in the request itself (IFLA_IFNAME): a change
to a link by name is one request, a lookup one GET, never a dump of all links.
The trace holds one line per request, in the kernel's words.
"""

from __future__ import annotations

import errno as errnos
import os
import _socket as socket  # not socket.py: its selectors, enum wrappers and class cost each CNI call ~2.5 ms
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

from nskit import netns as netns_entry
from nskit.errors import OpError

from ..base import Backend, Command, Link, Route
from . import wire as w
from .channel import Channel, NetlinkError, Reply

NEW = w.NLM_F_CREATE | w.NLM_F_EXCL  # what `ip ... add` sends: make it, and refuse one that exists


class RtnlBackend(Backend):
    name = "rtnl"

    def __init__(self) -> None:  # not a dataclass of its own: ~2 ms less to import
        super().__init__()
        self._channels: dict[object, Channel] = {}
        self._pid = os.getpid()

    @classmethod
    def unavailable(cls) -> str | None:
        if not hasattr(socket, "AF_NETLINK"):
            return "this system has no AF_NETLINK sockets (rtnetlink is Linux's)"
        try:
            Channel.open().close()
        except OSError as exc:
            return f"cannot open an AF_NETLINK/NETLINK_ROUTE socket: {exc.strerror or exc}"
        return None

    # --- sockets -------------------------------------------------------------------
    def _channel(self, netns: str | None) -> Channel:
        """The socket of the host (None) or of the netns named under /var/run/netns.

        Kept by the namespace's inode, not its name: an entry that comes to name
        another namespace (a pid reused) gets a socket of its own.
        """
        if netns is None:
            key: object = None
        else:
            path = netns_entry.entry_path(netns)
            try:
                st = os.stat(path)
            except OSError as exc:
                raise OpError("open netns", path, exc.strerror or str(exc), exc.errno) from None
            key = (st.st_dev, st.st_ino)
        if self._pid != os.getpid():  # a forked child: its parent's sockets are not its own to read
            self._channels, self._pid = {}, os.getpid()
        channel = self._channels.get(key)
        if channel is None:
            channel = self._channels[key] = Channel.open() if netns is None else self._open_in(netns)
        return channel

    def _open_in(self, netns: str) -> Channel:
        path = netns_entry.entry_path(netns)
        fd = _open_ns(path, "open netns", path)
        try:
            return Channel.open_in(fd)
        except OSError as exc:
            raise OpError("enter netns", path, exc.strerror or str(exc), exc.errno) from None
        finally:
            os.close(fd)

    def _send(self, verb: str, obj: str, netns: str | None, text: str, kind: int, body: bytes,
              flags: int = 0, *, dump: bool = False) -> list[Reply]:
        self.trace.append(Command(text + (f" (netns {netns})" if netns else ""),
                                  change=kind not in (w.RTM_GETLINK, w.RTM_GETADDR, w.RTM_GETROUTE)))
        channel = self._channel(netns)
        try:
            return channel.dump(kind, body) if dump else channel.request(kind, body, flags)
        except NetlinkError as exc:
            cause = f'Cannot find device "{obj}"' if exc.errno == errnos.ENODEV and _is_link(kind) else str(exc)
            raise OpError(verb, obj, cause, exc.errno) from None
        except OSError as exc:
            raise OpError(verb, obj, exc.strerror or str(exc), exc.errno) from None

    # --- links by name ---------------------------------------------------------------
    def _getlink(self, verb: str, body: bytes, obj: str, netns: str | None, text: str) -> tuple[dict[int, bytes], tuple]:
        replies = self._send(verb, obj, netns, text, w.RTM_GETLINK,
                             body + w.attr_u32(w.IFLA_EXT_MASK, w.RTEXT_FILTER_SKIP_STATS))
        _, payload = replies[0]
        return w.attrs(payload, w.IFINFOMSG.size), w.IFINFOMSG.unpack_from(payload)

    def _index(self, verb: str, name: str, netns: str | None) -> int:
        """The ifindex of ``name``: one RTM_GETLINK by name."""
        _, (_, _, index, _, _) = self._getlink(verb, w.ifinfomsg() + w.attr_str(w.IFLA_IFNAME, name), name,
                                               netns, f"RTM_GETLINK {name}")
        return int(index)

    def _name_of(self, index: int, netns: str | None) -> str:
        try:
            found, _ = self._getlink("show link", w.ifinfomsg(index), f"index {index}", netns,
                                     f"RTM_GETLINK index {index}")
        except OpError as exc:
            if exc.errno == errnos.ENODEV:  # gone meanwhile
                return ""
            raise
        return w.as_str(found.get(w.IFLA_IFNAME)) or ""

    def _set(self, verb: str, name: str, netns: str | None, what: str, *attrs: bytes,
             flags: int = 0, change: int = 0) -> None:
        self._send(verb, name, netns, f"RTM_NEWLINK {name} {what}", w.RTM_NEWLINK,
                   w.ifinfomsg(0, flags, change) + w.attr_str(w.IFLA_IFNAME, name) + b"".join(attrs))

    # --- queries -------------------------------------------------------------------
    def link_get(self, name: str, netns: str | None = None) -> Link | None:
        try:
            found, (_, _, index, flags, _) = self._getlink(
                "show link", w.ifinfomsg() + w.attr_str(w.IFLA_IFNAME, name), name, netns, f"RTM_GETLINK {name}")
        except OpError as exc:
            if exc.errno == errnos.ENODEV:
                return None
            raise
        info = w.attrs(found.get(w.IFLA_LINKINFO, b""))
        master = w.as_u32(found.get(w.IFLA_MASTER))
        return Link(name=w.as_str(found.get(w.IFLA_IFNAME)) or name, kind=w.as_str(info.get(w.IFLA_INFO_KIND)),
                    up=bool(flags & w.IFF_UP), master=self._name_of(master, netns) if master else None,
                    mac=w.mac_text(found.get(w.IFLA_ADDRESS)), addrs=self._addrs(index, netns), index=index,
                    peer_index=w.as_u32(found.get(w.IFLA_LINK)), alias=w.as_str(found.get(w.IFLA_IFALIAS)) or "")

    def _addrs(self, index: int, netns: str | None) -> tuple[IPv4Interface, ...]:
        replies = self._send("list addresses of", f"index {index}", netns, f"RTM_GETADDR dump index {index}",
                             w.RTM_GETADDR, w.IFADDRMSG.pack(w.AF_INET, 0, 0, 0, index), dump=True)
        found = []
        for _, payload in replies:
            family, prefixlen, _, _, owner = w.IFADDRMSG.unpack_from(payload)
            if family != w.AF_INET or owner != index:  # without strict checking the kernel dumps them all
                continue
            a = w.attrs(payload, w.IFADDRMSG.size)
            raw = a.get(w.IFA_LOCAL) or a.get(w.IFA_ADDRESS)
            if raw:
                found.append(IPv4Interface((IPv4Address(raw), prefixlen)))
        return tuple(found)

    def bridge_ports(self, bridge: str) -> list[str]:
        try:
            index = self._index("list ports of", bridge, None)
        except OpError as exc:
            if exc.errno == errnos.ENODEV:  # no bridge, no ports
                return []
            raise
        replies = self._send("list ports of", bridge, None, f"RTM_GETLINK dump master {bridge}", w.RTM_GETLINK,
                             w.ifinfomsg() + w.attr_u32(w.IFLA_MASTER, index)
                             + w.attr_u32(w.IFLA_EXT_MASK, w.RTEXT_FILTER_SKIP_STATS), dump=True)
        ports = []
        for _, payload in replies:
            found = w.attrs(payload, w.IFINFOMSG.size)
            if w.as_u32(found.get(w.IFLA_MASTER)) == index:
                ports.append(w.as_str(found.get(w.IFLA_IFNAME)) or "")
        return ports

    def default_route(self, netns: str | None = None) -> tuple[str, str] | None:
        for route in self._routes(netns, "RTM_GETROUTE dump table main (default)"):
            if route.dst.prefixlen == 0 and route.gateway is not None:
                return str(route.gateway), route.dev
        return None

    def routes(self, netns: str | None = None) -> list[Route]:
        return self._routes(netns, "RTM_GETROUTE dump table main")

    def _routes(self, netns: str | None, text: str) -> list[Route]:
        try:
            replies = self._send("list routes of", netns or "host", netns, text, w.RTM_GETROUTE,
                                 w.RTMSG.pack(w.AF_INET, 0, 0, 0, w.RT_TABLE_MAIN, 0, 0, 0, 0), dump=True)
        except OpError as exc:
            if exc.errno == errnos.ENOENT:  # "FIB table does not exist": no route was ever added
                return []
            raise
        names: dict[int, str] = {}
        found = []
        for _, payload in replies:
            family, dst_len, _, _, table, _, _, _, flags = w.RTMSG.unpack_from(payload)
            a = w.attrs(payload, w.RTMSG.size)
            table = w.as_u32(a.get(w.RTA_TABLE)) or table
            if family != w.AF_INET or table != w.RT_TABLE_MAIN or flags & w.RTM_F_CLONED:
                continue
            oif = w.as_u32(a.get(w.RTA_OIF)) or 0
            if oif and oif not in names:
                names[oif] = self._name_of(oif, netns)
            dst, gateway = a.get(w.RTA_DST), a.get(w.RTA_GATEWAY)
            found.append(Route(IPv4Network((IPv4Address(dst) if dst else 0, dst_len), strict=False),
                               IPv4Address(gateway) if gateway else None, names.get(oif, "")))
        return found

    # --- links ---------------------------------------------------------------------
    def link_del(self, name: str, netns: str | None = None) -> None:
        self._send("delete link", name, netns, f"RTM_DELLINK {name}", w.RTM_DELLINK,
                   w.ifinfomsg() + w.attr_str(w.IFLA_IFNAME, name))

    def bridge_add(self, name: str, mac: str) -> None:
        address = _mac("add bridge", name, mac)
        self._send("add bridge", name, None, f"RTM_NEWLINK {name} type bridge address {mac}", w.RTM_NEWLINK,
                   w.ifinfomsg() + w.attr_str(w.IFLA_IFNAME, name) + w.attr(w.IFLA_ADDRESS, address)
                   + w.nest(w.IFLA_LINKINFO, w.attr_str(w.IFLA_INFO_KIND, "bridge")), NEW)

    def veth_add(self, name: str, peer: str) -> None:
        self._send("add veth pair", f"{name}/{peer}", None, f"RTM_NEWLINK {name} type veth peer {peer}",
                   w.RTM_NEWLINK, w.ifinfomsg() + w.attr_str(w.IFLA_IFNAME, name)
                   + _veth_info(w.attr_str(w.IFLA_IFNAME, peer)), NEW)

    def link_set_up(self, name: str, netns: str | None = None, *, dev: bool = False) -> None:
        self._set("set link up", name, netns, "up", flags=w.IFF_UP, change=w.IFF_UP)

    def link_set_down(self, name: str, netns: str | None = None) -> None:
        self._set("set link down", name, netns, "down", flags=0, change=w.IFF_UP)

    def link_set_master(self, name: str, master: str) -> None:
        verb = f"attach link to {master}"
        index = self._index(verb, master, None)
        self._set(verb, name, None, f"master {master}", w.attr_u32(w.IFLA_MASTER, index))

    def link_set_alias(self, name: str, alias: str, netns: str | None = None) -> None:
        self._set("set alias of", name, netns, f"alias {alias}", w.attr_str(w.IFLA_IFALIAS, alias))

    def link_set_netns(self, name: str, pid: int) -> None:
        verb = f"move link into the netns of pid {pid}"
        fd = _open_ns(f"/proc/{pid}/ns/net", verb, name)
        try:
            self._set(verb, name, None, f"netns pid {pid}", w.attr_u32(w.IFLA_NET_NS_FD, fd))
        finally:
            os.close(fd)

    def link_set_mtu(self, name: str, mtu: int, netns: str | None = None) -> None:
        self._set(f"set MTU {mtu} on", name, netns, f"mtu {mtu}", w.attr_u32(w.IFLA_MTU, mtu))

    def link_set_hairpin(self, name: str, on: bool) -> None:
        # The bridge's own setlink (AF_BRIDGE): IFLA_PROTINFO must be flagged nested, else
        # the kernel reads it as the old one-byte port state.
        verb = f"set hairpin {'on' if on else 'off'} on"
        index = self._index(verb, name, None)
        mode = w.attr(w.IFLA_BRPORT_MODE, bytes([int(on)]))
        self._send(verb, name, None, f"RTM_SETLINK AF_BRIDGE {name} protinfo mode {'hairpin' if on else 'veb'}",
                   w.RTM_SETLINK, w.ifinfomsg(index, family=w.AF_BRIDGE) + w.attr(w.IFLA_PROTINFO | w.NLA_F_NESTED, mode))

    def link_set_promisc(self, name: str, on: bool, netns: str | None = None) -> None:
        self._set(f"set promisc {'on' if on else 'off'} on", name, netns, f"promisc {'on' if on else 'off'}",
                  flags=w.IFF_PROMISC if on else 0, change=w.IFF_PROMISC)

    def neigh_add_permanent(self, dev: str, ip: IPv4Address, mac: str, netns: str | None = None) -> None:
        """`ip neigh replace IP lladdr MAC nud permanent dev DEV`. The neighbour table is one for
        every netns, its gc_thresh3 (1024 by default) settable only in the initial one; since
        Linux 4.20 (58956317c8de) permanent entries are off its gc list and do not count."""
        verb = f"add neighbour {ip} ({mac}) on"
        index = self._index(verb, dev, netns)
        self._send(verb, dev, netns, f"RTM_NEWNEIGH {ip} lladdr {mac} nud permanent dev {dev}", w.RTM_NEWNEIGH,
                   w.NDMSG.pack(w.AF_INET, index, w.NUD_PERMANENT, 0, 0) + w.attr(w.NDA_DST, ip.packed)
                   + w.attr(w.NDA_LLADDR, _mac(verb, dev, mac)), w.NLM_F_CREATE | w.NLM_F_REPLACE)

    def link_set_addrgenmode_none(self, name: str, netns: str | None = None) -> None:
        """No IPv6 address of its own (`ip link set NAME addrgenmode none`): no link-local, so no
        DAD, router solicitation or MLD report when it comes up. A netlink request under the
        rtnl mutex, where the disable_ipv6 sysctl retries rtnl_trylock in a loop (the restart
        spins when many namespaces write it at once). Not accepted in the RTM_NEWLINK that
        makes a link (EAFNOSUPPORT): set it before the link goes up."""
        self._set("turn off IPv6 addresses on", name, netns, "addrgenmode none",
                  w.nest(w.IFLA_AF_SPEC, w.nest(w.AF_INET6, w.attr(w.IFLA_INET6_ADDR_GEN_MODE,
                                                                  bytes([w.IN6_ADDR_GEN_MODE_NONE])))))

    def veth_add_peer_in(self, name: str, peer: str, netns: str, *, master: str, mtu: int | None = None,
                         mac: str | None = None, peer_mac: str | None = None) -> None:
        # One RTM_NEWLINK: the first end with IFLA_MASTER and IFF_UP; the peer's own
        # attributes, IFLA_NET_NS_FD among them, in VETH_INFO_PEER after an ifinfomsg.
        verb, obj = "add veth pair", f"{name}/{peer}"
        mine = w.attr(w.IFLA_ADDRESS, _mac(verb, obj, mac)) if mac else b""
        theirs = w.attr(w.IFLA_ADDRESS, _mac(verb, obj, peer_mac)) if peer_mac else b""
        size = w.attr_u32(w.IFLA_MTU, mtu) if mtu else b""
        index = self._index(verb, master, None)
        path = netns_entry.entry_path(netns)
        fd = _open_ns(path, "open netns", path)
        text = (f"RTM_NEWLINK {name}" + (f" address {mac}" if mac else "") + (f" mtu {mtu}" if mtu else "")
                + f" master {master} up type veth peer {peer}" + (f" address {peer_mac}" if peer_mac else "")
                + (f" mtu {mtu}" if mtu else "") + f" netns {netns}")
        try:
            self._send(verb, obj, None, text, w.RTM_NEWLINK,
                       w.ifinfomsg(0, w.IFF_UP, w.IFF_UP) + w.attr_str(w.IFLA_IFNAME, name) + mine + size
                       + w.attr_u32(w.IFLA_MASTER, index)
                       + _veth_info(w.attr_str(w.IFLA_IFNAME, peer) + theirs + size
                                    + w.attr_u32(w.IFLA_NET_NS_FD, fd)), NEW)
        finally:
            os.close(fd)

    # --- addresses and routes --------------------------------------------------------
    def addr_add(self, dev: str, addr: IPv4Interface, netns: str | None = None) -> None:
        self._addr(w.RTM_NEWADDR, f"add address {addr} to", dev, addr, netns, NEW)

    def addr_del(self, dev: str, addr: IPv4Interface, netns: str | None = None) -> None:
        self._addr(w.RTM_DELADDR, f"delete address {addr} from", dev, addr, netns, 0)

    def _addr(self, kind: int, verb: str, dev: str, addr: IPv4Interface, netns: str | None, flags: int) -> None:
        index = self._index(verb, dev, netns)
        # As `ip addr add`: the local address and the prefix's address alike, scope host for 127/8.
        scope = w.RT_SCOPE_HOST if addr.ip.is_loopback and kind == w.RTM_NEWADDR else w.RT_SCOPE_UNIVERSE
        packed = addr.ip.packed
        self._send(verb, dev, netns, f"{'RTM_NEWADDR' if kind == w.RTM_NEWADDR else 'RTM_DELADDR'} {addr} dev {dev}",
                   kind, w.IFADDRMSG.pack(w.AF_INET, addr.network.prefixlen, 0, scope, index)
                   + w.attr(w.IFA_LOCAL, packed) + w.attr(w.IFA_ADDRESS, packed), flags)

    def route_add_default(self, gateway: IPv4Address, dev: str, netns: str | None = None) -> None:
        self._route(f"add default route via {gateway} on", IPv4Network("0.0.0.0/0"), gateway, dev, netns)

    def route_add(self, dst: IPv4Network, gateway: IPv4Address | None, dev: str,
                  netns: str | None = None) -> None:
        self._route(f"add route to {dst} on", dst, gateway, dev, netns)

    def _route(self, verb: str, dst: IPv4Network, gateway: IPv4Address | None, dev: str,
               netns: str | None) -> None:
        index = self._index(verb, dev, netns)
        # As `ip route add`: proto boot; scope link for a route on the link, universe via a gateway.
        scope = w.RT_SCOPE_UNIVERSE if gateway else w.RT_SCOPE_LINK
        body = w.RTMSG.pack(w.AF_INET, dst.prefixlen, 0, 0, w.RT_TABLE_MAIN, w.RTPROT_BOOT, scope, w.RTN_UNICAST, 0)
        if dst.prefixlen:
            body += w.attr(w.RTA_DST, dst.network_address.packed)
        if gateway:
            body += w.attr(w.RTA_GATEWAY, gateway.packed)
        body += w.attr_u32(w.RTA_OIF, index)
        where = "default" if dst.prefixlen == 0 else str(dst)
        self._send(verb, dev, netns, f"RTM_NEWROUTE {where}" + (f" via {gateway}" if gateway else "") + f" dev {dev}",
                   w.RTM_NEWROUTE, body, NEW)

    def close(self) -> None:
        for channel in self._channels.values():
            channel.close()
        self._channels.clear()


def _is_link(kind: int) -> bool:
    """Requests whose ENODEV means the link they name is missing."""
    return kind in (w.RTM_NEWLINK, w.RTM_DELLINK, w.RTM_GETLINK, w.RTM_SETLINK)


def _veth_info(peer_attrs: bytes) -> bytes:
    return w.nest(w.IFLA_LINKINFO, w.attr_str(w.IFLA_INFO_KIND, "veth"),
                  w.nest(w.IFLA_INFO_DATA, w.nest(w.VETH_INFO_PEER, w.ifinfomsg() + peer_attrs)))


def _mac(verb: str, obj: str, mac: str) -> bytes:
    try:
        return w.mac_bytes(mac)
    except ValueError as exc:
        raise OpError(verb, obj, str(exc), errnos.EINVAL) from None


def _open_ns(path: str, verb: str, obj: str) -> int:
    """An fd of a netns file; a process that is not there is ESRCH, as the kernel says for a pid."""
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        if path.startswith("/proc/"):
            raise OpError(verb, obj, f"No such process ({path} does not exist)", errnos.ESRCH) from None
        raise OpError(verb, obj, f"{path} does not exist", errnos.ENOENT) from None
    except OSError as exc:
        raise OpError(verb, obj, f"{exc.strerror or exc} ({path})", exc.errno) from None
