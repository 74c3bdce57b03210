"""GC and STATUS (CNI 1.1): the network as a whole, not one attachment.

    gc(conf, backend)
      -> cni.dev/valid-attachments lists the attachments the runtime still knows
         ({"containerID": ..., "ifname": ...}); every other one of this network goes:
         the host ends on the bridge marked as an attachment not listed (ADD's marker), with
         their container ends, whichever allocator served them;
         own allocator: each lease of the bridge held by an attachment not listed is
         released, with its host end (by its derived name) and, with ipMasq, its NAT rules
      -> ipam.type naming a plugin: its GC first, with the same configuration (it does its
         own bookkeeping, as host-local does), then the links as above

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
LATEST_GC = "1.1.0"  # the first spec version with GC


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
        return delegated_gc(conf, backend, valid, conf.ipam_plugin)
    if conf.ipam is None:
        with host_lock():
            return [f"deleted {host} of {cid}:{ifname}" for cid, ifname, host in delete_stale_ports(conf, backend, valid)]
    done: list[str] = []
    with host_lock():
        pool = conf.ipam.pool(conf.bridge)
        # Networks may share a bridge (and so its lease folder), each with a range of its own: an
        # attachment leased outside this network's range is another network's, whatever its port.
        others = {lease.owner for lease in pool.leases() if not _in_range(pool, lease.address)}
        done += [f"deleted {host} of {cid}:{ifname}" for cid, ifname, host in
                 delete_stale_ports(conf, backend, valid, others)]
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


def delegated_gc(conf: NetConf, backend: "Backend", valid: set[tuple[str, str]], kind: str) -> list[str]:
    """The links of the attachments not listed go (ours to remove), then their leases: the IPAM
    plugin's DEL for each, as DEL would have done, and its own GC when it speaks CNI 1.1. Debian
    12's host-local (1.1.1) speaks up to 1.0.0 and knows no GC: its DELs get the configuration in
    the newest version it speaks, and no GC."""
    spoken = (run_plugin(kind, "VERSION", {"cniVersion": conf.cni_version}) or {}).get("supportedVersions") or []
    with host_lock():
        stale = delete_stale_ports(conf, backend, valid)
    done = [f"deleted {host} of {cid}:{ifname}" for cid, ifname, host in stale]
    common = [v for v in version.SUPPORTED if v in spoken]
    if stale and not common:
        raise CniError(INCOMPATIBLE_VERSION, f'failed to release the leases of {len(stale)} attachments with IPAM '
                       f'plugin "{kind}": it speaks none of our versions ({", ".join(map(str, spoken))})')
    for cid, ifname, _ in stale:
        older = {**conf.raw, "cniVersion": conf.cni_version if conf.cni_version in common else common[-1]}
        run_plugin(kind, "DEL", older, CNI_CONTAINERID=cid, CNI_IFNAME=ifname, CNI_NETNS="")
        done.append(f'ran DEL of IPAM plugin "{kind}" for {cid}:{ifname}')
    if LATEST_GC in spoken:
        run_plugin(kind, "GC", conf.raw)
        done.append(f'ran GC of IPAM plugin "{kind}"')
    return done


def delete_stale_ports(conf: NetConf, backend: "Backend", valid: set[tuple[str, str]],
                       others: set[str] | frozenset[str] = frozenset()) -> list[tuple[str, str, str]]:
    """The host ends on the network's bridge marked as an attachment's (ns-proc:cni:<id>:<ifname>)
    that is not valid: deleted, with their container ends; returns (id, ifname, host end) of each.
    Unmarked ports, ports whose name is not the attachment's, and attachments of ``others``
    (owners known to be another network's) are someone else's."""
    done = []
    prefix = marker(OWNER_PREFIX)
    for name in backend.bridge_ports(conf.bridge):
        link = backend.link_get(name)
        if link is None or link.kind != "veth" or not link.alias.startswith(prefix):
            continue
        container_id, _, ifname = link.alias[len(prefix):].rpartition(":")
        if not container_id or (container_id, ifname) in valid or f"{OWNER_PREFIX}{container_id}:{ifname}" in others:
            continue
        if Invocation("GC", container_id, "", ifname).host_veth == name and delete_link(backend, name):
            done.append((container_id, ifname, name))
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
