"""Address leases on a bridge's subnet: one symlink per leased address.

    /run/ns-proc/netns-<host cookie>/leases/<bridge>/<address> -> "pid:<pid>:<netns inode>"

A lease is a symlink whose target names its owner: symlink(2) creates it
whole or not at all and never replaces one, so two runs can never take the
same address, and a writer that crashes leaves nothing half-written. Reading
a lease is one readlink, so walking a thousand of them stays cheap.

The first free address from the start of the range is taken, so a lone
container gets the script's 10.10.10.101. A lease whose process is gone is
free again: it is reclaimed on the way. Owners that are not processes (a CNI
container id) hold their leases until they release them. Callers hold the
host's lock (:mod:`netsetter.host.lock`) around allocate-and-use.
"""

from __future__ import annotations

import errno
import os
from ipaddress import IPv4Address, IPv4Network

from nskit.errors import OpError
from nskit.record import Record

from ..config import NetConfig, auto_start
from . import state_dir

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~3 ms a runner start)
if TYPE_CHECKING:
    from typing import Iterator


class Lease(Record):
    """Read-only: a Record, not a frozen dataclass (dataclasses costs ~10 ms to import)."""

    __slots__ = ("address", "owner")

    def __init__(self, address: str, owner: str) -> None:
        self.address = address
        self.owner = owner  # "pid:<pid>:<netns inode>" for a process, or any key its user keeps (a CNI container id)

    @property
    def pid(self) -> int | None:
        kind, _, rest = self.owner.partition(":")
        return int(rest.split(":")[0]) if kind == "pid" else None

    def alive(self) -> bool:
        """Is the owner still there? Leases without a pid live until released.

        kill(pid, 0) asks whether the pid exists without signalling it (EPERM:
        it exists, and is not ours to signal). A reused pid keeps a stale lease
        looking alive until that process goes too: it is never handed out twice.
        A zombie is gone: it holds nothing, and one whose parent was SIGKILLed (a fleet's
        supervisor) waits to be reaped by an init that may take seconds to do it.
        """
        pid = self.pid
        if pid is None:
            return True
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return not _zombie(pid)


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False  # gone a moment ago (kill said so too late), or no /proc: judged by kill alone
    return stat[stat.rfind(b")") + 2:][:1] == b"Z"  # "pid (comm) state ...": comm may hold ")"


def pid_owner(pid: int, netns_inode: int) -> str:
    return f"pid:{pid}:{netns_inode}"


def lease_dir(bridge: str, create: bool = True) -> str | None:
    """The folder of a bridge's leases (a path through an open descriptor), made only when asked."""
    return state_dir.dir_path("leases", bridge, create=create)


def _read(path: str) -> Lease | None:
    try:
        return Lease(os.path.basename(path), os.readlink(path))
    except OSError:
        return None


def _address(name: str) -> IPv4Address | None:
    try:
        return IPv4Address(name)
    except ValueError:
        return None


def bridge_leases(bridge: str) -> list[Lease]:
    """The leases on a bridge, in address order; files that are no lease are ignored, with a warning."""
    folder = lease_dir(bridge, create=False)
    if folder is None:
        return []
    named = []
    for name in os.listdir(folder):
        address = _address(name)
        if address is None or str(address) != name:
            state_dir.foreign(f"{state_dir.host_dir()}/leases/{bridge}", name, "not an address lease")
            continue
        named.append(address)
    found = (_read(os.path.join(folder, str(a))) for a in sorted(named))
    return [lease for lease in found if lease is not None]


def drop_lease(bridge: str, address: str) -> None:
    """Remove one lease, whoever holds it (for `netsetter gc`, once its holder is gone)."""
    folder = lease_dir(bridge, create=False)
    if folder is None:
        return
    try:
        os.unlink(os.path.join(folder, address))
    except FileNotFoundError:
        pass


class Pool(Record):
    """Read-only: a Record, not a frozen dataclass."""

    __slots__ = ("bridge", "network", "gateway", "start", "end")

    def __init__(self, bridge: str, network: IPv4Network, gateway: IPv4Address, start: IPv4Address,
                 end: IPv4Address | None = None) -> None:
        self.bridge = bridge
        self.network = network
        self.gateway = gateway
        self.start = start  # first address to hand out
        self.end = end  # last, by default the one before broadcast

    @classmethod
    def for_config(cls, config: NetConfig) -> "Pool":
        """netsetter's pool on config.bridge: its subnet, from auto_start (the script's .101) up."""
        return cls(config.bridge, config.bridge_addr.network, config.gateway, auto_start(config.bridge_addr))

    @classmethod
    def for_range(cls, bridge: str, subnet: IPv4Network, gateway: IPv4Address, first: IPv4Address,
                  last: IPv4Address | None = None) -> "Pool":
        """A pool on bridge handing out first..last of subnet (the CNI plugin's ipam range)."""
        return cls(bridge, subnet, gateway, first, last)

    def _path(self, address: IPv4Address) -> str:
        folder = lease_dir(self.bridge)
        assert folder is not None
        return os.path.join(folder, str(address))

    def _candidates(self) -> Iterator[IPv4Address]:
        last = self.end or self.network.broadcast_address - 1
        for number in range(int(self.start), int(last) + 1):
            address = IPv4Address(number)
            if address in self.network and address not in (self.gateway, self.network.network_address,
                                                           self.network.broadcast_address):
                yield address

    def get(self, address: IPv4Address) -> Lease | None:
        folder = lease_dir(self.bridge, create=False)
        return None if folder is None else _read(os.path.join(folder, str(address)))

    def leases(self) -> list[Lease]:
        return bridge_leases(self.bridge)

    def allocate(self, owner: str, pid: int | None = None, netns_inode: int | None = None,
                 want: IPv4Address | None = None) -> IPv4Address:
        """Lease ``want``, or the first free address, to ``owner`` (again, if it holds one).

        ``pid`` and ``netns_inode`` are part of ``owner`` already (see
        :func:`pid_owner`); they are accepted for callers that pass them.
        """
        for address in ([want] if want is not None else self._candidates()):
            lease = self.get(address)
            if lease is not None:
                if lease.owner == owner:
                    return address
                if lease.alive():
                    if want is not None:
                        raise OpError("lease address", str(address), f"it is leased to {lease.owner}; "
                                      "choose another address, or `--container-addr auto`")
                    continue
                self._drop(address)  # its holder is gone: reclaim it
            try:
                os.symlink(owner, self._path(address))
                return address
            except FileExistsError:
                if want is not None:
                    raise OpError("lease address", str(address), "another run took it a moment ago") from None
        raise OpError("lease an address in", str(self.network),
                      f"every address from {self.start} on is leased; tear down a container or use a larger subnet")

    def allocate_many(self, owners: list[str]) -> list[IPv4Address]:
        """Lease the first free addresses to each of ``owners``, in one walk of the range.

        For a fleet: :meth:`allocate` in a loop would walk every lease taken
        before it again, N²/2 readlinks for N containers. Taken all or none.
        """
        taken: list[IPv4Address] = []
        candidates = self._candidates()
        try:
            for owner in owners:
                for address in candidates:
                    lease = self.get(address)
                    if lease is not None:
                        if lease.alive():
                            continue
                        self._drop(address)
                    try:
                        os.symlink(owner, self._path(address))
                    except FileExistsError:
                        continue
                    taken.append(address)
                    break
                else:
                    raise OpError("lease an address in", str(self.network),
                                  f"{len(owners)} wanted, {len(taken)} free from {self.start} on; stop some "
                                  "containers or use a larger subnet")
        except BaseException:
            for address in taken:
                self._drop(address)
            raise
        return taken

    def _drop(self, address: IPv4Address) -> None:
        try:
            os.unlink(self._path(address))
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise

    def release(self, owner: str) -> list[str]:
        """Drop every lease of ``owner``; return the addresses freed."""
        return self.release_many({owner})

    def release_many(self, owners: set[str]) -> list[str]:
        """Drop every lease of each of ``owners`` in one walk of the leases (a fleet's N at once)."""
        freed = []
        for lease in self.leases():
            if lease.owner in owners:
                self._drop(IPv4Address(lease.address))
                freed.append(lease.address)
        if freed or lease_dir(self.bridge, create=False) is not None:
            state_dir.remove_if_empty("leases", self.bridge)  # no empty folder per bridge name tried
        return freed
