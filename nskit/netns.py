"""Network namespaces as files: the /var/run/netns entry, and what a namespace file is.

`ip netns exec NAME` opens /var/run/netns/NAME; netsetter.sh makes that name
exist for a pid with a symlink to /proc/PID/ns/net, and removes it at the end
(:func:`expose`, :func:`hide`). Every backend uses these functions: the entry
is a file, not a netlink object.

A namespace is known by its nsfs inode: two paths name the same netns when
their (st_dev, st_ino) are equal (:func:`same_netns`), and :func:`is_own_netns`
is the one test for "this is the netns I run in", which must never be
configured as a container's.
"""

from __future__ import annotations

import fcntl
import os

from .errors import OpError

NETNS_RUN_DIR = "/var/run/netns"
OWN_NETNS = "/proc/thread-self/ns/net"  # the calling thread's: the netns a backend's socket or `ip` works in
NS_GET_NSTYPE = 0xB703  # ioctl on a namespace file: its CLONE_NEW* type (Linux 4.11, linux/nsfs.h)


def pid_netns(pid: int) -> str:
    return f"/proc/{pid}/ns/net"


def is_own_netns(st: os.stat_result) -> bool:
    """Is the namespace file with this stat() the calling thread's own network namespace?"""
    here = os.stat(OWN_NETNS)
    return (st.st_dev, st.st_ino) == (here.st_dev, here.st_ino)


def same_netns(a: str, b: str) -> bool:
    """Do two paths name the same namespace? False when either cannot be looked at."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def ns_type(fd: int) -> int | None:
    """The CLONE_NEW* type of the namespace ``fd`` refers to (CLONE_NEWNET for a
    network namespace), or None for a file that is no namespace at all (a
    runtime's stale mount point, say)."""
    try:
        return int(fcntl.ioctl(fd, NS_GET_NSTYPE))
    except OSError:  # ENOTTY: a plain file, not a namespace
        return None


def entry_path(name: str) -> str:
    return os.path.join(NETNS_RUN_DIR, name)


def expose(pid: int) -> str:
    """Create /var/run/netns/PID -> /proc/PID/ns/net and return what was done.

    Unlike the script's ``[ -f ]`` test, which misses a symlink and so lets
    ``ln -s`` fail on a stale entry, a stale symlink is replaced. A named netns
    of that name (a bind mount made by ``ip netns add``) is never touched.
    """
    path = entry_path(str(pid))
    target = pid_netns(pid)
    try:
        os.makedirs(NETNS_RUN_DIR, exist_ok=True)
    except OSError as exc:
        raise OpError("create directory", NETNS_RUN_DIR, exc.strerror or str(exc), exc.errno) from None
    replaced = ""
    if os.path.islink(path):
        replaced = f" (replaced a stale entry -> {os.readlink(path)})"
        os.unlink(path)
    elif os.path.lexists(path):
        raise OpError("expose netns", path,
                      "a named network namespace of that name exists (made by `ip netns add`); "
                      "remove it with `ip netns del` or choose another process")
    try:
        os.symlink(target, path)
    except OSError as exc:
        raise OpError("expose netns", path, exc.strerror or str(exc), exc.errno) from None
    return f"netns: {pid}{replaced}"


def hide(pid: int) -> str:
    """Remove the entry made by :func:`expose`; a missing entry is fine."""
    path = entry_path(str(pid))
    if not os.path.islink(path):
        return "nothing to hide" if not os.path.lexists(path) else f"{path} is not ours; left alone"
    try:
        os.unlink(path)
    except FileNotFoundError:
        return "nothing to hide"
    except OSError as exc:
        raise OpError("hide netns", path, exc.strerror or str(exc), exc.errno) from None
    return f"removed {path}"
