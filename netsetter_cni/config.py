"""The network configuration a runtime sends on stdin, parsed and checked.

    {"cniVersion": "1.0.0", "name": "demo", "type": "netsetter-cni",
     "bridge": "cni-demo0", "isGateway": true, "isDefaultGateway": true, "ipMasq": false, "mtu": 1500,
     "ipam": {"subnet": "10.88.0.0/24", "gateway": "10.88.0.1",
              "rangeStart": "10.88.0.10", "rangeEnd": "10.88.0.99", "routes": [{"dst": "10.99.0.0/16"}]},
     "dns": {"nameservers": ["10.88.0.1"]},
     "prevResult": {...}}

The keys mean what they mean for the reference bridge plugin: ``isGateway``
puts the gateway address on the bridge (``forceAddress``: replacing another
address of the subnet there); ``isDefaultGateway`` (which implies it) adds a
default route via the gateway in the container; ``ipMasq`` masquerades the
subnet's traffic leaving the host; ``hairpinMode`` sets the hairpin flag of the
host end's bridge port; ``promiscMode`` puts the bridge in promiscuous mode.

``ipam`` without a ``type`` (or "netsetter") is served by netsetter's own
allocator (leases under /run/ns-proc), from ``subnet``/``rangeStart``/
``rangeEnd``/``gateway`` or host-local's ``ranges`` form (one IPv4 range).
Any other ``type`` names an IPAM plugin, run from CNI_PATH (netsetter_cni.delegate)
with this same configuration. ``runtimeConfig`` and ``capabilities`` are the
runtime's business and the chained plugins': accepted, passed through.

Every problem raises :class:`CniError`: 1 for a cniVersion we do not speak,
2 for a field we do not support (named with its value), 7 for a value that
cannot work. Nothing on the host is touched before this has passed.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface, IPv4Network, ip_address, ip_network

from nskit.errors import UsageError
from nskit.names import check_ifname
from nskit.record import Record

from . import version
from .errors import INVALID_CONFIG, INVALID_ENVIRONMENT, UNSUPPORTED_FIELD, CniError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~5 ms a CNI call)
if TYPE_CHECKING:
    from typing import Any, NoReturn
    from netsetter.host.ipam import Pool

DEFAULT_BRIDGE = "cni0"  # the bridge plugin's default
OWN_IPAM = "netsetter"  # the built-in allocator; any other ipam.type is a plugin in CNI_PATH
# Keys of the reference bridge plugin this plugin does not implement: refused when set,
# rather than silently ignored. The README's CNI table names them.
UNSUPPORTED_BRIDGE_KEYS = ("vlan", "vlanTrunk", "preserveDefaultVlan", "macspoofchk", "enabledad",
                           "disableContainerInterface", "portIsolation")
MIN_MTU, MAX_MTU = 68, 65535  # IPv4's minimum (RFC 791); a veth's maximum (ETH_MAX_MTU)


class RouteConf(Record):
    __slots__ = ("dst", "gw")

    def __init__(self, dst: IPv4Network, gw: IPv4Address | None = None) -> None:
        self.dst = dst
        self.gw = gw  # None: via the gateway


class Ipam(Record):
    __slots__ = ("subnet", "gateway", "range_start", "range_end", "routes")

    def __init__(self, subnet: IPv4Network, gateway: IPv4Address, range_start: IPv4Address,
                 range_end: IPv4Address, routes: tuple[RouteConf, ...] = ()) -> None:
        self.subnet = subnet
        self.gateway = gateway
        self.range_start = range_start
        self.range_end = range_end
        self.routes = routes

    def prefixed(self, address: IPv4Address) -> IPv4Interface:
        return IPv4Interface(f"{address}/{self.subnet.prefixlen}")

    def pool(self, bridge: str) -> "Pool":
        """netsetter's lease pool for this range on bridge (imported here: VERSION stays cheap)."""
        from netsetter.host.ipam import Pool

        return Pool.for_range(bridge, self.subnet, self.gateway, self.range_start, self.range_end)


class NetConf(Record):
    __slots__ = ("cni_version", "name", "bridge", "is_gateway", "is_default_gateway", "ip_masq", "mtu", "ipam",
                 "dns", "prev_result", "hairpin", "promisc", "force_address", "ipam_plugin", "raw")
    _uncompared = ("raw",)

    def __init__(self, cni_version: str, name: str, bridge: str = DEFAULT_BRIDGE, is_gateway: bool = False,
                 is_default_gateway: bool = False, ip_masq: bool = False, mtu: int | None = None,
                 ipam: Ipam | None = None, dns: dict[str, Any] | None = None,
                 prev_result: dict[str, Any] | None = None, hairpin: bool = False, promisc: bool = False,
                 force_address: bool = False, ipam_plugin: str | None = None,
                 raw: dict[str, Any] | None = None) -> None:
        self.cni_version = cni_version
        self.name = name
        self.bridge = bridge
        self.is_gateway = is_gateway
        self.is_default_gateway = is_default_gateway
        self.ip_masq = ip_masq
        self.mtu = mtu
        self.ipam = ipam
        self.dns = {} if dns is None else dns
        self.prev_result = prev_result
        self.hairpin = hairpin
        self.promisc = promisc
        self.force_address = force_address
        self.ipam_plugin = ipam_plugin  # ipam.type naming an IPAM plugin to delegate to
        self.raw = {} if raw is None else raw  # what the IPAM plugin gets; not compared, not shown

    def routes(self) -> list[RouteConf]:
        """The container's routes: ipam.routes, then the default route for isDefaultGateway
        (unless ipam.routes has one already, as with the bridge plugin)."""
        if self.ipam is None:
            return []
        routes = list(self.ipam.routes)
        default = IPv4Network("0.0.0.0/0")
        if self.is_default_gateway and not any(r.dst == default for r in routes):
            routes.append(RouteConf(default, self.ipam.gateway))
        return routes

    def next_hop(self, route: RouteConf) -> IPv4Address | None:
        """Where the kernel sends a route's traffic: its gw, or the network's gateway."""
        return route.gw or (self.ipam.gateway if self.ipam else None)


def cni_version_of(raw: dict[str, Any]) -> str:
    """The configuration's cniVersion, checked before anything else (code 1 or 7)."""
    value = raw.get("cniVersion")
    if not isinstance(value, str) or not value:
        raise CniError(INVALID_CONFIG, "invalid network configuration: cniVersion is missing or not a string",
                       f"set it to one of {', '.join(version.SUPPORTED)}")
    return version.require_supported(value)


def parse(raw: dict[str, Any]) -> NetConf:
    cni_version = cni_version_of(raw)
    name = _string(raw, "name", required=True)
    if not _valid_name(name):
        _invalid("name", name, "must start with a letter or digit, followed by letters, digits, '_', '.' or '-'")
    _string(raw, "type", required=True)
    for key in UNSUPPORTED_BRIDGE_KEYS:
        if raw.get(key):
            raise CniError(UNSUPPORTED_FIELD, f"unsupported field {key}={_json(raw[key])}",
                           "netsetter-cni does not implement it; remove the key or set it to false")
    bridge = _string(raw, "bridge") or DEFAULT_BRIDGE
    try:
        check_ifname("bridge", bridge)
    except UsageError as exc:
        _invalid("bridge", bridge, exc.reason)
    is_default_gateway = _bool(raw, "isDefaultGateway")
    dns = raw.get("dns") or {}
    if not isinstance(dns, dict):
        _invalid("dns", dns, "must be an object")
    prev = raw.get("prevResult")
    if prev is not None and not isinstance(prev, dict):
        _invalid("prevResult", prev, "must be an object")
    for key in ("runtimeConfig", "capabilities"):
        if raw.get(key) is not None and not isinstance(raw[key], dict):
            _invalid(key, raw[key], "must be an object")
    plugin = _ipam_plugin(raw.get("ipam"))
    if plugin is not None and plugin in (raw["type"], "netsetter-cni"):
        _invalid("ipam.type", plugin, "names this plugin itself, which would run itself without end; "
                 "omit ipam.type for netsetter's own allocator")
    return NetConf(
        cni_version=cni_version, name=name, bridge=bridge,
        is_gateway=_bool(raw, "isGateway") or is_default_gateway,  # as the bridge plugin: the one implies the other
        is_default_gateway=is_default_gateway, ip_masq=_bool(raw, "ipMasq"), mtu=_mtu(raw),
        ipam=None if plugin else _ipam(raw.get("ipam")), dns=dns, prev_result=prev,
        hairpin=_bool(raw, "hairpinMode"), promisc=_bool(raw, "promiscMode"), force_address=_bool(raw, "forceAddress"),
        ipam_plugin=plugin, raw=raw,
    )


def _ipam_plugin(raw: object) -> str | None:
    """The IPAM plugin ipam.type names, or None for netsetter's own allocator."""
    if not isinstance(raw, dict) or raw.get("type") in (None, OWN_IPAM):
        return None
    kind = raw["type"]
    if not isinstance(kind, str) or not kind or "/" in kind or kind in (".", ".."):
        _invalid("ipam.type", kind, "must name a plugin in CNI_PATH (a file name, such as host-local)")
    return kind


def _ipam(raw: object) -> Ipam | None:
    if raw is None or raw == {}:
        return None
    if not isinstance(raw, dict):
        _invalid("ipam", raw, "must be an object")
    if "ranges" in raw:
        raw = {**raw, **_one_range(raw["ranges"])}
    subnet = _network("ipam.subnet", raw.get("subnet"), required=True)
    if subnet.prefixlen > 30:
        _invalid("ipam.subnet", raw["subnet"], "leaves no address for a gateway and a container (at most /30)")
    gateway = _address_in(subnet, "ipam.gateway", raw.get("gateway")) or subnet.network_address + 1
    start = _address_in(subnet, "ipam.rangeStart", raw.get("rangeStart")) or subnet.network_address + 1
    end = _address_in(subnet, "ipam.rangeEnd", raw.get("rangeEnd")) or subnet.broadcast_address - 1
    if start > end:
        _invalid("ipam.rangeEnd", raw.get("rangeEnd"), f"comes before ipam.rangeStart {start}")
    if start == end == gateway:
        _invalid("ipam.rangeStart", raw.get("rangeStart"), "the range holds only the gateway")
    routes = raw.get("routes") or []
    if not isinstance(routes, list):
        _invalid("ipam.routes", routes, "must be a list of {\"dst\": CIDR, \"gw\": address}")
    return Ipam(subnet, gateway, start, end, tuple(_route(i, r) for i, r in enumerate(routes)))


def _one_range(ranges: object) -> dict[str, Any]:
    """host-local's ``ranges`` ([[{"subnet": ..., "rangeStart": ...}]]): one range set of one IPv4 range."""
    if (not isinstance(ranges, list) or not ranges or not all(isinstance(s, list) and s for s in ranges)
            or not all(isinstance(r, dict) for s in ranges for r in s)):
        _invalid("ipam.ranges", ranges, "must be a list of range sets, each a list of {\"subnet\": CIDR, ...}")
    if len(ranges) > 1 or len(ranges[0]) > 1:
        raise CniError(UNSUPPORTED_FIELD, f"unsupported field ipam.ranges={_json(ranges)}",
                       "netsetter's own allocator serves one IPv4 range; for more, set ipam.type to host-local")
    given = ranges[0][0]
    unknown = sorted(set(given) - {"subnet", "rangeStart", "rangeEnd", "gateway"})
    if unknown:
        raise CniError(UNSUPPORTED_FIELD, f"unsupported field ipam.ranges[0][0].{unknown[0]}="
                       f"{_json(given[unknown[0]])}", "netsetter's own allocator knows subnet, rangeStart, "
                       "rangeEnd and gateway")
    return {k: given[k] for k in ("subnet", "rangeStart", "rangeEnd", "gateway") if k in given}


def _route(index: int, raw: object) -> RouteConf:
    what = f"ipam.routes[{index}]"
    if not isinstance(raw, dict):
        _invalid(what, raw, "must be an object {\"dst\": CIDR, \"gw\": address}")
    gw = raw.get("gw")
    return RouteConf(_network(f"{what}.dst", raw.get("dst"), required=True),
                     _address(f"{what}.gw", gw) if gw else None)


# --- one value each ----------------------------------------------------------

def _invalid(what: str, value: object, reason: str) -> NoReturn:
    raise CniError(INVALID_CONFIG, f"invalid {what} {_json(value)}: {reason}")


def _json(value: object) -> str:
    import json

    return json.dumps(value)


def _valid_name(text: str) -> bool:
    return text[:1].isascii() and text[:1].isalnum() and all(
        c.isascii() and (c.isalnum() or c in "_.-") for c in text)


def _string(raw: dict[str, Any], key: str, required: bool = False) -> str:
    value = raw.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value:
        raise CniError(INVALID_CONFIG, f"invalid network configuration: {key} is missing or not a string"
                       if value is None else f"invalid {key} {_json(value)}: must be a non-empty string")
    return value


def _bool(raw: dict[str, Any], key: str) -> bool:
    value = raw.get(key, False)
    if not isinstance(value, bool):
        _invalid(key, value, "must be true or false")
    return value


def _mtu(raw: dict[str, Any]) -> int | None:
    value = raw.get("mtu")
    if value in (None, 0):  # 0 is the bridge plugin's "unset"
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not MIN_MTU <= value <= MAX_MTU:
        _invalid("mtu", value, f"must be a whole number from {MIN_MTU} to {MAX_MTU}")
    return value


def _network(what: str, value: object, required: bool = False) -> IPv4Network:
    if value is None and required:
        raise CniError(INVALID_CONFIG, f"invalid network configuration: {what} is missing",
                       "give an IPv4 subnet in CIDR notation, as in 10.88.0.0/24")
    try:
        network = ip_network(str(value), strict=False)  # host bits are dropped, as Go's net.ParseCIDR does
    except ValueError as exc:
        raise CniError(INVALID_CONFIG, f"invalid {what} {_json(value)}: {exc}") from None
    if network.version != 4:
        raise CniError(UNSUPPORTED_FIELD, f"unsupported field {what}={_json(value)}", "IPv6 is not supported yet")
    return network


def _address(what: str, value: object) -> IPv4Address:
    try:
        address = ip_address(str(value))
    except ValueError as exc:
        raise CniError(INVALID_CONFIG, f"invalid {what} {_json(value)}: {exc}") from None
    if address.version != 4:
        raise CniError(UNSUPPORTED_FIELD, f"unsupported field {what}={_json(value)}", "IPv6 is not supported yet")
    return address


def _address_in(subnet: IPv4Network, what: str, value: object) -> IPv4Address | None:
    if value is None:
        return None
    address = _address(what, value)
    if address not in subnet or address in (subnet.network_address, subnet.broadcast_address):
        _invalid(what, value, f"is not a host address of ipam.subnet {subnet}")
    return address


def wanted_address(conf: NetConf, args: dict[str, str]) -> IPv4Address | None:
    """CNI_ARGS IP=ADDR (the host-local convention): lease that address, not the first free one."""
    text = args.get("IP")
    if not text:
        return None
    try:
        address = IPv4Address(text)
    except ValueError as exc:
        raise CniError(INVALID_ENVIRONMENT, f"invalid CNI_ARGS IP={text}: {exc}") from None
    if conf.ipam is None:
        raise CniError(INVALID_ENVIRONMENT, f"invalid CNI_ARGS IP={text}: the network has no ipam section")
    if not conf.ipam.range_start <= address <= conf.ipam.range_end or address == conf.ipam.gateway:
        raise CniError(INVALID_ENVIRONMENT, f"invalid CNI_ARGS IP={text}: outside the range "
                       f"{conf.ipam.range_start}-{conf.ipam.range_end}, or the gateway")
    return address
