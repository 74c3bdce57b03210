"""The result of ADD, in the form of the configuration's cniVersion, and back.

ADD prints what it made (SPEC.md, "Success"); the runtime stores it and hands
it back as ``prevResult`` to CHECK and DEL:

    {"cniVersion": "1.0.0",
     "interfaces": [{"name": "cni-demo0", "mac": "02:..."},                     0: the bridge
                    {"name": "veth1a2b3c4d", "mac": "4e:..."},                  1: the host end
                    {"name": "eth0", "mac": "9a:...", "sandbox": "/run/netns/x"}],  2: in the container
     "ips": [{"address": "10.88.0.2/24", "gateway": "10.88.0.1", "interface": 2}],
     "routes": [{"dst": "0.0.0.0/0", "gw": "10.88.0.1"}],
     "dns": {...}}

Versions 0.3.0 to 0.4.0 add ``"version": "4"`` to each IP; 1.0.0 has none.
``sandbox`` marks the interface inside the container; host interfaces have
none. podman requires a ``mac`` on every interface.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface, IPv4Network

from nskit.record import Record

from . import version
from .errors import INVALID_CONFIG, CniError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~5 ms a CNI call)
if TYPE_CHECKING:
    from typing import Any


class Interface(Record):
    __slots__ = ("name", "mac", "sandbox")

    def __init__(self, name: str, mac: str, sandbox: str = "") -> None:
        self.name = name
        self.mac = mac
        self.sandbox = sandbox  # the netns path, for the interface inside the container


class IpConfig(Record):
    __slots__ = ("address", "gateway", "interface")

    def __init__(self, address: IPv4Interface, gateway: IPv4Address | None, interface: int | None) -> None:
        self.address = address
        self.gateway = gateway
        self.interface = interface  # index into Result.interfaces


class Route(Record):
    __slots__ = ("dst", "gw")

    def __init__(self, dst: IPv4Network, gw: IPv4Address | None = None) -> None:
        self.dst = dst
        self.gw = gw


class Result(Record):
    __slots__ = ("interfaces", "ips", "routes", "dns")

    def __init__(self, interfaces: list[Interface] | None = None, ips: list[IpConfig] | None = None,
                 routes: list[Route] | None = None, dns: dict[str, Any] | None = None) -> None:
        self.interfaces = [] if interfaces is None else interfaces
        self.ips = [] if ips is None else ips
        self.routes = [] if routes is None else routes
        self.dns = {} if dns is None else dns

    def render(self, cni_version: str) -> dict[str, Any]:
        """The result as the spec's JSON object for ``cni_version``."""
        out: dict[str, Any] = {"cniVersion": cni_version, "interfaces": [_interface(i) for i in self.interfaces]}
        if self.ips:
            out["ips"] = [_ip(ip, version.ips_carry_version(cni_version)) for ip in self.ips]
        if self.routes:
            out["routes"] = [{"dst": str(r.dst), **({"gw": str(r.gw)} if r.gw else {})} for r in self.routes]
        if self.dns:
            out["dns"] = self.dns
        return out

    def sandbox_interface(self, ifname: str, netns: str) -> tuple[int, Interface] | None:
        for index, iface in enumerate(self.interfaces):
            if iface.name == ifname and iface.sandbox == netns:
                return index, iface
        return None


def _interface(iface: Interface) -> dict[str, str]:
    out = {"name": iface.name, "mac": iface.mac}
    if iface.sandbox:
        out["sandbox"] = iface.sandbox
    return out


def _ip(ip: IpConfig, with_version: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"version": "4"} if with_version else {}
    out["address"] = str(ip.address)
    if ip.gateway:
        out["gateway"] = str(ip.gateway)
    if ip.interface is not None:
        out["interface"] = ip.interface
    return out


def parse(raw: dict[str, Any]) -> Result:
    """A prevResult of any supported version; a malformed one is an invalid configuration (7)."""
    try:
        interfaces = [Interface(str(i["name"]), str(i.get("mac", "")), str(i.get("sandbox", "")))
                      for i in raw.get("interfaces") or []]
        ips = [IpConfig(IPv4Interface(ip["address"]),
                        IPv4Address(ip["gateway"]) if ip.get("gateway") else None,
                        int(ip["interface"]) if ip.get("interface") is not None else None)
               for ip in raw.get("ips") or [] if ip.get("version", "4") == "4" and ":" not in ip["address"]]
        routes = [Route(IPv4Network(r["dst"], strict=False), IPv4Address(r["gw"]) if r.get("gw") else None)
                  for r in raw.get("routes") or [] if ":" not in r["dst"]]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CniError(INVALID_CONFIG, f"invalid prevResult: {type(exc).__name__}: {exc}",
                       "it must be the result of this plugin's ADD") from None
    for ip in ips:
        if ip.interface is not None and not 0 <= ip.interface < len(interfaces):
            raise CniError(INVALID_CONFIG, f"invalid prevResult: ips entry {ip.address} names interface "
                           f"{ip.interface}, but there are {len(interfaces)}")
    return Result(interfaces, ips, routes, dict(raw.get("dns") or {}))
