"""netsetter down: remove what `netsetter PID` made for one container.

    down(target)               target: a pid, or one of the container's interface names
      -> under the host's lock, find the container's record
      -> delete the host veth end (its peer in the container goes with it),
         but only the very link the run made (same ifindex)
      -> remove the /var/run/netns entry and the record
      -> with bridge=True, delete the bridge too, unless other ports remain on it

Everything that is already gone counts as done, so running it twice is fine.
Without a record (a run of the original script, say) only what can be proven
to belong to the container is removed: a host veth whose peer is the
container's interface, seen from inside the live process's netns.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from backends.base import marker
from nskit import netns as netns_entry

from ..config import NetConfig
from ..target import check_privileges, parse_pid
from . import nat, records
from .allocate import pool_of
from .ipam import pid_owner
from .links import delete_bridge_if_unused, delete_link
from .lock import host_lock

if TYPE_CHECKING:
    from backends.base import Backend


@dataclass
class Teardown:
    target: str
    actions: list[str] = field(default_factory=list)  # what was removed
    notes: list[str] = field(default_factory=list)  # what was found and left alone, and why

    @property
    def changed(self) -> bool:
        return bool(self.actions)

    def as_dict(self) -> dict[str, Any]:
        return {"target": self.target, "outcome": "done" if self.changed else "nothing to do",
                "actions": self.actions, "notes": self.notes}


def down(target: str, config: NetConfig, backend: "Backend", *, bridge: bool = False) -> Teardown:
    check_privileges()
    pid = parse_pid(target) if target.isascii() and target.isdigit() else None
    out = Teardown(target)
    with host_lock():
        record = records.find(pid=pid) if pid is not None else records.find(ifname=target)
        if record is not None:
            config = NetConfig.build(**record.config)
            pid = record.pid
            _delete_host_end(backend, config.veth_host, record, out)
        elif pid is not None:
            _delete_proven_pair(backend, config, pid, out)
        if pid is not None and os.path.lexists(netns_entry.entry_path(str(pid))):
            hidden = netns_entry.hide(pid)
            (out.actions if hidden.startswith("removed") else out.notes).append(hidden)
        if record is not None:
            owner = pid_owner(record.pid, record.netns_inode)
            out.actions += nat.release(owner)
            freed = pool_of(config).release(owner)
            out.actions += [f"released the lease of {address}" for address in freed]
            records.remove(record)
            out.actions.append(f"forgot the record of pid {record.pid}")
        if bridge:
            _delete_bridge(backend, config.bridge, out)
    return out


def _delete_host_end(backend: "Backend", name: str, record: records.Record, out: Teardown) -> None:
    """The host end the record names: the very link (same ifindex); for a run that was killed
    before it learnt the ifindex, the link whose marker names the container (or, unmarked, the
    veth its pending record says it was making)."""
    link = backend.link_get(name)
    if link is None:
        return
    index = record.host_veth_index
    mine = marker(pid_owner(record.pid, record.netns_inode))
    if index:
        ours = link.index == index
    else:
        ours = link.kind == "veth" and (link.alias == mine or (record.pending and not link.alias))
    if not ours:
        why = f"ifindex {link.index}, not {index}" if index else f"marked {link.alias!r}, not {mine!r}"
        out.notes.append(f"left {name} alone: it is another link of that name ({why})")
        return
    _link_del(backend, name, out)


def _delete_proven_pair(backend: "Backend", config: NetConfig, pid: int, out: Teardown) -> None:
    """No record: delete the host end only if the live container holds its peer."""
    host = backend.link_get(config.veth_host)
    if host is None or host.kind != "veth" or not os.path.exists(f"/proc/{pid}/ns/net"):
        return
    exposed_here = not os.path.lexists(netns_entry.entry_path(str(pid)))
    try:
        if exposed_here:
            netns_entry.expose(pid)
        peer = backend.link_get(config.veth_container, netns=str(pid))
    finally:
        if exposed_here:
            netns_entry.hide(pid)
    if peer is not None and peer.peer_index == host.index:
        _link_del(backend, config.veth_host, out)
    else:
        out.notes.append(f"left {config.veth_host} alone: its peer is not {config.veth_container} "
                           f"in the netns of pid {pid}")


def _link_del(backend: "Backend", name: str, out: Teardown) -> None:
    if delete_link(backend, name):
        out.actions.append(f"deleted {name} (and its peer in the container)")


def _delete_bridge(backend: "Backend", name: str, out: Teardown) -> None:
    deleted, ports = delete_bridge_if_unused(backend, name)
    if ports:
        out.notes.append(f"kept bridge {name}: other ports remain on it ({', '.join(ports)})")
    elif deleted:
        out.actions.append(f"deleted bridge {name}")
