"""Choose a run's "auto" values, under the host's lock: names, then an address.

Names: the script's veth_host/veth_conta while nobody uses them, else names of
the container's own, derived from its pid (veth_h<pid>/veth_c<pid>: at most 13
bytes, as pids have at most 7 digits). Both ends are named on the host, where
the pair is made, so both must be free there.

Address: every run leases its container address (see :mod:`netsetter.host.ipam`),
chosen or given, so that no two containers on a bridge ever share one.
"""

from __future__ import annotations

from ipaddress import IPv4Interface

from ..config import NetConfig
from ..target import Target
from .ipam import Pool, pid_owner

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~3 ms a runner start)
if TYPE_CHECKING:
    from backends.base import Backend


def pool_of(config: NetConfig) -> Pool:
    return Pool.for_config(config)


def owner_of(target: Target) -> str:
    return pid_owner(target.pid, target.netns_inode)


def _names(config: NetConfig, target: Target, backend: "Backend") -> tuple[str, str]:
    if not {"veth_host", "veth_container"} & config.auto:
        return config.veth_host, config.veth_container
    host = config.veth_host if "veth_host" not in config.auto else None
    peer = config.veth_container if "veth_container" not in config.auto else None
    script = (host or "veth_host", peer or "veth_conta")
    # The pair is made on the host, so only names used there matter: a container end
    # moved away frees its name on the host (every container may call its end veth_conta).
    if not any(backend.link_get(n) is not None for n in script):
        return script
    return host or f"veth_h{target.pid}", peer or f"veth_c{target.pid}"


def resolve(config: NetConfig, target: Target, backend: "Backend") -> NetConfig:
    """The concrete configuration for this run, its address leased to the target."""
    veth_host, veth_container = _names(config, target, backend)
    want = None if "container_addr" in config.auto else config.container_addr.ip
    address = pool_of(config).allocate(owner_of(target), target.pid, target.netns_inode, want=want)
    return config.resolved(veth_host=veth_host, veth_container=veth_container,
                           container_addr=IPv4Interface(f"{address}/{config.bridge_addr.network.prefixlen}"))


def release(config: NetConfig, target: Target) -> list[str]:
    return pool_of(config).release(owner_of(target))
