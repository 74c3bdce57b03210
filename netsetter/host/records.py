"""What netsetter made for each container, so it can be checked and torn down.

One JSON file per container under /run/ns-proc/net-<host inode>/containers/, written after a
successful setup (atomically: a temporary file renamed into place) and
removed by teardown. A record names the host netns it belongs to and the
container's netns by inode, so a reused pid is never mistaken for the
container it replaced.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from typing import Iterator

from . import state_dir


@dataclass(frozen=True)
class Record:
    pid: int
    netns_inode: int  # the container's netns
    host_netns_inode: int
    config: dict[str, str]
    host_veth_index: int  # so that teardown deletes this link, not a later one of that name
    bridge_created: bool

    @property
    def file(self) -> str:
        return _file(self.host_netns_inode, self.pid)

    def alive(self) -> bool:
        """Is the pid still the process whose netns we configured?"""
        try:
            return os.stat(f"/proc/{self.pid}/ns/net").st_ino == self.netns_inode
        except OSError:
            return False


def _file(host_inode: int, pid: int) -> str:
    return state_dir.path("containers", f"{pid}.json", inode=host_inode)


def save(record: Record) -> None:
    """Write the record whole, then rename it into place: a reader sees the old file or the new.

    No fsync (0.5 ms idle, 8 ms measured under load): it would only guard against a
    power loss, and a power loss takes every link and namespace a record describes
    with it; a record torn by one is read as absent (:func:`_load`), as it should be.
    A crashed or killed writer leaves at most the temporary file, never a torn record.
    """
    tmp = record.file + ".tmp"
    with open(tmp, "w") as out:
        json.dump(asdict(record), out, indent=2)
    os.replace(tmp, record.file)


def remove(record: Record) -> None:
    try:
        os.unlink(record.file)
    except FileNotFoundError:
        pass


def all_here() -> Iterator[Record]:
    """Every record of the current host netns."""
    folder = os.path.dirname(_file(state_dir.host_netns_inode(), 0))
    for name in sorted(os.listdir(folder)):
        if name.endswith(".json"):
            record = _load(os.path.join(folder, name))
            if record is not None:
                yield record


def _load(path: str) -> Record | None:
    try:
        with open(path) as f:
            return Record(**json.load(f))
    except (OSError, ValueError, TypeError):
        return None  # absent, torn or foreign: not ours to judge


def find(pid: int | None = None, ifname: str | None = None) -> Record | None:
    """The record of a container by pid (one file), or by one of its interface names (a scan)."""
    if pid is not None:
        return _load(_file(state_dir.host_netns_inode(), pid))
    for record in all_here():
        if pid is not None and record.pid == pid:
            return record
        if ifname is not None and ifname in (record.config["veth_container"], record.config["veth_host"]):
            return record
    return None
