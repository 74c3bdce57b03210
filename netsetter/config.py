"""The values netsetter.sh hard-codes, as one validated configuration.

Defaults are the script's. :meth:`NetConfig.build` parses and checks user
input and raises :class:`UsageError` naming the value and the reason, before
anything on the host is touched.
"""

from __future__ import annotations

import ipaddress
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

from nskit.errors import UsageError
from nskit.names import check_ifname, check_mac
from nskit.record import Record

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~3 ms a runner start)
if TYPE_CHECKING:
    from typing import Any

# Values that may be "auto": chosen at run time, under the host's lock (see host/allocate.py).
AUTO = "auto"
AUTO_KEYS = ("veth_host", "veth_container", "container_addr")
# The script's container address is the 101st of its subnet: auto addresses start there.
SCRIPT_HOST_OFFSET = 101

DEFAULTS = {
    "bridge": "brg-demo",
    "bridge_mac": "12:34:56:a1:b2:c3",
    "bridge_addr": "10.10.10.100/24",
    "veth_host": "veth_host",
    "veth_container": "veth_conta",
    "container_addr": "10.10.10.101/24",
    "gateway": None,  # the bridge's address, as in the script (10.10.10.100)
}


class NetConfig(Record):
    """Read-only: a Record, not a frozen dataclass (dataclasses imports inspect, ast and
    tokenize: ~10 ms of runner start and of a CNI call; see nskit/record.py)."""

    __slots__ = ("bridge", "bridge_mac", "bridge_addr", "veth_host", "veth_container", "container_addr",
                 "gateway", "auto")
    _uncompared = ("auto",)

    def __init__(self, bridge: str, bridge_mac: str, bridge_addr: IPv4Interface, veth_host: str,
                 veth_container: str, container_addr: IPv4Interface, gateway: IPv4Address,
                 auto: frozenset[str] = frozenset()) -> None:
        self.bridge = bridge
        self.bridge_mac = bridge_mac
        self.bridge_addr = bridge_addr
        self.veth_host = veth_host
        self.veth_container = veth_container
        self.container_addr = container_addr
        self.gateway = gateway
        # Keys given as "auto": until resolved, their values above are the script's, as placeholders.
        self.auto = auto

    def __repr__(self) -> str:  # a dataclass's: every field, auto too (it is only left out of ==)
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{self.__class__.__qualname__}({shown})"

    @classmethod
    def build(cls, **values: object) -> "NetConfig":
        """Parse and check user values; missing ones take the script's defaults."""
        unknown = set(values) - set(DEFAULTS)
        if unknown:
            raise TypeError(f"unknown configuration keys: {sorted(unknown)}")
        raw = {**DEFAULTS, **{k: v for k, v in values.items() if v is not None}}
        auto = frozenset(k for k in AUTO_KEYS if raw[k] == AUTO)
        bridge_addr = parse_interface("bridge address", raw["bridge_addr"])
        for key in auto:
            raw[key] = DEFAULTS[key]
        if "container_addr" in auto:
            raw["container_addr"] = f"{auto_start(bridge_addr)}/{bridge_addr.network.prefixlen}"
        gateway = raw["gateway"]
        config = cls(
            bridge=check_ifname("bridge name", raw["bridge"]),
            bridge_mac=check_mac("bridge MAC", raw["bridge_mac"]),
            bridge_addr=bridge_addr,
            veth_host=check_ifname("host veth name", raw["veth_host"]),
            veth_container=check_ifname("container veth name", raw["veth_container"]),
            container_addr=parse_interface("container address", raw["container_addr"]),
            gateway=bridge_addr.ip if gateway is None else parse_address("gateway", gateway),
            auto=auto,
        )
        config._check_consistent()
        return config

    def resolved(self, **values: Any) -> "NetConfig":
        """The configuration with its "auto" values chosen; checked again."""
        config = self.replace(**values, auto=frozenset())
        config._check_consistent()
        return config

    def _check_consistent(self) -> None:
        names = [("bridge name", self.bridge), ("host veth name", self.veth_host),
                 ("container veth name", self.veth_container)]
        for i, (what, name) in enumerate(names):
            for other_what, other in names[:i]:
                if name == other:
                    raise UsageError(what, name, f"is also the {other_what}; each link needs its own name")
        bridge_net = self.bridge_addr.network
        for what, iface in (("bridge address", self.bridge_addr), ("container address", self.container_addr)):
            if iface.ip in (iface.network.network_address,
                                                            iface.network.broadcast_address):
                raise UsageError(what, iface, f"is the network or broadcast address of {iface.network}")
        if self.container_addr.ip not in bridge_net:
            raise UsageError("container address", self.container_addr,
                             f"is outside the bridge's subnet {bridge_net}")
        if self.container_addr.network != bridge_net:
            raise UsageError("container address", self.container_addr,
                             f"has another prefix length than the bridge's subnet {bridge_net}")
        if self.container_addr.ip == self.bridge_addr.ip:
            raise UsageError("container address", self.container_addr,
                             "is the bridge's own address")
        if self.container_addr.ip == self.gateway:
            raise UsageError("container address", self.container_addr,
                             "equals the gateway; the container needs an address of its own")
        if self.gateway in (self.container_addr.network.network_address,
                            self.container_addr.network.broadcast_address):
            raise UsageError("gateway", self.gateway, f"is the network or broadcast address of "
                                                      f"{self.container_addr.network}, not a host's")
        if self.gateway not in self.container_addr.network:
            raise UsageError("gateway", self.gateway,
                             f"is outside the container's subnet {self.container_addr.network}, "
                             "so the default route could not reach it")

    def as_dict(self) -> dict[str, str]:
        """The values as strings, "auto" where still to be chosen."""
        return {name: AUTO if name in self.auto else str(getattr(self, name))
                for name in self.__slots__ if name != "auto"}

    def cli_options(self) -> list[str]:
        """The command-line options that reproduce this configuration."""
        return [arg for key, value in self.as_dict().items()
                for arg in (f"--{key.replace('_', '-')}", value)]


def auto_start(bridge_addr: IPv4Interface) -> IPv4Address:
    """Where automatic addresses start: the script's .101, or the subnet's first host."""
    network = bridge_addr.network
    candidate = network.network_address + SCRIPT_HOST_OFFSET
    if candidate in network and candidate != network.broadcast_address:
        return candidate
    first = network.network_address + 1
    return first if first != bridge_addr.ip else first + 1


def _ip_family_check(what: str, value: str) -> None:
    if ":" in value:
        try:
            ipaddress.ip_interface(value)
        except ValueError:
            return
        raise UsageError(what, value, "is an IPv6 address; IPv6 is not supported yet")


def parse_interface(what: str, value: object) -> IPv4Interface:
    """An IPv4 address with its prefix length, as in ``10.10.10.101/24``."""
    text = str(value).strip()
    _ip_family_check(what, text)
    if "/" not in text:
        raise UsageError(what, value, "needs a prefix length, as in 10.10.10.101/24")
    addr, _, prefix = text.partition("/")
    if not (prefix.isascii() and prefix.isdigit()) or not 0 <= int(prefix) <= 32:
        raise UsageError(what, value, "has a prefix length outside 0-32")
    if int(prefix) in (0, 31, 32):
        raise UsageError(what, value, f"has prefix length /{int(prefix)}; a bridge's subnet needs room for "
                                      "a network address, a broadcast address and hosts (/1 to /30)")
    try:
        iface = IPv4Interface(f"{IPv4Address(addr)}/{int(prefix)}")
    except ValueError as exc:
        raise UsageError(what, value, f"is not an IPv4 address ({exc})") from None
    check_unicast(what, value, iface.ip)
    return iface


# Addresses no container or gateway may have, and why (checked before any change).
SPECIAL = (
    (IPv4Network("0.0.0.0/8"), "is in 0.0.0.0/8, which means \"this network\" and is never a host's"),
    (IPv4Network("127.0.0.0/8"), "is a loopback address (127.0.0.0/8): it never leaves a host"),
    (IPv4Network("224.0.0.0/4"), "is a multicast address (224.0.0.0/4), not a host's"),
    (IPv4Network("240.0.0.0/4"), "is a class E address (240.0.0.0/4): reserved, Linux does not route it"),
)


def check_unicast(what: str, value: object, ip: IPv4Address) -> None:
    for network, reason in SPECIAL:
        if ip in network:
            raise UsageError(what, value, reason)


def parse_address(what: str, value: object) -> IPv4Address:
    text = str(value).strip()
    _ip_family_check(what, text)
    try:
        ip = IPv4Address(text)
    except ValueError as exc:
        raise UsageError(what, value, f"is not an IPv4 address ({exc})") from None
    check_unicast(what, value, ip)
    return ip
