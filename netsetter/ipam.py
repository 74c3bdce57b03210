"""Address leases on a bridge's subnet: one file per leased address.

    /run/ns-proc/net-<host inode>/leases/<bridge>/<address>   {"owner": ..., "pid": ..., ...}

A lease is created whole or not at all: written to a temporary file, then
hard-linked to its name, which fails if the address is taken (link(2) never
replaces). A writer that crashes leaves at most a temporary file, which
nobody reads. The first free address from the start of the range is taken,
so a lone container gets the script's 10.10.10.101. A lease held by a
process that is gone (its pid no longer has the recorded netns) is reclaimed.
Callers hold the host's lock (:mod:`netsetter.lock`) around allocate-and-use.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from ipaddress import IPv4Address, IPv4Network

from . import state_dir
from .errors import OpError


@dataclass(frozen=True)
class Lease:
    address: str
    owner: str  # "pid:<pid>:<netns inode>" for a process, or any key its user keeps (a CNI container id)
    pid: int | None = None
    netns_inode: int | None = None

    def alive(self) -> bool:
        """Held by a process still there? Leases without a pid live until released."""
        if self.pid is None:
            return True
        try:
            return os.stat(f"/proc/{self.pid}/ns/net").st_ino == self.netns_inode
        except OSError:
            return False


def pid_owner(pid: int, netns_inode: int) -> str:
    return f"pid:{pid}:{netns_inode}"


def lease_dir(bridge: str) -> str:
    return os.path.dirname(state_dir.path("leases", bridge, "x"))


def _read(path: str) -> Lease | None:
    try:
        with open(path) as f:
            return Lease(**json.load(f))
    except (OSError, ValueError, TypeError):
        return None  # gone, or torn by a crash before the link: never visible, but be safe


def bridge_leases(bridge: str) -> list[Lease]:
    """The leases on a bridge, in address order."""
    folder = lease_dir(bridge)
    names = [n for n in os.listdir(folder) if not n.startswith(".")]
    found = (_read(os.path.join(folder, n)) for n in sorted(names, key=lambda n: IPv4Address(n)))
    return [lease for lease in found if lease is not None]


@dataclass(frozen=True)
class Pool:
    bridge: str
    network: IPv4Network
    gateway: IPv4Address
    start: IPv4Address  # first address to hand out
    end: IPv4Address | None = None  # last, by default the one before broadcast

    def _dir(self) -> str:
        return lease_dir(self.bridge)

    def _path(self, address: IPv4Address) -> str:
        return os.path.join(self._dir(), str(address))

    def _candidates(self):  # type: ignore[no-untyped-def]
        last = self.end or self.network.broadcast_address - 1
        for number in range(int(self.start), int(last) + 1):
            address = IPv4Address(number)
            if address in self.network and address not in (self.gateway, self.network.network_address,
                                                           self.network.broadcast_address):
                yield address

    def get(self, address: IPv4Address) -> Lease | None:
        return _read(self._path(address))

    def leases(self) -> list[Lease]:
        return bridge_leases(self.bridge)

    def _take(self, address: IPv4Address, owner: str, pid: int | None, netns_inode: int | None) -> bool:
        lease = Lease(str(address), owner, pid, netns_inode)
        fd, tmp = tempfile.mkstemp(dir=self._dir(), prefix=".lease-")
        try:
            with os.fdopen(fd, "w") as out:
                json.dump(asdict(lease), out)
            os.link(tmp, self._path(address))  # atomic, and never over an existing lease
            return True
        except FileExistsError:
            return False
        finally:
            os.unlink(tmp)

    def allocate(self, owner: str, pid: int | None = None, netns_inode: int | None = None,
                 want: IPv4Address | None = None) -> IPv4Address:
        """Lease ``want``, or the first free address, to ``owner`` (again, if it holds one)."""
        for address in ([want] if want else self._candidates()):
            lease = self.get(address)
            if lease is not None:
                if lease.owner == owner:
                    return address
                if lease.alive():
                    if want:
                        raise OpError("lease address", str(address), f"it is leased to {lease.owner}; "
                                      "choose another address, or `--container-addr auto`")
                    continue
                os.unlink(self._path(address))  # its holder is gone: reclaim it
            if self._take(address, owner, pid, netns_inode):
                return address
        raise OpError("lease an address in", str(self.network),
                      f"every address from {self.start} on is leased; tear down a container or use a larger subnet")

    def release(self, owner: str) -> list[str]:
        """Drop every lease of ``owner``; return the addresses freed."""
        freed = []
        for lease in self.leases():
            if lease.owner == owner:
                try:
                    os.unlink(self._path(IPv4Address(lease.address)))
                    freed.append(lease.address)
                except FileNotFoundError:
                    pass
        return freed
