"""Names and addresses for many containers on one bridge.

The script's values fit one container (veth_host, veth_conta, 10.10.10.101/24);
container i here gets its own: links bh<i>/bc<i> and address 10.10.0.0 + 2 + i
on a /16 bridge (10.10.0.1), room for 65 000 containers. The bridge keeps the
script's name and MAC.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from netsetter.config import NetConfig

BRIDGE = "brg-demo"
NETWORK = IPv4Network("10.10.0.0/16")
BRIDGE_ADDR = f"{NETWORK.network_address + 1}/{NETWORK.prefixlen}"


def values(i: int) -> dict[str, str]:
    address = NETWORK.network_address + 2 + i
    if address >= NETWORK.broadcast_address:
        raise ValueError(f"container {i} does not fit in {NETWORK}")
    return {"bridge": BRIDGE, "bridge_addr": BRIDGE_ADDR, "veth_host": f"bh{i}", "veth_container": f"bc{i}",
            "container_addr": f"{IPv4Address(address)}/{NETWORK.prefixlen}"}


def config(i: int) -> "NetConfig":
    from netsetter.config import NetConfig

    return NetConfig.build(**values(i))


def cli_options(i: int) -> list[str]:
    """The same, as options of `netsetter up` and `runner start`."""
    return [arg for key, value in values(i).items() for arg in (f"--{key.replace('_', '-')}", value)]
