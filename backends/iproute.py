"""The `ip` backend: runs iproute2's `ip` through `sh`, one process per script line.

Every change is the script's own argv: ``ip link add ...`` on the host and
``ip netns exec PID ip ...`` in the container, so what it runs can be pasted
into a shell and compared with netsetter.sh word for word. Queries use
``ip -j`` (JSON) and are marked as such in the trace.
"""

from __future__ import annotations

import errno as errnos
import json
import os
import shlex
import shutil
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Any

from nskit import boundary
from nskit import netns as netns_entry
from nskit.errors import OpError

from .base import Backend, Command, Link, Route


# `ip` prints strerror() or the kernel's extended-ACK text, never the errno: the one place
# its messages are mapped back to errno, so that OpError.gone and EEXIST checks work on it too.
_STRERRORS = {os.strerror(n): n for n in (errnos.EEXIST, errnos.ENODEV, errnos.ENOENT, errnos.EPERM,
                                          errnos.EINVAL, errnos.EBUSY, errnos.ESRCH, errnos.ENETUNREACH,
                                          errnos.EADDRNOTAVAIL, errnos.ENOTSUP)}
_STRERRORS.update({"Cannot find device": errnos.ENODEV, "does not exist": errnos.ENODEV})
# Where the kernel explains an error (extended ACK), `ip` prints only the explanation.
_STRERRORS.update({"Address already assigned": errnos.EEXIST, "Address not found": errnos.EADDRNOTAVAIL,
                   "same name exists in the target netns": errnos.EEXIST,
                   "mtu less than device minimum": errnos.EINVAL, "mtu greater than device maximum": errnos.EINVAL})


def errno_of(message: str) -> int | None:
    """The errno that `ip`'s message stands for, if it names one."""
    for text, number in _STRERRORS.items():
        if text in message:
            return number
    return None


# The words `ip link set` and `ip link del` read before a device name: iproute2 takes a word as
# one of them when it is that word or (for most) any prefix of it, so a link called "a" is read
# as "address", "d" as "dynamic", "help" as the request for help. Such a name is given after
# "dev"; every other name is given bare, as the script writes it.
_LINK_KEYWORDS = (
    "addrgenmode", "address", "alias", "allmulticast", "altname", "arp", "broadcast", "brd", "carrier",
    "dev", "down", "dynamic", "group", "gro_ipv4_max_size", "gro_max_size", "gso_ipv4_max_size",
    "gso_max_segs", "gso_max_size", "help", "index", "link", "link-netns", "link-netnsid", "master",
    "mode", "mtu", "multicast", "name", "netns", "netnsid", "nomaster", "numrxqueues", "numtxqueues",
    "peer", "promisc", "property", "protodown", "protodown_reason", "qlen", "state", "trailers",
    "txqlen", "txqueuelen", "type", "up", "vf", "vrf", "xdp", "xdpdrv", "xdpgeneric", "xdpoffload",
)


def _dev(name: str) -> list[str]:
    """``name`` as `ip link set|del` arguments: after "dev" when iproute2 could read it as a keyword."""
    if any(word.startswith(name) for word in _LINK_KEYWORDS):
        return ["dev", name]
    return [name]


class IpBackend(Backend):
    name = "ip"

    def __init__(self) -> None:
        import sh

        super().__init__()
        self._sh = sh
        # for_exec: an `ip` run inside a step's deferred() section would inherit SIGINT/SIGTERM blocked.
        self._ip: Any = sh.Command("ip").bake(_tty_out=False, _preexec_fn=boundary.for_exec)

    @classmethod
    def unavailable(cls) -> str | None:
        if shutil.which("ip") is None:
            return "ip not found on PATH (install iproute2)"
        try:
            import sh  # noqa: F401
        except ImportError:
            return "the sh package is not installed (pip install sh)"
        return None

    # --- running ---------------------------------------------------------
    def _run(self, verb: str, obj: str, args: list[str], netns: str | None = None,
             change: bool = True) -> str:
        if netns and netns.startswith("/"):
            # A netns file (the CNI plugin's /proc/PID/fd/N): `ip netns exec` takes names only, and
            # `ip -n NAME` opens /var/run/netns/NAME, so the path is given relative to that folder.
            argv = ["-n", os.path.relpath(netns, netns_entry.NETNS_RUN_DIR), *args]
        else:
            argv = ["netns", "exec", netns, "ip", *args] if netns and change else (
                ["-n", netns, *args] if netns else args)
        self.trace.append(Command(shlex.join(["ip", *argv]), change))
        try:
            return str(self._ip(*argv))
        except self._sh.ErrorReturnCode as exc:
            cause = exc.stderr.decode(errors="replace").strip().splitlines()
            text = (cause[-1] if cause else f"ip exited with status {exc.exit_code}")
            text = text.removeprefix("RTNETLINK answers: ")
            raise OpError(verb, obj, text, errno_of(text)) from None

    # --- queries -----------------------------------------------------------
    def link_get(self, name: str, netns: str | None = None) -> Link | None:
        try:
            out = self._run("show link", name, ["-j", "-d", "addr", "show", "dev", name], netns, change=False)
        except OpError as exc:
            if "does not exist" in exc.cause:
                return None
            raise
        data: dict[str, Any] = json.loads(out)[0]
        peer_index = data.get("link_index")  # a peer in another netns; one in this netns is named instead
        if peer_index is None and data.get("link"):
            peer = self._run("show link", data["link"], ["-j", "link", "show", "dev", data["link"]], netns,
                             change=False)
            peer_index = json.loads(peer)[0]["ifindex"]
        return Link(
            name=data["ifname"],
            kind=data.get("linkinfo", {}).get("info_kind"),
            up="UP" in data.get("flags", []),
            master=data.get("master"),
            mac=data.get("address", ""),
            addrs=tuple(IPv4Interface(f"{a['local']}/{a['prefixlen']}")
                        for a in data.get("addr_info", []) if a.get("family") == "inet"),
            index=data["ifindex"],
            peer_index=peer_index,
            alias=data.get("ifalias", ""),
        )

    def bridge_ports(self, bridge: str) -> list[str]:
        try:
            out = self._run("list ports of", bridge, ["-j", "link", "show", "master", bridge], change=False)
        except OpError as exc:
            if "does not exist" in exc.cause:  # no bridge, no ports
                return []
            raise
        return [link["ifname"] for link in json.loads(out or "[]")]

    def default_route(self, netns: str | None = None) -> tuple[str, str] | None:
        out = self._run("show default route", netns or "host", ["-j", "-4", "route", "show", "default"],
                        netns, change=False)
        for route in json.loads(out or "[]"):
            if "gateway" in route:
                return route["gateway"], route.get("dev", "")
        return None

    # --- links ---------------------------------------------------------------
    def link_del(self, name: str, netns: str | None = None) -> None:
        self._run("delete link", name, ["link", "del", *_dev(name)], netns)

    def bridge_add(self, name: str, mac: str) -> None:
        self._run("add bridge", name, ["link", "add", "name", name, "address", mac, "type", "bridge"])

    def veth_add(self, name: str, peer: str) -> None:
        self._run("add veth pair", f"{name}/{peer}", ["link", "add", name, "type", "veth", "peer", "name", peer])

    def link_set_up(self, name: str, netns: str | None = None, *, dev: bool = False) -> None:
        self._run("set link up", name, ["link", "set", *(["dev", name] if dev else _dev(name)), "up"], netns)

    def link_set_down(self, name: str, netns: str | None = None) -> None:
        self._run("set link down", name, ["link", "set", *_dev(name), "down"], netns)

    def link_set_master(self, name: str, master: str) -> None:
        self._run(f"attach link to {master}", name, ["link", "set", *_dev(name), "master", master])

    def link_set_alias(self, name: str, alias: str, netns: str | None = None) -> None:
        self._run("set alias of", name, ["link", "set", "dev", name, "alias", alias], netns)

    def link_set_netns(self, name: str, pid: int) -> None:
        self._run(f"move link into the netns of pid {pid}", name, ["link", "set", *_dev(name), "netns", str(pid)])

    # --- addresses and routes -------------------------------------------------
    def addr_add(self, dev: str, addr: IPv4Interface, netns: str | None = None) -> None:
        self._run(f"add address {addr} to", dev, ["addr", "add", str(addr), "dev", dev], netns)

    def addr_del(self, dev: str, addr: IPv4Interface, netns: str | None = None) -> None:
        self._run(f"delete address {addr} from", dev, ["addr", "del", str(addr), "dev", dev], netns)

    def route_add_default(self, gateway: IPv4Address, dev: str, netns: str | None = None) -> None:
        self._run(f"add default route via {gateway} on", dev,
                  ["route", "add", "default", "via", str(gateway), "dev", dev], netns)

    # --- for the CNI plugin: a container netns named under /var/run/netns ------
    def veth_add_peer_in(self, name: str, peer: str, netns: str, *, master: str, mtu: int | None = None,
                         mac: str | None = None, peer_mac: str | None = None) -> None:
        # Options before `type` are the first end's; those after `peer name` the peer's,
        # and `netns NAME` there moves only the peer (iproute2 opens /var/run/netns/NAME).
        size = ["mtu", str(mtu)] if mtu else []
        self._run("add veth pair", f"{name}/{peer}",
                  ["link", "add", name, *(["address", mac] if mac else []), *size, "master", master, "up",
                   "type", "veth", "peer", "name", peer, *(["address", peer_mac] if peer_mac else []), *size,
                   "netns", netns])

    def link_set_mtu(self, name: str, mtu: int, netns: str | None = None) -> None:
        self._run(f"set MTU {mtu} on", name, ["link", "set", *_dev(name), "mtu", str(mtu)], netns)

    def link_set_hairpin(self, name: str, on: bool) -> None:
        self._run(f"set hairpin {'on' if on else 'off'} on", name,
                  ["link", "set", "dev", name, "type", "bridge_slave", "hairpin", "on" if on else "off"])

    def link_set_promisc(self, name: str, on: bool, netns: str | None = None) -> None:
        self._run(f"set promisc {'on' if on else 'off'} on", name,
                  ["link", "set", *_dev(name), "promisc", "on" if on else "off"], netns)

    def route_add(self, dst: IPv4Network, gateway: IPv4Address | None, dev: str,
                  netns: str | None = None) -> None:
        via = ["via", str(gateway)] if gateway else []
        self._run(f"add route to {dst} on", dev, ["route", "add", str(dst), *via, "dev", dev], netns)

    def routes(self, netns: str | None = None) -> list[Route]:
        out = self._run("list routes of", netns or "host", ["-j", "-4", "route", "show", "table", "main"],
                        netns, change=False)
        found = []
        for route in json.loads(out or "[]"):
            dst = "0.0.0.0/0" if route["dst"] == "default" else route["dst"]
            gateway = route.get("gateway")
            found.append(Route(IPv4Network(dst if "/" in dst else f"{dst}/32"),
                               IPv4Address(gateway) if gateway else None, route.get("dev", "")))
        return found
