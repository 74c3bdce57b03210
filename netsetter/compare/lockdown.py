"""The system calls that take a process's reach away, for the jail (jail.py).

Python 3.11's ``os`` module lacks them; each goes through ctypes and raises
:class:`OSError` naming the call, as :mod:`netsetter.syscalls` does.

- ``no_new_privs``: execve() never grants privileges again (no set-user-ID
  binary, no file capability), for this process and all it starts;
- ``not_dumpable``: no ptrace(), no /proc/PID/mem or /proc/PID/fd of this
  process for anything in the jail;
- ``new_session_keyring``: the caller's session keyring (root's keys, if any)
  is replaced by an empty one, since possessing a keyring grants its keys;
- ``make_read_only``: mount_setattr(AT_RECURSIVE) makes a whole mount tree
  read-only and nosuid in one call;
- ``reset_signals``: the signal state of a freshly started program.
"""

from __future__ import annotations

import ctypes
import os
import signal

PR_SET_DUMPABLE = 4
PR_SET_NO_NEW_PRIVS = 38
KEYCTL_JOIN_SESSION_KEYRING = 1
AT_FDCWD = -100
AT_RECURSIVE = 0x8000
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2

# syscall numbers glibc has no wrapper for
_SYSCALLS = {"x86_64": {"keyctl": 250, "mount_setattr": 442},
             "aarch64": {"keyctl": 219, "mount_setattr": 442}}

_libc = ctypes.CDLL("libc.so.6", use_errno=True)  # by soname: find_library would fork ldconfig
_libc.syscall.restype = ctypes.c_long


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def _check(result: int, call: str) -> None:
    if result < 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{call}: {os.strerror(errno)}")


def _number(name: str) -> int:
    try:
        return _SYSCALLS[os.uname().machine][name]
    except KeyError:
        raise OSError(38, f"{name}: unknown syscall number on {os.uname().machine}") from None


def _prctl(option: int, value: int, call: str) -> None:
    zero = ctypes.c_ulong(0)
    _check(_libc.prctl(option, ctypes.c_ulong(value), zero, zero, zero), call)


def no_new_privs() -> None:
    _prctl(PR_SET_NO_NEW_PRIVS, 1, "prctl(PR_SET_NO_NEW_PRIVS)")


def not_dumpable() -> None:
    _prctl(PR_SET_DUMPABLE, 0, "prctl(PR_SET_DUMPABLE, 0)")


def new_session_keyring() -> None:
    _check(_libc.syscall(_number("keyctl"), KEYCTL_JOIN_SESSION_KEYRING, None),
           "keyctl(KEYCTL_JOIN_SESSION_KEYRING)")


def make_read_only(path: str) -> None:
    """Make the mount at ``path`` and every mount under it read-only and nosuid."""
    attr = _MountAttr(attr_set=MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID)
    _check(_libc.syscall(_number("mount_setattr"), AT_FDCWD, os.fsencode(path), AT_RECURSIVE,
                         ctypes.byref(attr), ctypes.sizeof(attr)), f"mount_setattr({path!r}, AT_RECURSIVE, RDONLY)")


def reset_signals() -> None:
    """Default dispositions and an empty mask: what a new program expects, and
    nothing of the Python handlers a forked child inherits (SIGINT raising
    KeyboardInterrupt into the parent's code, SIGPIPE ignored across execve())."""
    for signum in range(1, signal.NSIG):
        if signum in (signal.SIGKILL, signal.SIGSTOP):
            continue
        try:
            signal.signal(signum, signal.SIG_DFL)
        except (OSError, ValueError):
            pass  # the real-time signals glibc keeps for itself
    signal.pthread_sigmask(signal.SIG_SETMASK, ())
