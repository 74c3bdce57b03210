"""GC and STATUS (CNI 1.1): the network as a whole, not one attachment.

    gc(conf, backend)
      -> cni.dev/valid-attachments lists the attachments the runtime still knows
         ({"containerID": ..., "ifname": ...}); every other one of this network goes:
         own allocator: each lease of the bridge held by an attachment not listed is
         released, with its host end (by its derived name) and, with ipMasq, its NAT rules
      -> ipam.type naming a plugin: its GC, with the same configuration (it does its own
         bookkeeping, as host-local does; as the reference bridge plugin, links are left:
         a container's pair goes with its netns)

    status(conf)
      -> own allocator: ready unless every address of the range is leased (code 50)
      -> ipam.type naming a plugin: its STATUS, its error passed on
"""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import TYPE_CHECKING, Any

from netsetter.host.ipam import Pool
from netsetter.host.lock import host_lock
from . import version
from .args import Invocation
from .config import NetConf
from .delegate import run_plugin
from .errors import INCOMPATIBLE_VERSION, INVALID_CONFIG, CniError
from netsetter.host.links import delete_link
from backends.base import marker

if TYPE_CHECKING:
    from backends.base import Backend

VALID = "cni.dev/valid-attachments"
NOT_AVAILABLE = 50  # the spec's "the plugin is not available (cannot service ADD requests)"
OWNER_PREFIX = "cni:"


def _require_1_1(conf: NetConf, command: str) -> None:
    if not version.allows_gc_and_status(conf.cni_version):
        raise CniError(INCOMPATIBLE_VERSION, f"incompatible CNI version {conf.cni_version!r} for {command}",
                       f"{command} came with CNI 1.1.0")


def valid_attachments(raw: dict[str, Any]) -> set[tuple[str, str]]:
    listed = raw.get(VALID, [])
    if not isinstance(listed, list) or not all(
            isinstance(a, dict) and isinstance(a.get("containerID"), str) and isinstance(a.get("ifname"), str)
            for a in listed):
        raise CniError(INVALID_CONFIG, f"invalid {VALID}: must be a list of "
                       '{"containerID": ..., "ifname": ...}')
    return {(a["containerID"], a["ifname"]) for a in listed}


def gc(conf: NetConf, backend: "Backend") -> list[str]:
    """Remove this network's attachments that are not valid; return what was removed."""
    _require_1_1(conf, "GC")
    valid = valid_attachments(conf.raw)
    if conf.ipam_plugin:
        run_plugin(conf.ipam_plugin, "GC", conf.raw)
        return []
    if conf.ipam is None:
        return []
    done: list[str] = []
    with host_lock():
        pool = conf.ipam.pool(conf.bridge)
        for lease in pool.leases():
            owner = lease.owner
            if not owner.startswith(OWNER_PREFIX) or not _in_range(pool, lease.address):
                continue  # a netsetter process's lease, or another network's on this bridge
            container_id, _, ifname = owner[len(OWNER_PREFIX):].rpartition(":")
            if not container_id or (container_id, ifname) in valid:
                continue
            host = Invocation("GC", container_id, "", ifname).host_veth
            link = backend.link_get(host)
            if link is not None and link.kind == "veth" and link.alias == marker(owner) \
                    and delete_link(backend, host):
                done.append(f"deleted {host}")
            done += [f"released {a} of {container_id}:{ifname}" for a in pool.release(owner)]
            if conf.ip_masq:
                try:
                    from netsetter.host import nat
                except ImportError:
                    continue
                done += nat.release(owner)
    return done


def _last(pool: Pool) -> IPv4Address:
    return pool.end or pool.network.broadcast_address - 1


def _in_range(pool: Pool, address: str) -> bool:
    ip = IPv4Address(address)
    return pool.start <= ip <= _last(pool) and ip in pool.network and ip != pool.gateway


def _range_size(pool: Pool) -> int:
    return int(_last(pool)) - int(pool.start) + 1 - (pool.start <= pool.gateway <= _last(pool))


def status(conf: NetConf) -> None:
    _require_1_1(conf, "STATUS")
    if conf.ipam_plugin:
        run_plugin(conf.ipam_plugin, "STATUS", conf.raw)
        return
    if conf.ipam is None:
        return
    pool = conf.ipam.pool(conf.bridge)
    held = sum(1 for lease in pool.leases() if _in_range(pool, lease.address) and lease.alive())
    if held >= _range_size(pool):
        raise CniError(NOT_AVAILABLE, f'failed to serve ADD on "{conf.name}": every address of '
                       f"{conf.ipam.range_start}-{conf.ipam.range_end} is leased",
                       "DEL (or GC) containers of this network, or widen the range")
