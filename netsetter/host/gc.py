"""netsetter gc: remove the state whose holders or namespaces are gone, and say what went.

    gc()
      -> folders of other namespaces (/run/ns-proc/netns-<cookie>/): removed when no live
         network namespace has that cookie. The folder's ``netns`` file names the inode the
         namespace had; a namespace is alive while a process (any thread) is in it, holds it
         open, or it is mounted (`ip netns add`, a runtime's bind mount). No live namespace
         with that inode: gone. One with that inode but another cookie: the inode was reused,
         the folder's namespace is gone too.
      -> folders of the old layout (net-<inode>/): removed when no live namespace has that inode
      -> in this namespace's folder, under the host's lock: records of processes that are gone
         (their leases and NAT rules with them), leases of processes that are gone, NAT owners
         that are gone, temporary files of killed writes
      -> /var/run/netns entries netsetter made (<pid> -> /proc/<pid>/ns/net, netsetter-cni-*)
         whose namespace is gone

Every run does the cheap part for what it touches: a record of a reused pid is dropped,
a lease of a process that is gone is reclaimed when its address is wanted.
"""

from __future__ import annotations

import json
import os
import re
import time
from typing import Iterator

from nskit import netns as netns_entry

from . import nat, records, state_dir
from .ipam import Lease, bridge_leases, drop_lease
from .lock import host_lock

FRESH = 5.0  # seconds: a folder this young may be of a namespace still being set up

CNI_ALIAS = re.compile(r"^netsetter-cni-[0-9a-f]{12}$")


def live_netns() -> dict[int, str]:
    """Every network namespace alive now, by inode, with a path that opens it."""
    found: dict[int, str] = {}

    def add(path: str) -> None:
        try:
            st = os.stat(path)
        except OSError:
            return
        found.setdefault(st.st_ino, path)

    for entry in _listdir(netns_entry.NETNS_RUN_DIR):
        add(os.path.join(netns_entry.NETNS_RUN_DIR, entry))
    mount_namespaces: set[int] = set()
    for pid in (p for p in _listdir("/proc") if p.isdigit()):
        for tid in _listdir(f"/proc/{pid}/task"):
            add(f"/proc/{pid}/task/{tid}/ns/net")
        for fd in _listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("net:["):
                    add(f"/proc/{pid}/fd/{fd}")
            except OSError:
                pass
        try:
            mnt = os.stat(f"/proc/{pid}/ns/mnt").st_ino
        except OSError:
            continue
        if mnt not in mount_namespaces:  # nsfs bind mounts, in every mount namespace once
            mount_namespaces.add(mnt)
            for point in _nsfs_mounts(pid):
                add(f"/proc/{pid}/root{point}")
    return found


def _nsfs_mounts(pid: str) -> Iterator[str]:
    try:
        with open(f"/proc/{pid}/mountinfo") as f:
            for line in f:
                left, _, right = line.partition(" - ")
                if right.split(" ", 1)[0] == "nsfs":
                    yield left.split()[4].replace("\\040", " ")
    except OSError:
        return


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


def gone_folders(grace: float = FRESH) -> list[tuple[str, str]]:
    """The state folders whose namespace no longer exists, with why; folders changed within
    ``grace`` seconds of the scan are left out."""
    here = state_dir.host_cookie()
    # A folder made (or given its netns file) after this moment may be of a namespace made
    # after the scan below: it is left for the next gc rather than judged on a stale picture.
    scanned_at = time.time() - grace
    live = live_netns()
    cookies: dict[int, int | None] = {}

    def cookie_of(inode: int) -> int | None:
        if inode not in cookies:
            try:
                cookies[inode] = netns_entry.cookie(live[inode])
            except OSError:
                cookies[inode] = None
        return cookies[inode]

    gone = []
    for name in sorted(_listdir(state_dir.RUN_DIR)):
        path = os.path.join(state_dir.RUN_DIR, name)
        if name.startswith("net-") and name[4:].isdigit():
            if int(name[4:]) not in live:
                gone.append((path, "an old-layout folder of a namespace that is gone"))
            continue
        if not name.startswith(state_dir.PREFIX) or not name[len(state_dir.PREFIX):].isdigit():
            continue
        key = int(name[len(state_dir.PREFIX):])
        if key == here or _changed_since(path, scanned_at):
            continue
        meta = _meta(path)
        inode = meta.get("inode") if meta else None
        if isinstance(inode, int):
            if inode not in live:
                gone.append((path, f"its namespace (net:[{inode}], cookie {key}) is gone"))
            elif cookie_of(inode) not in (key, None):
                gone.append((path, f"its namespace is gone: net:[{inode}] is another namespace now"))
            continue
        if not any(cookie_of(i) == key for i in live):
            gone.append((path, f"no live namespace has cookie {key}"))
    return gone


def _changed_since(folder: str, moment: float) -> bool:
    try:
        return os.lstat(folder).st_mtime >= moment
    except OSError:
        return True  # gone already, or being made: not ours to judge now


def _meta(folder: str) -> dict[str, object] | None:
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        text = state_dir.read_file(fd, state_dir.META)
    finally:
        os.close(fd)
    try:
        data = json.loads(text) if text else None
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def gc() -> list[str]:
    """Remove what is gone; return one line per thing removed."""
    import shutil

    removed = []
    for path, why in gone_folders():
        shutil.rmtree(path, ignore_errors=True)
        removed.append(f"removed {path}: {why}")
    with host_lock():
        removed += sweep_here()
    removed += sweep_entries()
    return removed


def sweep_here() -> list[str]:
    """This namespace's records, leases and NAT owners whose process is gone. Under the host lock."""
    removed = []
    for record in list(records.all_here()):
        if record.alive():
            continue
        owner = f"pid:{record.pid}:{record.netns_inode}"
        removed += [f"released NAT of {owner}: {line}" for line in nat.release(owner)]
        records.remove(record)
        removed.append(f"removed the record of pid {record.pid} ({record.config.get('veth_host')}): "
                       "its process is gone")
    leases = state_dir.open_dir("leases", create=False)
    for bridge in sorted(os.listdir(leases)) if leases is not None else []:
        for lease in bridge_leases(bridge):
            if lease.pid is not None and not lease.alive():
                drop_lease(bridge, lease.address)
                removed.append(f"released {lease.address} on {bridge}: {lease.owner} is gone")
        state_dir.remove_if_empty("leases", bridge)
    for owner in nat.owners():
        kind, _, rest = owner.partition(":")
        if kind == "pid" and not Lease("", owner).alive():
            removed += [f"released NAT of {owner}: {line}" for line in nat.release(owner)] or \
                       [f"released NAT of {owner}"]
    removed += nat.finish_releases()
    return removed


def sweep_entries() -> list[str]:
    """/var/run/netns entries of netsetter's making whose namespace is gone (dangling symlinks)."""
    removed = []
    for name in _listdir(netns_entry.NETNS_RUN_DIR):
        path = os.path.join(netns_entry.NETNS_RUN_DIR, name)
        if not os.path.islink(path) or os.path.exists(path):
            continue  # not a symlink, or its namespace is alive
        text = os.readlink(path)
        ours = (name.isascii() and name.isdigit() and text == netns_entry.pid_netns(int(name))) or \
            bool(CNI_ALIAS.match(name))
        if ours:
            try:
                os.unlink(path)
            except FileNotFoundError:
                continue
            removed.append(f"removed {path} -> {text}: its namespace is gone")
    return removed
