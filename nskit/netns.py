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
INITIAL_NETNS = "/proc/1/ns/net"  # PID 1's: the machine's own network namespace
KTHREADD_NETNS = "/proc/2/ns/net"  # kthreadd's: the same, where PID 1's is out of reach
SO_NETNS_COOKIE = 71  # getsockopt: the netns's 64-bit cookie, unique per boot (Linux 5.14, asm-generic/socket.h)
NS_GET_NSTYPE = 0xB703  # ioctl on a namespace file: its CLONE_NEW* type (Linux 4.11, linux/nsfs.h)


def pid_netns(pid: int) -> str:
    return f"/proc/{pid}/ns/net"


def is_own_netns(st: os.stat_result) -> bool:
    """Is the namespace file with this stat() the calling thread's own network namespace?"""
    here = os.stat(OWN_NETNS)
    return (st.st_dev, st.st_ino) == (here.st_dev, here.st_ino)


def is_initial_netns(st: os.stat_result) -> bool:
    """Is the namespace file with this stat() the machine's initial network namespace (PID 1's)?

    Both are alive while compared, so equal (st_dev, st_ino) means the same netns.
    Where PID 1's cannot be looked at (some inits are not dumpable, and the kernel
    then refuses even root), kthreadd's is: kernel threads always live in the
    initial namespaces.
    """
    for path in (INITIAL_NETNS, KTHREADD_NETNS):
        if path == KTHREADD_NETNS and not _is_kthreadd():
            continue
        try:
            init = os.stat(path)
        except OSError:
            continue
        return (st.st_dev, st.st_ino) == (init.st_dev, init.st_ino)
    return False


def _is_kthreadd() -> bool:
    """Is pid 2 the kernel's thread creator (no parent), as in the initial pid namespace?"""
    try:
        with open("/proc/2/stat") as f:
            fields = f.read().rpartition(")")[2].split()
    except OSError:
        return False
    return fields[:2] == ["S", "0"] or (len(fields) > 1 and fields[1] == "0")


def cookie(path: str | None = None) -> int:
    """The netns cookie of the calling thread's network namespace, or of the one ``path`` names.

    Inode numbers of namespaces are reused as soon as one is freed; the cookie
    (SO_NETNS_COOKIE on a socket made in that netns) is never reused until reboot.
    For ``path``, a short-lived thread enters the netns with setns(2), makes the
    socket and leaves: the caller's thread never changes namespace.
    """
    import _socket as socket  # not socket.py: see backends/rtnl/channel.py

    if path is None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            return int.from_bytes(sock.getsockopt(socket.SOL_SOCKET, SO_NETNS_COOKIE, 8), "little")
        finally:
            sock.close()
    import threading

    from . import syscalls

    got: list[object] = []

    def inside() -> None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                syscalls.setns(fd, syscalls.CLONE_NEWNET, path)
            finally:
                os.close(fd)
            got.append(cookie())
        except OSError as exc:
            got.append(exc)

    thread = threading.Thread(target=inside, name="netns-cookie")
    thread.start()
    thread.join()
    if isinstance(got[0], OSError):
        raise got[0]
    return int(got[0])  # type: ignore[call-overload]


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


def foreign_entry(pid: int) -> str | None:
    """What /var/run/netns/PID is, when it is anything but absent or the entry :func:`expose`
    makes for that same pid (a symlink whose text is /proc/PID/ns/net); None otherwise.

    `ip netns exec PID` and `ip link set X netns PID` resolve that name before the pid,
    so any other entry would steer them into someone else's namespace.
    """
    path = entry_path(str(pid))
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"{path} cannot be looked at ({exc.strerror})"
    import stat

    if stat.S_ISLNK(st.st_mode):
        text = os.readlink(path)
        if text == pid_netns(pid):
            return None
        return f"{path} is a symlink to {text}, not to {pid_netns(pid)}"
    return (f"{path} is a named network namespace (made by `ip netns add`)" if stat.S_ISREG(st.st_mode)
            else f"{path} exists and is not netsetter's")


def expose(pid: int) -> str:
    """Create /var/run/netns/PID -> /proc/PID/ns/net and return what was done.

    Unlike the script's ``[ -f ]`` test, which misses a symlink and so lets
    ``ln -s`` fail on a stale entry, a stale entry of ours (the same symlink, left
    by a run that was killed) is replaced. Anything else there (a named netns, a
    symlink to another process's netns) is never followed, replaced or deleted:
    the run stops, saying what is there.
    """
    path = entry_path(str(pid))
    target = pid_netns(pid)
    try:
        os.makedirs(NETNS_RUN_DIR, exist_ok=True)
    except OSError as exc:
        raise OpError("create directory", NETNS_RUN_DIR, exc.strerror or str(exc), exc.errno) from None
    other = foreign_entry(pid)
    if other is not None:
        raise OpError("expose netns", path, f"{other}; netsetter does not touch it: remove it yourself "
                      "if it is stale, or let its owner do so")
    replaced = ""
    if os.path.islink(path):
        replaced = " (replaced its own stale entry)"
        os.unlink(path)
    try:
        os.symlink(target, path)
    except OSError as exc:
        raise OpError("expose netns", path, exc.strerror or str(exc), exc.errno) from None
    return f"netns: {pid}{replaced}"


def hide(pid: int) -> str:
    """Remove the entry made by :func:`expose`; a missing entry is fine, anyone else's is left alone."""
    path = entry_path(str(pid))
    if not os.path.lexists(path):
        return "nothing to hide"
    other = foreign_entry(pid)
    if other is not None:
        return f"left {path} alone: {other.removeprefix(path + ' ')}"
    try:
        os.unlink(path)
    except FileNotFoundError:
        return "nothing to hide"
    except OSError as exc:
        raise OpError("hide netns", path, exc.strerror or str(exc), exc.errno) from None
    return f"removed {path}"
