"""The Linux system calls Python 3.11's ``os`` module lacks, through ctypes.

The CLONE_* and mount flags are defined here and nowhere else. Each wrapper
raises :class:`OSError` with the errno and the call that failed, for example
``[Errno 1] setns(CLONE_NEWNET) on /proc/42/ns/net: Operation not permitted``.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~5 ms a CNI call)
if TYPE_CHECKING:
    from typing import Any

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MNT_DETACH = 0x2

_NAMES = {CLONE_NEWNS: "CLONE_NEWNS", CLONE_NEWUTS: "CLONE_NEWUTS", CLONE_NEWIPC: "CLONE_NEWIPC",
          CLONE_NEWUSER: "CLONE_NEWUSER", CLONE_NEWPID: "CLONE_NEWPID", CLONE_NEWNET: "CLONE_NEWNET"}

_libc_handle = None


def _libc() -> Any:
    """libc, loaded on the first call: importing this module for its flags costs nothing.

    By soname: ctypes.util.find_library() would fork ldconfig to find it. The
    first call in a process that pivots its root comes before pivot_root(2)
    (a mount is needed first), so libc is always loaded from the host's tree.
    """
    global _libc_handle
    if _libc_handle is None:
        import ctypes

        _libc_handle = ctypes.CDLL("libc.so.6", use_errno=True)
    return _libc_handle


def _flag_names(flags: int) -> str:
    return "|".join(name for bit, name in _NAMES.items() if flags & bit) or hex(flags)


def _check(result: int, call: str) -> None:
    if result != 0:
        import ctypes

        errno = ctypes.get_errno()
        raise OSError(errno, f"{call}: {os.strerror(errno)}")


def setns(fd: int, nstype: int, what: str = "") -> None:
    """Move the calling thread into the namespace that ``fd`` refers to."""
    _check(_libc().setns(fd, nstype), f"setns({_flag_names(nstype)}){' on ' + what if what else ''}")


def unshare(flags: int) -> None:
    _check(_libc().unshare(flags), f"unshare({_flag_names(flags)})")


def mount(source: str | None, target: str, fstype: str | None, flags: int = 0, data: str | None = None) -> None:
    import ctypes

    enc = lambda s: None if s is None else os.fsencode(s)  # noqa: E731
    _check(_libc().mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)),
           f"mount({source!r} on {target!r}, type {fstype!r})")


def umount2(target: str, flags: int = 0) -> None:
    _check(_libc().umount2(os.fsencode(target), flags), f"umount2({target!r})")


def pivot_root(new_root: str, put_old: str) -> None:
    # glibc has no wrapper for pivot_root: call it by number (x86_64: 155, aarch64: 41).
    number = {"x86_64": 155, "aarch64": 41}.get(os.uname().machine)
    if number is None:
        raise OSError(38, f"pivot_root: unknown syscall number on {os.uname().machine}")
    _check(_libc().syscall(number, os.fsencode(new_root), os.fsencode(put_old)),
           f"pivot_root({new_root!r}, {put_old!r})")


def sethostname(name: str) -> None:
    raw = name.encode()
    _check(_libc().sethostname(raw, len(raw)), f"sethostname({name!r})")


PR_SET_PDEATHSIG = 1


def set_parent_death_signal(signum: int) -> None:
    """Ask the kernel to send ``signum`` to the caller when its parent thread exits.

    prctl(PR_SET_PDEATHSIG) is cleared in the child of a fork(), so each
    process that wants it sets it for itself.
    """
    import ctypes

    _check(_libc().prctl(PR_SET_PDEATHSIG, ctypes.c_ulong(signum), ctypes.c_ulong(0), ctypes.c_ulong(0),
                       ctypes.c_ulong(0)), f"prctl(PR_SET_PDEATHSIG, {signum})")


PR_SET_DUMPABLE = 4
PR_CAPBSET_DROP = 24
CAP_SYS_ADMIN = 21


def drop_bounding_capability(cap: int) -> None:
    """prctl(PR_CAPBSET_DROP): ``cap`` is gone from the bounding set, so no program the caller
    execs afterwards has it, root or not (needs CAP_SETPCAP in the caller's user namespace)."""
    import ctypes

    _check(_libc().prctl(PR_CAPBSET_DROP, ctypes.c_ulong(cap), ctypes.c_ulong(0), ctypes.c_ulong(0),
                       ctypes.c_ulong(0)), f"prctl(PR_CAPBSET_DROP, {cap})")


def maps_host_root(pid: int | str = "self") -> bool:
    """Is uid 0 of the process's user namespace the host's uid 0 (its uid_map, read from the
    host's side or its own, has "0 0 ...")? Then what its root may do in its own namespaces
    reaches host root's files and settings."""
    with open(f"/proc/{pid}/uid_map") as f:
        return any(line.split()[:2] == ["0", "0"] for line in f)


def set_dumpable(flag: bool) -> None:
    """prctl(PR_SET_DUMPABLE): a process that is not dumpable cannot be ptrace()d by its own
    uid, and its /proc/PID files belong to root. execve() sets the flag again for the new program."""
    import ctypes

    _check(_libc().prctl(PR_SET_DUMPABLE, ctypes.c_ulong(int(flag)), ctypes.c_ulong(0), ctypes.c_ulong(0),
                       ctypes.c_ulong(0)), f"prctl(PR_SET_DUMPABLE, {int(flag)})")
