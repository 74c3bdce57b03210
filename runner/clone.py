"""One container process, cloned straight into its namespaces: no Python process stays behind.

    supervisor                                   the clone (PID 1 of its PID namespace)
    clone(user, mnt, uts, ipc, pid, net)   ->    waits on the go pipe
    write its uid/gid maps (idmap.py)
    the network's host side (fleetnet.py)
    write GO                               ->    hostname, the network's inside, mounts.py
                                                 (pivot_root); execs the init (catatonit), which execs
    read the error pipe: EOF = exec'd    <-      the command as its child, in a clean environment

`runner start` forks a child that unshares and forks again (child.py), and
both stay Python processes. Here clone(2) with the CLONE_NEW* flags makes the
process that is at once PID 1 of a new PID namespace and the supervisor's own
child; it execs a tiny init, so after start the container is that init (about
0.2 MB) and the command. The init is Debian's static ``catatonit``: it reaps
orphans and passes signals on, what a PID 1 must do (see init.py). It is
opened on the host before pivot_root and run from that descriptor
(execveat), so it need not be in the container's root.

The clone runs Python until it execs, with what was imported before: it
touches no import, no lock that another thread could hold. The error pipe is
close-on-exec: a successful exec closes it with nothing written; a failure
is written as one line and the clone exits 125. PR_SET_PDEATHSIG kills the
clone, and with it its PID namespace, if the supervisor's thread ends.
"""

from __future__ import annotations

import ctypes
import errno
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from nskit import syscalls
from nskit.errors import ExitStatus

from . import idmap, mounts, signals
from .errors import Failed

INIT = "/usr/bin/catatonit"
INIT_PACKAGE = "catatonit"
NAMESPACES = (syscalls.CLONE_NEWUSER | syscalls.CLONE_NEWNS | syscalls.CLONE_NEWUTS | syscalls.CLONE_NEWIPC
              | syscalls.CLONE_NEWPID | syscalls.CLONE_NEWNET)
SYS_CLONE = {"x86_64": 56, "aarch64": 220}
SYS_CLOSE_RANGE = 436  # the same number on every architecture
CLOSE_RANGE_CLOEXEC = 4
GO = b"g"


def init_fd(path: str = INIT) -> int:
    """The init, opened once: every clone execs it from this descriptor."""
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise Failed("find the container init", path, f"not installed; apt-get install {INIT_PACKAGE}") from None
    except OSError as exc:
        raise Failed("open the container init", path, exc) from None


class Clone:
    """The supervisor's handle on one cloned container process, until it has exec'd."""

    def __init__(self, pid: int, go: int, errors: int) -> None:
        self.pid, self._go, self._errors = pid, go, errors

    def release(self, payload: bytes = b"") -> None:
        """Let it go on: mounts, ``inside(payload)``, exec."""
        try:
            # One line of a few bytes: one atomic write into the empty pipe, never blocking. Not EOF:
            # clones made after this one hold copies of its write end until they exec.
            os.write(self._go, GO + payload + b"\n")
        finally:
            os.close(self._go)
            self._go = -1

    def outcome(self) -> str | None:
        """Blocks until it has exec'd (None) or failed (its error line)."""
        chunks = []
        while chunk := os.read(self._errors, 4096):
            chunks.append(chunk)
        os.close(self._errors)
        self._errors = -1
        return b"".join(chunks).decode(errors="replace").strip() or None

    @property
    def errors_fd(self) -> int:
        return self._errors

    def close(self) -> None:
        for fd in (self._go, self._errors):
            if fd >= 0:
                os.close(fd)
        self._go = self._errors = -1


def clone(*, root: Path, argv: tuple[str, ...], env: dict[str, str], hostname: str, init: int | None,
          inside: Callable[[bytes], None], stdio: tuple[int, int, int]) -> Clone:
    """Clone a container process; it waits for :meth:`Clone.release` (the maps and the host side first).

    ``inside`` runs in the clone before its mounts (the network's inside, or lo up);
    ``init`` is :func:`init_fd`'s descriptor, or None to exec the command itself as PID 1.
    """
    number = SYS_CLONE.get(os.uname().machine)
    if number is None:
        raise Failed("clone a container", argv[0], f"no clone(2) number known for {os.uname().machine}")
    go_r, go_w = os.pipe()
    err_r, err_w = os.pipe()  # both close-on-exec (Python's default)
    libc = syscalls._libc()
    pid = libc.syscall(ctypes.c_long(number), ctypes.c_ulong(NAMESPACES | signal.SIGCHLD), ctypes.c_void_p(0),
                       ctypes.c_void_p(0), ctypes.c_void_p(0), ctypes.c_ulong(0))
    if pid == 0:
        os.close(go_w)
        _child(go_r, err_w, root, argv, env, hostname, init, inside, stdio)
    os.close(go_r)
    os.close(err_w)
    if pid < 0:
        code = ctypes.get_errno()
        os.close(go_w)
        os.close(err_r)
        cause = os.strerror(code)
        if code in (errno.ENOSPC, errno.EUSERS):
            cause += " (a namespace limit: user.max_*_namespaces)"
        raise Failed("clone a container for", argv[0], cause)
    return Clone(pid, go_w, err_r)


def map_ids(pid: int) -> None:
    """The container's root is the supervisor's uid and gid, and no other id (idmap.py: the
    article's mapping; a fleet shares the cached image in place, with no layer of its own)."""
    idmap.write_maps(pid, idmap.Mapping(os.getuid(), os.getgid(), 1))


def _child(go: int, errors: int, root: Path, argv: tuple[str, ...], env: dict[str, str], hostname: str,
           init: int | None, inside: Callable[[bytes], None], stdio: tuple[int, int, int]) -> NoReturn:
    status = ExitStatus.CANNOT_START
    try:
        syscalls.set_parent_death_signal(signal.SIGKILL)
        said = b""
        while not said.endswith(b"\n") and (chunk := os.read(go, 4096)):
            said += chunk
        if not said.startswith(GO) or not said.endswith(b"\n"):  # the supervisor gave up on us, or died
            os._exit(status)
        os.close(go)
        os.setsid()  # a terminal's Ctrl-C is the supervisor's to handle, not every container's
        syscalls.sethostname(hostname)
        # The network first: its per-link sysctl is written through the host's /proc, which
        # still shows this netns; the container's own /proc/sys is read-only (mounts.py).
        inside(said[len(GO):-1])
        mounts.enter(root)
        for fd, target in zip(stdio, (0, 1, 2), strict=True):
            if fd != target:
                os.dup2(fd, target)
        syscalls._libc().syscall(ctypes.c_long(SYS_CLOSE_RANGE), ctypes.c_uint(3), ctypes.c_uint(0xFFFFFFFF),
                                 ctypes.c_uint(CLOSE_RANGE_CLOEXEC))
        signals.reset_for_exec()
        if init is None:
            os.execvpe(argv[0], list(argv), env)
        os.execve(init, ["catatonit", "--", *argv], env)
    except BaseException as exc:  # noqa: BLE001 - whatever it is, the supervisor must hear of it
        try:
            if isinstance(exc, OSError) and init is None:
                status = ExitStatus.NOT_FOUND if exc.errno == errno.ENOENT else ExitStatus.CANNOT_EXECUTE
            os.write(errors, f"{exc}\n".encode())
        except BaseException:  # noqa: BLE001
            pass
    finally:
        os._exit(status)
