"""Many networked containers from one Python process: the public Fleet API.

    with Fleet(bridge="fl0", subnet="10.30.0.0/16") as fleet:   # the current netns plays the host
        a = fleet.start(["/bin/sh"])                            # a Container: .pid, .address, .name
        many = fleet.start_many(500, ["/bin/sleep", "infinity"])
        a.exec(["ping", "-c1", str(many[0].address.ip)])        # a subprocess.CompletedProcess

How a batch starts (start is a batch of one), so that many are in flight at once:

    clone each (clone.py)      user, mnt, uts, ipc, pid, net at once; each waits on its go pipe
    write their id maps
    lease their addresses      one pass, under the host lock (the only time it is held)
    each one's host side       one rtnetlink request: the host end on the bridge, the peer made in
                               place in the container's netns (fleetnet.py)
    release each               its address on the go pipe: it mounts, configures its own side of the
                               network and execs catatonit, all of them in parallel
    collect                    each error pipe closes at its exec; a failure stops the whole batch

Teardown (leaving the block, also by an exception, Ctrl-C or SIGTERM): SIGKILL to
every container's init, which ends its PID namespace; reap; the leases and NAT
rules released in one pass; then wait until the kernel, destroying each netns,
has taken its veth pair with it (in batches: no link is deleted one by one);
the bridge goes if the fleet made it. If the supervisor itself is killed,
PR_SET_PDEATHSIG ends every container, and their leases are reclaimed as
stale by the next allocation; a bridge the fleet made stays.

A container is a child of the thread that started it, and dies with it
(PR_SET_PDEATHSIG follows the thread): start containers from a thread that
outlives them, the main thread normally.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from ipaddress import IPv4Interface
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from . import clone, fleetnet, loopback, rootfs
from .container import Container
from .errors import Failed, RunnerError, UsageError
from .spec import check_hostname, environment

if TYPE_CHECKING:
    from netsetter.host.nat import PortMap

BATCH = 128  # clones in flight at once: each holds two pipe ends in the supervisor
STOPPING = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
GONE_TIMEOUT = 60.0  # for the kernel to destroy the netns of ended containers


class Fleet:
    """Containers on one bridge of the current network namespace; see the module's docstring.

    bridge, subnet, gateway: the bridge (made if missing, reused if a bridge), its subnet and
    the gateway address on it (default: the subnet's first address); containers lease the
    following addresses. rootfs, cache_dir: as ``runner start --rootfs/--cache-dir``.
    init: run the command under catatonit (True) or as PID 1 itself (False).
    routed: each container gets its address as a /32 and reaches every other address through
    the gateway, which the current netns routes (forwarding on, ICMP redirects off there): no
    neighbour entry is learned on either side, so that a thousand containers can all talk to
    each other under the machine's gc_thresh3 (see fleetnet.py). False: one subnet on the link,
    peers learned by ARP, the netns's forwarding untouched.
    """

    def __init__(self, bridge: str = "fl0", subnet: str = "10.30.0.0/16", *, gateway: str | None = None,
                 rootfs: str | None = None, cache_dir: str | Path | None = None, init: bool = True,
                 routed: bool = False) -> None:
        self.net = fleetnet.FleetNet.parse(bridge, subnet, gateway)
        self.net.routed = routed
        self._rootfs, self._cache = rootfs, Path(cache_dir) if cache_dir else None
        self._use_init = init
        self.containers: list[Container] = []
        self._root: Path | None = None
        self._init_fd: int | None = None
        self._hold = self._hold_w = -1
        self._opened = False
        self._count = 0
        self._saved_term: object = None

    # --- the block ---------------------------------------------------------------
    def __enter__(self) -> "Fleet":
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        if self._opened:
            return
        self._root, _ = rootfs.prepare(self._rootfs, rootfs.cache_dir(self._cache))  # used in place, read-only by convention
        self._init_fd = clone.init_fd() if self._use_init else None
        # stdin by default: a pipe nobody writes to, so that a shell waits for input as long
        # as the fleet lives (as a Mininet host's does); its write end is closed at teardown.
        self._hold, self._hold_w = os.pipe()
        try:
            self.net.open()
        except BaseException:
            self._close_fds()
            raise
        if threading.current_thread() is threading.main_thread() \
                and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            self._saved_term = signal.signal(signal.SIGTERM, _terminated)  # SIGTERM cleans up, as Ctrl-C does
        self._opened = True

    # --- starting ----------------------------------------------------------------
    def start(self, argv: Sequence[str] = ("/bin/sh",), *, hostname: str | None = None, net: bool = True,
              env: dict[str, str] | None = None, masquerade: bool = False, publish: Sequence[str] = (),
              stdin: int | None = None, stdout: int | None = None, stderr: int | None = None) -> Container:
        """Start one container running ``argv``; it is networked when this returns.

        stdin defaults to a pipe that stays empty while the fleet lives, stdout and stderr to this process's. masquerade
        and publish ("HOSTPORT:CONTAINERPORT") are `runner start`'s (iptables).
        """
        return self.start_many(1, argv, hostnames=[hostname] if hostname else None, net=net, env=env,
                               masquerade=masquerade, publish=publish, stdin=stdin, stdout=stdout,
                               stderr=stderr)[0]

    def start_many(self, n: int, argv: Sequence[str] = ("/bin/sh",), *, hostnames: Sequence[str] | None = None,
                   net: bool = True, env: dict[str, str] | None = None, masquerade: bool = False,
                   publish: Sequence[str] = (), stdin: int | None = None, stdout: int | None = None,
                   stderr: int | None = None) -> list[Container]:
        """Start ``n`` containers running ``argv``, many in flight at once; all or none."""
        if not self._opened:
            raise Failed("start containers on", self.net.bridge, "the fleet is not open; use `with Fleet(...)`")
        argv = tuple(argv)
        if not argv or not all(isinstance(a, str) and a and "\0" not in a for a in argv[:1]):
            raise UsageError("command", argv, "must be a non-empty list of strings")
        if n < 0:
            raise UsageError("number of containers", n, "must be 0 or more")
        if hostnames is not None and len(hostnames) != n:
            raise UsageError("hostnames", len(hostnames), f"must name each of the {n} containers")
        names = [check_hostname(h) for h in hostnames] if hostnames else \
            [f"h{self._count + i + 1}" for i in range(n)]
        if (masquerade or publish) and not net:
            raise UsageError("net", False, "cannot go with masquerade or publish, which need the network")
        from netsetter.host.nat import PortMap
        from nskit.errors import UsageError as NetUsageError

        try:
            ports = [PortMap.parse(p) for p in publish]
        except NetUsageError as exc:
            raise UsageError(exc.what, exc.value, exc.reason) from None
        if ports and n > 1:
            raise UsageError("publish", ",".join(publish), "a host port goes to one container; start them one by one")
        self._check_command(argv[0], env)
        environ = environment([f"{k}={v}" for k, v in (env or {}).items()])
        stdio = (self._hold if stdin is None else stdin, 1 if stdout is None else stdout,
                 2 if stderr is None else stderr)
        started: list[Container] = []
        try:
            for first in range(0, n, BATCH):
                self._batch(names[first:first + BATCH], argv, environ, net, stdio, started)
            if net and (masquerade or ports):
                self._nat(started, masquerade, ports)
        except BaseException:
            with _shielded():
                self._remove(started)
            raise
        self._count += n
        return started

    def _check_command(self, command: str, env: dict[str, str] | None) -> None:
        """Refuse a command the container's root does not have, before anything starts: under
        catatonit, a failed exec would only be the container's exit status."""
        assert self._root is not None
        path = (env or {}).get("PATH") or environment([])["PATH"]
        candidates = [command] if "/" in command else [f"{d}/{command}" for d in path.split(":") if d]
        # lexists: the root's links point into the root (/bin/busybox), not into the host's tree.
        if not any(os.path.lexists(f"{self._root}/{c.lstrip('/')}") for c in candidates):
            raise UsageError("command", command, f"is not in the container's root filesystem {self._root}")

    def _batch(self, names: list[str], argv: tuple[str, ...], env: dict[str, str], net: bool,
               stdio: tuple[int, int, int], started: list[Container]) -> None:
        """Start these containers, each added to ``started`` as soon as it is cloned."""
        assert self._root is not None
        gateway = self.net.gateway.ip
        mac = self.net.bridge_mac
        inside = (lambda said: fleetnet.inside(IPv4Interface(said.decode()), gateway, mac)) if net else _lo_up
        clones: list[clone.Clone] = []
        batch: list[Container] = []
        try:
            for name in names:
                with _shielded():  # cloned and listed, or neither: teardown must know every container
                    c = clone.clone(root=self._root, argv=argv, env=env, hostname=name, init=self._init_fd,
                                    inside=inside, stdio=stdio)
                    clones.append(c)
                    batch.append(Container(c.pid, name, None, argv))
                    started.append(batch[-1])
                    self.containers.append(batch[-1])
            pids = [c.pid for c in clones]
            for pid in pids:
                clone.map_ids(pid)
            with _shielded():  # leased and known to the fleet, or neither: teardown releases what it knows
                addresses = self.net.lease(pids) if net else [None] * len(pids)
            for container, address in zip(batch, addresses, strict=True):
                container.address = address
                if net:
                    assert address is not None
                    self.net.host_side(container.pid, address)
                    container.host_ifname = fleetnet.host_ifname(container.pid)
            for c, address in zip(clones, addresses, strict=True):
                c.release(str(address).encode() if address else b"")
            for c, container in zip(clones, batch, strict=True):
                error = c.outcome()
                if error:
                    raise Failed("start container", container.name, error)
        finally:
            for c in clones:
                c.close()

    def _nat(self, started: list[Container], masquerade: bool, ports: list["PortMap"]) -> None:
        from netsetter.host import nat
        from netsetter.host.ipam import pid_owner
        from nskit.errors import NsError

        for container in started:
            container.nat_owner = pid_owner(container.pid, fleetnet.netns_inode(container.pid))
            try:
                if masquerade:
                    nat.masquerade(self.net.bridge, self.net.subnet, container.nat_owner)
                for port in ports:
                    assert container.address is not None
                    nat.publish(self.net.bridge, container.nat_owner, port, container.address.ip)
            except (NsError, OSError) as exc:
                raise Failed("set up NAT for container", container.name, exc) from None

    # --- stopping ----------------------------------------------------------------
    def stop(self, container: Container) -> int:
        """Stop one container (SIGKILL), release what it held; its exit status."""
        with _shielded():
            self._remove([container])
        return container.wait()

    def _remove(self, containers: list[Container]) -> None:
        """SIGKILL, reap, release leases and NAT: the kernel takes the veth pairs with the netns."""
        for c in containers:
            c.kill(signal.SIGKILL)
        for c in containers:
            if c.status is None:
                try:
                    c.wait()
                except RunnerError:
                    pass
        gone = {c.pid for c in containers}
        errors = []
        try:
            self.net.release(list(gone))
        except OSError as exc:
            errors.append(f"release leases: {exc}")
        owners = [c.nat_owner for c in containers if c.nat_owner]
        if owners:
            from netsetter.host import nat

            for owner in owners:
                try:
                    nat.release(owner)
                except Exception as exc:  # noqa: BLE001 - the others are released still
                    errors.append(f"release NAT of {owner}: {exc}")
        self.containers = [c for c in self.containers if c.pid not in gone]
        if errors:
            raise Failed("clean up after containers on", self.net.bridge, "; ".join(errors))

    def close(self) -> None:
        """Stop every container, wait for their links to go, remove the bridge if the fleet made it."""
        if not self._opened:
            return
        with _shielded():
            try:
                self._remove(list(self.containers))
                self._wait_links_gone()
                self.net.remove_bridge()
            finally:
                try:
                    self.net.unroute()  # a routed fleet's forwarding, set back unless another owner needs it
                finally:
                    self.net.close()
                    self._close_fds()
                    self._opened = False
                    if self._saved_term is not None:
                        signal.signal(signal.SIGTERM, self._saved_term)  # type: ignore[arg-type]
                        self._saved_term = None

    def _wait_links_gone(self) -> None:
        end = time.monotonic() + GONE_TIMEOUT
        while left := self.net.host_ends():
            if time.monotonic() > end:
                raise Failed("wait for the kernel to remove", left[0],
                             f"{len(left)} host ends still on {self.net.bridge} after {GONE_TIMEOUT:.0f} s")
            time.sleep(0.01)

    def _close_fds(self) -> None:
        for fd in (self._init_fd, self._hold, self._hold_w):
            if fd is not None and fd >= 0:
                os.close(fd)
        self._init_fd, self._hold, self._hold_w = None, -1, -1

    def pids(self) -> list[int]:
        """The init of every running container (each one's processes are its descendants)."""
        return [c.pid for c in self.containers]


def _lo_up(_: bytes) -> None:
    loopback.up()  # imported before any clone: after its pivot_root, a clone can import nothing


def _terminated(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


class _shielded:
    """Hold off Ctrl-C and SIGTERM (they arrive once the block is done): a step is done whole."""

    def __enter__(self) -> None:
        self._was = signal.pthread_sigmask(signal.SIG_BLOCK, STOPPING)

    def __exit__(self, *exc: object) -> None:
        signal.pthread_sigmask(signal.SIG_SETMASK, self._was)
