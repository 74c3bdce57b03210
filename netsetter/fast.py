"""The fast path: a container's network in the fewest requests, the veth peer made in place.

For callers that need the script's end state but not its steps (runner start,
fleets, the CNI plugin): the container end is created directly inside the
container's netns (IFLA_NET_NS_FD on the peer), so it never exists on the host
and is never moved (moving a link costs an RCU grace period, 15-21 ms).

    setup_fast(pid, config, backend="rtnl")
      -> check privileges and the target pid (nothing changed if they fail)
      -> under the host lock, only: choose the host end's name, lease the address
      -> without the lock (the kernel arbitrates: NLM_F_EXCL):
           the bridge, reused or made (its MAC, its address, up)
           veth_host + veth_conta in one request: host end up and a port of the bridge,
             the container end born in the container's netns
           in the container: its address, it up, lo up, the default route
      -> NAT, when asked, under the lock again (iptables rules are shared)
      -> the record, so `netsetter down PID` finds what was made
    teardown_fast(net)   the lease, the record, NAT; the host end too unless the
                         caller lets the container's netns die and take the pair with it

End state: the script's (bridge brg-demo with its MAC and address, up; veth_host
on it, up; veth_conta in the container with its address, up; lo up; the default
route), except that no /var/run/netns entry is ever made (the container's netns
is reached through a file descriptor). A failure half-way undoes what was made.
"""

from __future__ import annotations

import _socket as socket  # not socket.py (its selectors, enums and class): only if_nametoindex is used
import errno
import os
import time
from ipaddress import IPv4Address, IPv4Interface

from nskit.errors import NsError, OpError, Terminated
from nskit.record import Record

from .config import NetConfig
from .errors import PreflightError
from .host import allocate, records
from .host.lock import host_lock
from .host.state_dir import host_cookie
from .target import Target, check_privileges, resolve_target

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~3 ms a runner start)
if TYPE_CHECKING:
    from typing import Any, Callable, Sequence

    from backends.base import Backend

    from .host.nat import PortMap

DEFAULT_BACKEND = "rtnl"  # the fastest: one raw netlink request per change, no process, no asyncio
BY_PATH = frozenset({"rtnl", "netlink"})  # backends that reach a netns by any path; `ip` wants a name


class FastNet(Record):
    """What :func:`setup_fast` made: enough to undo it. A Record, not a dataclass
    (dataclasses imports inspect, ast and tokenize: ~10 ms of runner start)."""

    __slots__ = ("pid", "netns_inode", "config", "backend", "host_index", "bridge_created", "nat", "ms",
                 "requests")

    def __init__(self, pid: int, netns_inode: int, config: NetConfig, backend: str, host_index: int,
                 bridge_created: bool, nat: bool = False, ms: float = 0.0, requests: list[str] | None = None) -> None:
        self.pid = pid
        self.netns_inode = netns_inode
        self.config = config
        self.backend = backend
        self.host_index = host_index
        self.bridge_created = bridge_created
        self.nat = nat
        self.ms = ms
        self.requests: list[str] = [] if requests is None else requests  # the backend's trace of this setup

    @property
    def owner(self) -> str:
        return allocate.pid_owner(self.pid, self.netns_inode)

    @property
    def summary(self) -> str:
        c = self.config
        return f"{c.container_addr} on {c.veth_container} (host end {c.veth_host})"

    def as_dict(self) -> dict[str, Any]:
        return {"pid": self.pid, "backend": self.backend, "config": self.config.as_dict(),
                "host_index": self.host_index, "bridge_created": self.bridge_created,
                "ms": round(self.ms, 3), "requests": self.requests}


def open_fast_backend(name: str | None = None) -> "Backend":
    """The backend by name; the fast path's default is rtnl, not $NETSETTER_BACKEND's ip."""
    from backends import open_backend

    return open_backend(name or DEFAULT_BACKEND)


def setup_fast(pid: object, config: NetConfig | None = None, backend: "Backend | str | None" = None, *,
               masquerade: bool = False, publish: Sequence["PortMap"] = (), netns_fd: int | None = None) -> FastNet:
    """Give the netns of ``pid`` the network ``config`` describes (the script's by default).

    ``backend``: an open backend, or a name (default rtnl). ``netns_fd``: an open
    fd of the container's netns, if the caller holds one (else it is opened here).
    Raises :class:`~nskit.errors.NsError`; on failure nothing is left behind.
    """
    started = time.perf_counter()
    check_privileges()
    target = resolve_target(pid)
    config = config or NetConfig.build()
    owned = not hasattr(backend, "trace")
    b: "Backend" = open_fast_backend(backend) if owned else backend  # type: ignore[arg-type,assignment]
    fd = os.dup(netns_fd) if netns_fd is not None else os.open(target.netns_path, os.O_RDONLY | os.O_CLOEXEC)
    mark = len(b.trace)
    try:
        if os.fstat(fd).st_ino != target.netns_inode:
            raise PreflightError(f"pid {target.pid} exited and its pid was reused; nothing was changed")
        may_rename = "veth_host" in config.auto
        with host_lock():
            config = _choose(config, target)
        try:
            net = _build(b, config, target, fd, masquerade, publish, may_rename)
        except BaseException:
            allocate.release(config, target)
            raise
        net.requests = [c.text for c in b.trace[mark:]]
        net.ms = (time.perf_counter() - started) * 1000
        return net
    finally:
        os.close(fd)
        if owned:
            b.close()


def _choose(config: NetConfig, target: Target) -> NetConfig:
    """Names and address, under the lock. Only the host end's name must be free on the
    host: the container end is born in the container's own netns."""
    record = records.find(pid=target.pid)
    if record is not None and record.alive():
        raise PreflightError(f"pid {target.pid} is already configured; tear it down first with "
                             f"`netsetter down {target.pid}`")
    host = config.veth_host
    if "veth_host" in config.auto and _exists(host):
        host = f"veth_h{target.pid}"
    want = None if "container_addr" in config.auto else config.container_addr.ip
    address = allocate.pool_of(config).allocate(allocate.owner_of(target), target.pid, target.netns_inode, want=want)
    return config.resolved(veth_host=host, veth_container=config.veth_container,
                           container_addr=IPv4Interface(f"{address}/{config.bridge_addr.network.prefixlen}"))


def _exists(name: str) -> bool:
    try:  # SIOCGIFINDEX: an ioctl in this netns, no netlink request
        socket.if_nametoindex(name)
        return True
    except OSError:
        return False


def _build(b: "Backend", config: NetConfig, target: Target, fd: int, masquerade: bool,
           publish: Sequence["PortMap"], may_rename: bool) -> FastNet:
    made_bridge = made_veth = False
    exposed = False
    c = config
    try:
        made_bridge = _bridge(b, c)
        if b.name in BY_PATH:
            ns = f"/proc/self/fd/{fd}"  # this very netns, even if its process is gone meanwhile
        else:  # `ip` opens /var/run/netns/NAME: named for the time of the setup
            b.netns_expose(target.pid)
            exposed, ns = True, str(target.pid)
        c = _veth(b, c, target, ns, may_rename)
        made_veth = True
        configure_inside(b, c.veth_container, c.container_addr, c.gateway, netns=ns)
        if exposed:
            b.netns_hide(target.pid)
            exposed = False
        owner = allocate.owner_of(target)
        if masquerade or publish:
            from .host import nat

            with host_lock():
                if masquerade:
                    nat.masquerade(c.bridge, c.bridge_addr.network, owner)
                for port in publish:
                    nat.publish(c.bridge, owner, port, c.container_addr.ip)
        index = _index(b, c.veth_host)
        records.save(records.Record(pid=target.pid, netns_inode=target.netns_inode,
                                    host_netns=host_cookie(), config=c.as_dict(),
                                    host_veth_index=index, bridge_created=made_bridge))
        return FastNet(target.pid, target.netns_inode, c, b.name, index, made_bridge, bool(masquerade or publish))
    except (NsError, OSError, KeyboardInterrupt, Terminated) as exc:
        _undo(b, c, target, made_bridge, made_veth, exposed, masquerade or bool(publish))
        if isinstance(exc, (NsError, OSError)) and not target.alive():
            raise OpError("set up the network of pid", str(target.pid),
                          f"{exc} (pid {target.pid} exited during the setup)") from None
        raise


def _bridge(b: "Backend", c: NetConfig) -> bool:
    return ensure_bridge(b, c.bridge, c.bridge_mac, c.bridge_addr)


def ensure_bridge(b: "Backend", name: str, mac: str, address: IPv4Interface) -> bool:
    """The bridge ``name``, reused or made (``mac``, ``address``, up); True when made here.
    A concurrent run may make it between our look and our add: EEXIST then means reuse it."""
    link = b.link_get(name)
    made = False
    if link is None:
        try:
            b.bridge_add(name, mac)
            made = True
        except OpError as exc:
            if exc.errno != errno.EEXIST:
                raise
        if not made:
            link = b.link_get(name)
    if link is not None and link.kind != "bridge":
        raise OpError("reuse bridge", name, f"a link of that name exists and is a {link.kind or 'plain'} "
                      "device, not a bridge; remove it or choose another --bridge")
    if link is None or address not in link.addrs:
        try:
            b.addr_add(name, address)
        except OpError as exc:
            if exc.errno != errno.EEXIST:  # added by a concurrent run: as wanted
                raise
    if link is None or not link.up:
        b.link_set_up(name, dev=True)
    return made


def configure_inside(b: "Backend", ifname: str, address: IPv4Interface, gateway: IPv4Address,
                     netns: str | None = None) -> None:
    """The container's side of its pair: its address, it up, lo up, the default route.
    ``netns`` None: the caller is in the container's netns itself (a fleet's clone)."""
    b.addr_add(ifname, address, netns=netns)
    b.link_set_up(ifname, netns=netns)
    b.link_set_up("lo", netns=netns)
    b.route_add_default(gateway, ifname, netns=netns)


def _veth(b: "Backend", c: NetConfig, target: Target, ns: str, may_rename: bool) -> NetConfig:
    """The pair in one request. The host end's name was chosen under the lock but is taken
    only now: a concurrent run may have taken the script's name first; an auto name then
    becomes the pid's own."""
    fallback = f"veth_h{target.pid}"
    try:
        b.veth_add_peer_in(c.veth_host, c.veth_container, ns, master=c.bridge)
        return c
    except OpError as exc:
        if exc.errno != errno.EEXIST:
            raise
        if not _exists(c.veth_host):
            raise OpError("add veth pair", c.veth_container, f"a link of that name already exists in the "
                          f"netns of pid {target.pid}; choose another --veth-container") from None
        if not may_rename or c.veth_host == fallback:
            raise OpError("add veth pair", c.veth_host, "a link of that name already exists on the host; "
                          "choose another --veth-host") from None
    c = c.resolved(veth_host=fallback)
    b.veth_add_peer_in(c.veth_host, c.veth_container, ns, master=c.bridge)
    return c


def _index(b: "Backend", name: str) -> int:
    try:
        return socket.if_nametoindex(name)
    except OSError:
        link = b.link_get(name)
        return link.index if link else 0


def _undo(b: "Backend", c: NetConfig, target: Target, made_bridge: bool, made_veth: bool, exposed: bool,
          nat: bool) -> None:
    """Newest first, past errors: the pair (both ends go), the bridge if ours and unused, the entry."""
    steps: list[Callable[[], object]] = []
    if nat:
        from .host import nat as nat_rules

        def release_nat() -> None:
            with host_lock():
                nat_rules.release(allocate.owner_of(target))
        steps.append(release_nat)
    if made_veth:
        steps.append(lambda: b.link_del(c.veth_host))
    if exposed:
        steps.append(lambda: b.netns_hide(target.pid))
    if made_bridge:
        steps.append(lambda: None if b.bridge_ports(c.bridge) else b.link_del(c.bridge))
    for step in steps:
        try:
            step()
        except (NsError, OSError):
            pass


def teardown_fast(net: FastNet, backend: "Backend | str | None" = None, *, link: bool = True) -> list[str]:
    """Undo :func:`setup_fast`: NAT, the lease and the record; the host end of the pair
    too, unless ``link`` is False: the caller lets the container's netns die, and the
    kernel deletes the pair with it (no RTM_DELLINK, no RCU wait in the caller)."""
    done: list[str] = []
    owner = net.owner
    if net.nat:
        from .host import nat

        with host_lock():
            done += nat.release(owner)
    if link:
        try:
            same = socket.if_nametoindex(net.config.veth_host) == net.host_index
        except OSError:
            same = False  # gone already (the netns went, and the pair with it)
        if same:
            owned = not hasattr(backend, "trace")
            b: "Backend" = open_fast_backend(backend or net.backend) if owned else backend  # type: ignore
            try:
                b.link_del(net.config.veth_host)
                done.append(f"deleted {net.config.veth_host} (and its peer in the container)")
            except OpError as exc:
                if exc.errno != errno.ENODEV:
                    raise
            finally:
                if owned:
                    b.close()
    # Our own lease files and record: no other run writes them, so no lock is needed.
    done += [f"released the lease of {a}" for a in allocate.pool_of(net.config).release(owner)]
    record = records.find(pid=net.pid)
    if record is not None and record.netns_inode == net.netns_inode:
        records.remove(record)
        done.append(f"forgot the record of pid {net.pid}")
    return done


__all__ = ["FastNet", "setup_fast", "teardown_fast", "ensure_bridge", "configure_inside", "DEFAULT_BACKEND"]
