"""Make a directory the container's /, in the container's own mount namespace.

    make every mount private       nothing we mount propagates to the host
    bind the root onto itself      pivot_root() needs a mount point
    mount /proc                    a procfs of the container's PID namespace
    mount /dev                     a tmpfs with null, zero, random, urandom, tty bound in
    guard /proc                    the OCI runtime spec's defaults, as runc and crun apply them:
                                   read-only  sys sysrq-trigger irq bus fs
                                   masked     kcore keys timer_list sched_debug latency_stats
                                              timer_stats acpi scsi (/dev/null over a file,
                                              an empty read-only tmpfs over a directory)
    pivot_root, detach the old /   the host's tree is gone, not just hidden

Run by the container's PID 1 (see init.py): a procfs shows the PID namespace
of the process that mounts it.
"""

from __future__ import annotations

import os
from pathlib import Path

from nskit import syscalls
from nskit.syscalls import (MNT_DETACH, MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_PRIVATE, MS_RDONLY, MS_REC,
                            MS_REMOUNT)

from .errors import Failed

DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
# /proc/sys holds the kernel's global settings (core_pattern, printk, ...), writable
# by whoever owns the file on the host; the others reach hardware and filesystems.
READ_ONLY = ("sys", "sysrq-trigger", "irq", "bus", "fs")
# What the kernel tells of its memory, its keys, its timers and its devices.
MASKED = ("kcore", "keys", "timer_list", "sched_debug", "latency_stats", "timer_stats", "acpi", "scsi")
PROC_FLAGS = MS_NOSUID | MS_NODEV | MS_NOEXEC
DEV_LINKS = {"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1",
             "stderr": "/proc/self/fd/2"}


def enter(root: Path) -> None:
    """Make ``root`` this process's /, with fresh /proc and /dev; the host's tree is detached."""
    make_private()
    bind_onto_itself(root)
    # procfs before the old root goes: in a user namespace the kernel mounts a new
    # procfs only where one is already fully visible (fs/namespace.c, mount_too_revealing).
    mount_proc(root / "proc")
    mount_dev(root / "dev")
    guard_proc(root / "proc")
    pivot(root)


def make_private() -> None:
    # A new mount namespace starts with copies of the host's mounts, and a copy
    # of a shared mount still propagates mount events to the host (systemd makes
    # / shared). MS_PRIVATE|MS_REC cuts that for every mount. pivot_root() also
    # refuses a shared parent mount.
    _mount(None, "/", None, MS_REC | MS_PRIVATE, verb="make private", what="/")


def bind_onto_itself(root: Path) -> None:
    # pivot_root() needs new_root to be a mount point; a directory bound onto
    # itself is one. MS_REC keeps mounts already under it.
    _mount(str(root), str(root), None, MS_BIND | MS_REC, verb="bind-mount", what=root)


def mount_proc(target: Path) -> None:
    _mount_point(target)
    _mount("proc", str(target), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, verb="mount proc on", what=target)


def guard_proc(proc: Path) -> None:
    """Make /proc's dangerous parts read-only or blank; what this kernel lacks is skipped.

    A read-only bind: bind the path onto itself, then remount that bind
    MS_RDONLY (a bind mount takes no flags of its own on the first call). The
    procfs's own flags are repeated in the remount: in a user namespace, a
    remount that would drop one fails with EPERM.

    These are a first wall, not the last: the container's root owns its mount
    namespace and can unmount them, as it could in runc with CAP_SYS_ADMIN.
    Under the unprivileged mapping (idmap.py) what lies beneath is the host
    root's, and stays out of its reach: EACCES instead of EROFS.
    """
    for name in READ_ONLY:
        path = proc / name
        if os.path.lexists(path):
            _mount(str(path), str(path), None, MS_BIND | MS_REC, verb="bind-mount", what=path)
            _mount(None, str(path), None, MS_REMOUNT | MS_BIND | MS_RDONLY | PROC_FLAGS,
                   verb="make read-only", what=path)
    for name in MASKED:
        path = proc / name
        if os.path.isdir(path) and not os.path.islink(path):
            _mount("tmpfs", str(path), "tmpfs", MS_RDONLY | PROC_FLAGS, "size=4k,mode=555", verb="mask", what=path)
        elif os.path.lexists(path):
            _mount("/dev/null", str(path), None, MS_BIND, verb="mask", what=path)


def mount_dev(target: Path) -> None:
    """A tmpfs with the host's harmless devices bound onto empty files.

    mknod() needs CAP_MKNOD in the initial user namespace, which no process in
    a user namespace has, root or not. A bind mount of the host's node works:
    the device is the same inode, with the flags of the host's /dev mount.
    """
    _mount_point(target)
    _mount("tmpfs", str(target), "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=755,size=64k",
           verb="mount tmpfs on", what=target)
    for name in DEVICES:
        node = target / name
        try:
            os.close(os.open(node, os.O_CREAT | os.O_WRONLY, 0o666))
        except OSError as exc:
            raise Failed("create", node, exc) from None
        _mount(f"/dev/{name}", str(node), None, MS_BIND, verb=f"bind /dev/{name} onto", what=node)
    for name, points_to in DEV_LINKS.items():
        try:
            os.symlink(points_to, target / name)
        except OSError as exc:
            raise Failed("create link", target / name, exc) from None


def pivot(root: Path) -> None:
    """Swap / for ``root`` and detach the old one.

    pivot_root(".", ".") stacks the old root on top of the new one at the same
    place (pivot_root(2), NOTES): no directory for the old root is needed in
    ``root``, and umount2(".", MNT_DETACH) then takes it off. Detaching, not
    just chroot-ing, is what makes host paths unreachable: nothing in this
    mount namespace refers to the host's tree any more.
    """
    try:
        os.chdir(root)
        syscalls.pivot_root(".", ".")
        syscalls.umount2(".", MNT_DETACH)
        os.chdir("/")
    except OSError as exc:
        raise Failed("pivot into", root, exc) from None


def _mount_point(path: Path) -> None:
    """A directory to mount on: made if the root filesystem lacks it.

    mount() follows symbolic links in its target, and before pivot_root an
    absolute link would lead into the host's tree: a link is refused.
    """
    if path.is_symlink():
        raise Failed("use mount point", path, "it is a symbolic link")
    try:
        path.mkdir(exist_ok=True)
    except OSError as exc:
        raise Failed("create mount point", path, exc) from None
    if not path.is_dir():
        raise Failed("use mount point", path, "it is not a directory")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None, *,
           verb: str, what: object) -> None:
    try:
        syscalls.mount(source, target, fstype, flags, data)
    except OSError as exc:
        raise Failed(verb, what, exc) from None
