"""DEL: release everything ADD took for the attachment; what is already gone is fine.

    delete(invocation, conf, backend)
      -> under the host lock:
         the container end CNI_IFNAME, if the netns is still there and holds a veth of that name
             (the host end goes with it: deleting one end of a veth pair deletes both)
         the host end, found by its derived name, if it outlived the netns
         the lease of the attachment (cni:<CNI_CONTAINERID>:<CNI_IFNAME>), or, with ipam.type
             naming a plugin, that plugin's DEL (first, before the lock)
         ipMasq: the attachment's NAT rules (netsetter.host.nat drops the shared ones with the last owner)

The spec asks DEL to succeed when the netns is gone, when CNI_NETNS is empty
(containerd after the task exited), when the link is gone, and when it is
called twice; runtimes also call it after a failed ADD. A netns that is gone
took the pair with it: the kernel deletes a netns's links when its last user
leaves. The bridge stays, for the other containers of the network.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from netsetter.host.lock import host_lock
from . import netns
from .args import Invocation
from .config import NetConf
from .delegate import run_plugin
from netsetter.host.links import delete_link

if TYPE_CHECKING:
    from backends.base import Backend


def delete(inv: Invocation, conf: NetConf, backend: "Backend") -> list[str]:
    """Remove the attachment; return what was removed (for the trace), empty when nothing was left."""
    done: list[str] = []
    if conf.ipam_plugin:  # first, as the reference bridge plugin: its lease goes even if the links are gone
        run_plugin(conf.ipam_plugin, "DEL", conf.raw)
        done.append(f'ran DEL of IPAM plugin "{conf.ipam_plugin}"')
    with host_lock():
        if inv.netns and netns.state(inv.netns) == "netns":
            with netns.named(inv.netns, inv.netns_alias) as ns:
                link = backend.link_get(inv.ifname, ns)
                # Only a veth is ours; another link of that name was made by someone else.
                if link is not None and link.kind == "veth" and delete_link(backend, inv.ifname, ns):
                    done.append(f"deleted {inv.ifname} and its peer {inv.host_veth}")
        host = backend.link_get(inv.host_veth)
        if host is not None and host.kind == "veth" and delete_link(backend, inv.host_veth):
            done.append(f"deleted {inv.host_veth} and its peer")
        if conf.ipam is not None:
            pool = conf.ipam.pool(conf.bridge)
            done += [f"released {address}" for address in pool.release(inv.owner)]
        if conf.ip_masq:
            try:
                from netsetter.host import nat
            except ImportError:  # then ADD refused ipMasq: there are no rules to drop
                return done
            done += nat.release(inv.owner)
    return done
