"""The contract every network backend fulfils: one method per primitive.

Steps compose these primitives; a step never spawns a process or opens a
netlink socket itself. ``netns`` arguments name an entry under
/var/run/netns, exactly as ``ip netns exec NAME`` does; ``None`` is the
namespace netsetter runs in (the host).

Each backend records what it ran in ``trace`` (a command line a user could
paste for the ip backend, the netlink request for the netlink backend), so
the caller can show and test exactly what happened.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

from nskit import netns as netns_entry
from nskit.record import Record

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~5 ms a CNI call)
if TYPE_CHECKING:
    from typing import ClassVar


class Link(Record):
    """What the steps need to know of a link."""

    __slots__ = ("name", "kind", "up", "master", "mac", "addrs", "index", "peer_index", "alias")

    def __init__(self, name: str, kind: str | None, up: bool, master: str | None, mac: str,
                 addrs: tuple[IPv4Interface, ...] = (), index: int = 0, peer_index: int | None = None,
                 alias: str = "") -> None:
        self.name = name
        self.kind = kind  # IFLA_INFO_KIND: "bridge", "veth", ... or None for a plain device
        self.up = up  # IFF_UP, the administrative state `ip link set up` changes
        self.master = master
        self.mac = mac
        self.addrs = addrs
        self.index = index
        self.peer_index = peer_index  # IFLA_LINK: a veth's peer, in whichever netns it is
        self.alias = alias  # IFLA_IFALIAS: netsetter's marker of who made the link (see MARKER)


# The interface alias (IFLA_IFALIAS, `ip link set X alias TEXT`) of every link netsetter or
# its CNI plugin makes: MARKER + the owner ("pid:<pid>:<netns inode>", "cni:<id>:<ifname>").
MARKER = "ns-proc:"


def marker(owner: str) -> str:
    return f"{MARKER}{owner}"


class Route(Record):
    """One IPv4 route of the main table, as the CNI plugin's CHECK compares them."""

    __slots__ = ("dst", "gateway", "dev")

    def __init__(self, dst: IPv4Network, gateway: IPv4Address | None, dev: str) -> None:
        self.dst = dst  # 0.0.0.0/0 for the default route
        self.gateway = gateway  # None for a route on the link (no next hop)
        self.dev = dev


class Command(Record):
    __slots__ = ("text", "change")

    def __init__(self, text: str, change: bool) -> None:
        self.text = text
        self.change = change  # False for a query that changes nothing

    def as_dict(self) -> dict[str, object]:
        return {"cmd": self.text, "change": self.change}


class Backend(ABC):
    name: ClassVar[str]

    def __init__(self) -> None:
        self.trace: list[Command] = []

    @classmethod
    @abstractmethod
    def unavailable(cls) -> str | None:
        """Why this backend cannot run here, or None when it can."""

    # --- queries -------------------------------------------------------
    @abstractmethod
    def link_get(self, name: str, netns: str | None = None) -> Link | None: ...

    @abstractmethod
    def bridge_ports(self, bridge: str) -> list[str]:
        """The names of the links whose master is ``bridge``."""

    @abstractmethod
    def default_route(self, netns: str | None = None) -> tuple[str, str] | None:
        """The main table's default route as (gateway, dev), if there is one."""

    # --- links ---------------------------------------------------------
    @abstractmethod
    def link_del(self, name: str, netns: str | None = None) -> None: ...

    @abstractmethod
    def bridge_add(self, name: str, mac: str) -> None: ...

    @abstractmethod
    def veth_add(self, name: str, peer: str) -> None: ...

    @abstractmethod
    def link_set_up(self, name: str, netns: str | None = None, *, dev: bool = False) -> None:
        """Set IFF_UP. ``dev`` only spells the command as ``ip link set dev NAME up``,
        the script's form for the bridge; it changes nothing else."""

    @abstractmethod
    def link_set_down(self, name: str, netns: str | None = None) -> None: ...

    @abstractmethod
    def link_set_master(self, name: str, master: str) -> None: ...

    @abstractmethod
    def link_set_alias(self, name: str, alias: str, netns: str | None = None) -> None:
        """Set the interface alias (IFLA_IFALIAS, `ip link set dev NAME alias TEXT`): netsetter's
        marker of who made the link. The kernel ignores IFLA_IFALIAS in RTM_NEWLINK, so it
        is set by a request of its own, right after the link is made."""

    @abstractmethod
    def link_set_netns(self, name: str, pid: int) -> None: ...

    # --- addresses and routes -----------------------------------------
    @abstractmethod
    def addr_add(self, dev: str, addr: IPv4Interface, netns: str | None = None) -> None: ...

    @abstractmethod
    def addr_del(self, dev: str, addr: IPv4Interface, netns: str | None = None) -> None: ...

    @abstractmethod
    def route_add_default(self, gateway: IPv4Address, dev: str, netns: str | None = None) -> None: ...

    # --- for the CNI plugin (netsetter_cni): a container netns named by the runtime --
    @abstractmethod
    def veth_add_peer_in(self, name: str, peer: str, netns: str, *, master: str, mtu: int | None = None,
                         mac: str | None = None, peer_mac: str | None = None) -> None:
        """Add a veth pair in one request: ``name`` on the host, a port of ``master``
        and up; ``peer`` created directly inside ``netns`` (down).

        `ip link add NAME master BR up type veth peer name PEER netns NETNS`: the peer
        never exists on the host, so its name (a CNI_IFNAME such as eth0) cannot clash
        with a host link. ``mtu`` sets both ends; ``mac``/``peer_mac`` their addresses.
        The peer cannot be brought up in the same request: the kernel opens it before
        the two ends are joined, and veth_open() refuses a veth without its peer (ENOTCONN).
        """

    @abstractmethod
    def link_set_mtu(self, name: str, mtu: int, netns: str | None = None) -> None: ...

    @abstractmethod
    def link_set_hairpin(self, name: str, on: bool) -> None:
        """Set the hairpin flag (IFLA_BRPORT_MODE) of ``name``, a port of a bridge on the host:
        the bridge may send a frame back out of the port it came in by. Not a port: EOPNOTSUPP
        or EINVAL, as the kernel says."""

    @abstractmethod
    def link_set_promisc(self, name: str, on: bool, netns: str | None = None) -> None:
        """Set IFF_PROMISC on ``name`` (`ip link set NAME promisc on`)."""

    @abstractmethod
    def route_add(self, dst: IPv4Network, gateway: IPv4Address | None, dev: str,
                  netns: str | None = None) -> None:
        """Add a route to ``dst`` (``0.0.0.0/0`` is the default route) on ``dev``,
        via ``gateway``, or on the link when it is None."""

    @abstractmethod
    def routes(self, netns: str | None = None) -> list[Route]:
        """The IPv4 routes of the main table."""

    # --- the /var/run/netns entry (a file, the same for every backend) --
    def netns_expose(self, pid: int) -> str:
        self.trace.append(Command(f"ln -s /proc/{pid}/ns/net {netns_entry.entry_path(str(pid))}", True))
        return netns_entry.expose(pid)

    def netns_hide(self, pid: int) -> str:
        self.trace.append(Command(f"rm -f {netns_entry.entry_path(str(pid))}", True))
        return netns_entry.hide(pid)

    def close(self) -> None:  # noqa: B027 (a default: most backends hold nothing to release)
        """Release sockets or helpers; the backend is not used afterwards."""

    def __enter__(self) -> "Backend":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
