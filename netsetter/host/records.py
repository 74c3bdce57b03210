"""What netsetter made for each container, so it can be checked, recovered and torn down.

One JSON file per container under /run/ns-proc/netns-<host cookie>/containers/.
It is written before the first step, as ``pending`` (so that a run killed at
any point leaves a trace that names its links: the next run for that pid
recovers them, `netsetter down` removes them), updated with the host veth's
ifindex once that link exists, and written final after a successful setup
(each write atomic: a private temporary file renamed into place). Teardown
removes it. A record names the container's netns by inode, so a reused pid is
never mistaken for the container it replaced.
"""

from __future__ import annotations

import json
import os

from nskit.record import Record as _Record

from . import state_dir

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~3 ms a runner start)
if TYPE_CHECKING:
    from typing import Any, Iterator

FOLDER = "containers"


class Record(_Record):
    """Read-only: an nskit Record, not a frozen dataclass (dataclasses costs ~10 ms to import)."""

    __slots__ = ("pid", "netns_inode", "host_netns", "config", "host_veth_index", "bridge_created", "pending")

    def __init__(self, pid: int, netns_inode: int, host_netns: int, config: dict[str, str], host_veth_index: int,
                 bridge_created: bool, pending: bool = False) -> None:
        self.pid = pid
        self.netns_inode = netns_inode  # the container's netns
        self.host_netns = host_netns  # the host's netns cookie
        self.config = config
        # So that teardown deletes this link, not a later one of that name (0: not yet made).
        self.host_veth_index = host_veth_index
        self.bridge_created = bridge_created
        self.pending = pending  # written before the steps ran: the run did not (yet) finish

    def as_dict(self) -> dict[str, Any]:
        """The fields, in order, as dataclasses.asdict gave them (the file's JSON object)."""
        return {name: (dict(value) if isinstance(value, dict) else value)
                for name in self.__slots__ for value in (getattr(self, name),)}

    def alive(self) -> bool:
        """Is the pid still the process whose netns we configured?"""
        try:
            return os.stat(f"/proc/{self.pid}/ns/net").st_ino == self.netns_inode
        except OSError:
            return False

    def but(self, **changes: Any) -> "Record":
        return self.replace(**changes)


def _name(pid: int) -> str:
    return f"{pid}.json"


def save(record: Record) -> None:
    folder = state_dir.open_dir(FOLDER, key=record.host_netns)
    assert folder is not None
    state_dir.write_file(folder, _name(record.pid), json.dumps(record.as_dict(), indent=2))


def remove(record: Record) -> None:
    folder = state_dir.open_dir(FOLDER, key=record.host_netns, create=False)
    if folder is None:
        return
    try:
        os.unlink(_name(record.pid), dir_fd=folder)
    except FileNotFoundError:
        pass


def all_here() -> Iterator[Record]:
    """Every record of the current host netns; other files are ignored (with a warning)."""
    folder = state_dir.open_dir(FOLDER, create=False)
    if folder is None:
        return
    for name in sorted(os.listdir(folder)):
        if name.startswith("."):
            continue  # a temporary file of a write in progress, or one a killed run left
        record = _load(folder, name) if name.endswith(".json") else None
        if record is None:
            state_dir.foreign(state_dir.host_dir() + "/" + FOLDER, name, "not a record of netsetter")
            continue
        yield record


def _load(folder: int, name: str) -> Record | None:
    text = state_dir.read_file(folder, name)
    if text is None:
        return None
    try:
        record = Record(**json.loads(text))
    except (ValueError, TypeError):
        return None  # torn or foreign: not ours to judge
    return record if name == _name(record.pid) else None


def find(pid: int | None = None, ifname: str | None = None) -> Record | None:
    """The record of a container by pid (one file), or by one of its interface names (a scan)."""
    if pid is not None:
        folder = state_dir.open_dir(FOLDER, create=False)
        return None if folder is None else _load(folder, _name(pid))
    for record in all_here():
        if ifname is not None and ifname in (record.config["veth_container"], record.config["veth_host"]):
            return record
    return None
