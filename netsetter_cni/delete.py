"""DEL: release everything ADD took for the attachment; what is already gone is fine.

    delete(invocation, conf, backend)
      -> with ipam.type naming a plugin: that plugin's DEL (first, before the lock)
      -> under the host lock:
         the veth pair, only when it is the attachment's: an end marked as ADD marks it
             (IFLA_IFALIAS "ns-proc:cni:<CNI_CONTAINERID>:<CNI_IFNAME>"), or, for an ADD killed
             before it could mark, the unmarked host end of the derived name whose peer is
             CNI_IFNAME in CNI_NETNS (deleting one end of a veth pair deletes both)
         the lease of the attachment (cni:<CNI_CONTAINERID>:<CNI_IFNAME>)
         ipMasq: the attachment's NAT rules (netsetter.host.nat drops the shared ones with the last owner)

The spec asks DEL to succeed when the netns is gone, when CNI_NETNS is empty
(containerd after the task exited), when the link is gone, and when it is
called twice; runtimes also call it after a failed ADD, or for an attachment
that was never added: a link of that name someone else made is left alone, and
DEL still succeeds. A netns that is gone took the pair with it: the kernel
deletes a netns's links when its last user leaves. The bridge stays, for the
other containers of the network.
"""

from __future__ import annotations


from netsetter.host.lock import host_lock
from . import netns
from .args import Invocation
from .config import NetConf
from .delegate import start_plugin
from .errors import UNKNOWN_CONTAINER, CniError
from backends.base import marker
from netsetter.host.links import delete_link

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~5 ms a CNI call)
if TYPE_CHECKING:
    from backends.base import Backend


def delete(inv: Invocation, conf: NetConf, backend: "Backend") -> list[str]:
    """Remove the attachment; return what was removed (for the trace), empty when nothing was left."""
    if not conf.ipam_plugin:
        return _delete_own(inv, conf, backend)
    # Started first, as the reference bridge plugin runs it first: its lease goes even if the links
    # are gone. It runs while the links are removed (each takes a few ms), then its result is taken.
    ipam = start_plugin(conf.ipam_plugin, "DEL", conf.raw)
    try:
        done = _delete_own(inv, conf, backend)
    finally:
        ipam.result()
    return [f'ran DEL of IPAM plugin "{conf.ipam_plugin}"', *done]


def _delete_own(inv: Invocation, conf: NetConf, backend: "Backend") -> list[str]:
    """What this plugin made: the veth pair, its own allocator's lease, its NAT rules."""
    done: list[str] = []
    with host_lock():
        done += delete_pair(inv, backend)
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


def delete_pair(inv: Invocation, backend: "Backend") -> list[str]:
    """The attachment's veth pair, if it is still there and provably the attachment's."""
    mine = marker(inv.owner)
    host = backend.link_get(inv.host_veth)
    if host is not None and (host.kind != "veth" or host.alias not in (mine, "")):
        host = None  # another link of that name, someone else's
    if inv.netns:
        try:
            with netns.opened(inv.netns) as ns:
                inside = backend.link_get(inv.ifname, ns)
                if inside is not None and inside.kind == "veth":
                    peer_is_host = host is not None and inside.peer_index == host.index
                    if inside.alias == mine or (peer_is_host and not inside.alias):
                        if delete_link(backend, inv.ifname, ns):
                            return [f"deleted {inv.ifname} and its peer {inv.host_veth}"]
                        return []
        except CniError as exc:
            if exc.code != UNKNOWN_CONTAINER:
                raise  # the host's netns, or not a network namespace: never touched
    # The netns is gone (and the pair with it), or holds no end of ours: a host end that
    # outlived it is ours by its mark; unmarked, only its peer inside could have vouched for it.
    if host is not None and host.alias == mine and delete_link(backend, inv.host_veth):
        return [f"deleted {inv.host_veth} and its peer"]
    return []
