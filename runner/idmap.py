"""Who the container's root is on the host: the id maps, written by the parent for the child.

Two mappings (``--map-root-to-caller`` chooses the article's when runner is root)::

    unprivileged (root's default)    container 0..65535 -> host 1000000000..1000065535
        /proc/PID/uid_map            0 1000000000 65536
        /proc/PID/gid_map            0 1000000000 65536
    the article's (any other caller) container 0 -> the caller, and nothing else
        /proc/PID/setgroups          deny
        /proc/PID/uid_map            0 <caller's uid> 1
        /proc/PID/gid_map            0 <caller's gid> 1

The unprivileged range belongs to no one: no user of /etc/passwd, no range
of /etc/subuid or /etc/subgid may fall in it (checked at each start, see
:func:`check_unowned`). So the container's root is nobody on the host: a
descriptor it should not have, a path it should not see, a file in /proc it
should not write, grant it what they grant any stranger. Every container
started this way shares that one range, as they share the cache's image;
what each writes is in a writable layer of its own (see layer.py).

A fresh user namespace maps no id: its processes run as the overflow id
(65534) until a process in the parent namespace writes the maps. Each file
is written once, in a single write() (user_namespaces(7)). An unprivileged
writer may map only its own ids, and must deny setgroups() before writing
gid_map: otherwise the container's root could drop a supplementary group
and so get past a "deny this group" permission (CVE-2014-8989). Root may map
any range, and setgroups stays allowed there: the child drops the host's
supplementary groups with it (child.py).
"""

from __future__ import annotations

import os
from nskit.record import Record

from .errors import Failed

RANGE_START = 1_000_000_000  # host id of the container's root under the unprivileged mapping
RANGE_SIZE = 65536  # container ids 0..65535, as podman's --userns=auto gives by default
OVERFLOW = 65534  # nobody: what a file owned by an id beyond the range becomes


class Mapping(Record):
    """The container's ids on the host (read-only: a Record, not a frozen dataclass, see parent.py)."""

    __slots__ = ("uid", "gid", "count")

    def __init__(self, uid: int, gid: int, count: int) -> None:
        self.uid = uid  # host uid of the container's root
        self.gid = gid
        self.count = count  # how many ids, from 0, the container has

    @property
    def unprivileged(self) -> bool:
        return self.count > 1

    def describe(self) -> str:
        if self.count == 1:
            return f"root in the container is uid {self.uid} gid {self.gid} on the host, and no other id is mapped"
        return f"container ids 0-{self.count - 1} are host ids {self.uid}-{self.uid + self.count - 1}"

    def host_uid(self, uid: int) -> int:
        """The host uid a file of the image owned by container ``uid`` must have."""
        return self.uid + (uid if 0 <= uid < self.count else OVERFLOW)

    def host_gid(self, gid: int) -> int:
        return self.gid + (gid if 0 <= gid < self.count else OVERFLOW)


def for_caller(map_root_to_caller: bool = False) -> Mapping:
    """Root's default is the unowned range; anyone else (and root who asks) gets the article's."""
    if os.geteuid() == 0 and not map_root_to_caller:
        check_unowned(RANGE_START, RANGE_SIZE)
        return Mapping(RANGE_START, RANGE_START, RANGE_SIZE)
    return Mapping(os.getuid(), os.getgid(), 1)


def check_unowned(start: int, size: int, passwd: str = "/etc/passwd", group: str = "/etc/group",
                  subids: tuple[str, ...] = ("/etc/subuid", "/etc/subgid")) -> None:
    """Refuse the range when a user, a group or a subordinate range of /etc/sub[ug]id holds part of it."""
    end = start + size
    for path in (passwd, group):
        for fields in _lines(path):
            if len(fields) > 2 and fields[2].isdigit() and start <= int(fields[2]) < end:
                raise Failed("use the host id range", f"{start}-{end - 1}",
                             f"{fields[0]} ({path}) has id {fields[2]} in it; "
                             "remove that entry, or use --map-root-to-caller")
    for path in subids:
        for fields in _lines(path):
            if len(fields) == 3 and fields[1].isdigit() and fields[2].isdigit():
                first, count = int(fields[1]), int(fields[2])
                if first < end and start < first + count:
                    raise Failed("use the host id range", f"{start}-{end - 1}",
                                 f"{path} gives {first}-{first + count - 1} to {fields[0]}; "
                                 "remove that range, or use --map-root-to-caller")


def _lines(path: str) -> list[list[str]]:
    try:
        with open(path) as f:
            return [line.strip().split(":") for line in f if line.strip() and not line.startswith("#")]
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise Failed("read", path, exc) from None


def write_maps(pid: int, mapping: Mapping) -> None:
    if not mapping.unprivileged:
        write(f"/proc/{pid}/setgroups", "deny")
    write(f"/proc/{pid}/uid_map", f"0 {mapping.uid} {mapping.count}\n")
    write(f"/proc/{pid}/gid_map", f"0 {mapping.gid} {mapping.count}\n")


def map_root_to(pid: int, uid: int, gid: int) -> None:
    """The article's mapping: container root is ``uid``/``gid``, alone."""
    write_maps(pid, Mapping(uid, gid, 1))


def write(path: str, text: str) -> None:
    try:
        fd = os.open(path, os.O_WRONLY)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)
    except OSError as exc:
        raise Failed("write", path, exc) from None
