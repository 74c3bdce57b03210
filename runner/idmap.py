"""Map the container's root to the caller: written by the parent, for the child.

    /proc/PID/setgroups  deny
    /proc/PID/uid_map    0 <caller's uid> 1
    /proc/PID/gid_map    0 <caller's gid> 1

A fresh user namespace maps no id: its processes run as the overflow id
(65534) until a process in the parent namespace writes the maps. Each file
is written once, in a single write() (user_namespaces(7)). An unprivileged
writer may map only its own ids, and must deny setgroups() before writing
gid_map: otherwise the container's root could drop a supplementary group
and so get past a "deny this group" permission (CVE-2014-8989).
"""

from __future__ import annotations

import os

from .errors import Failed


def map_root_to(pid: int, uid: int, gid: int) -> None:
    write(f"/proc/{pid}/setgroups", "deny")
    write(f"/proc/{pid}/uid_map", f"0 {uid} 1\n")
    write(f"/proc/{pid}/gid_map", f"0 {gid} 1\n")


def write(path: str, text: str) -> None:
    try:
        fd = os.open(path, os.O_WRONLY)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)
    except OSError as exc:
        raise Failed("write", path, exc) from None
