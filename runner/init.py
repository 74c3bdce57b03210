"""The container's PID 1: it prepares the inside, then runs the command and reaps.

    not dumpable                     the command, same uid, cannot ptrace init nor open /proc/1/fd
    set the hostname                 in the container's UTS namespace only
    make the root filesystem /       mounts.py (procfs needs a process of the new PID namespace)
    bring lo up                      with --no-net; netsetter does it otherwise
    wait for NETWORK_READY           the parent configured the network, or gave up
    fork + exec the command          PID 2, in a clean environment, with descriptors 0-2 and
                                     --preserve-fds only (fds.py)
    reap every child; when the command ends: EXITED <status>, and exit

Why a PID 1 of our own rather than the command itself: the kernel delivers
to a namespace's init only the signals it has a handler for, so a shell as
PID 1 would not die of the SIGTERM runner passes on; and every orphan in the
namespace is re-parented to PID 1, so a command that never wait()s would
leave zombies. This init handles both (signals.supervise). When it exits,
the kernel kills every process left in the namespace.

After pivot_root the host's files, Python's own modules included, are out
of reach: everything this process runs is imported before the fork.
"""

from __future__ import annotations

import errno
import os
import signal

from nskit import syscalls
from nskit.errors import ExitStatus

from . import fds, loopback, mounts, signals
from .channel import Channel, Message
from .deadline import Deadline
from .errors import Failed
from .trace import Trace

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~3 ms a start)
if TYPE_CHECKING:
    from typing import NoReturn

    from pathlib import Path

    from .spec import Spec


def run(spec: "Spec", root: "Path", chan: Channel, deadline: Deadline, shown: "Path | None" = None) -> NoReturn:
    """``shown``: the directory the user gave, bound onto ``root``, to name in errors."""
    status: int = ExitStatus.CANNOT_START
    try:
        status = _run(spec, root, chan, deadline, shown)
    except BaseException as exc:  # noqa: BLE001 - whatever it is, the parent must hear of it
        chan.send_error(exc)
    finally:
        os._exit(status)


def _run(spec: "Spec", root: "Path", chan: Channel, deadline: Deadline, shown: "Path | None") -> int:
    trace = Trace(spec.verbose, spec.started)
    # The child could only die before this line if runner died too; then the
    # channel's other end is closed and the wait below fails at once.
    syscalls.set_parent_death_signal(signal.SIGKILL)
    syscalls.set_dumpable(False)
    try:
        syscalls.sethostname(spec.hostname)
    except OSError as exc:
        raise Failed("set hostname", spec.hostname, exc) from None
    try:
        mounts.enter(root)
    except Failed as exc:
        if shown is None or not exc.obj.startswith(str(root)):
            raise
        raise Failed(exc.verb, str(shown) + exc.obj[len(str(root)):], exc.cause) from None
    trace("init", f"pid {os.getpid()}: root is {root}, /proc and /dev mounted, old root detached")
    if spec.net is None:
        loopback.up()
    chan.wait_for(Message.NETWORK_READY, deadline)
    pid = spawn(spec.command, spec.env, chan, spec.preserve_fds)
    trace("init", f"started {spec.command[0]} as pid {pid}")
    chan.send(Message.STARTED, pid)
    status = signals.supervise(pid)
    chan.send(Message.EXITED, status)
    return signals.exit_code(status)


def spawn(argv: tuple[str, ...], env: dict[str, str], chan: Channel, preserve_fds: int = 0) -> int:
    """Fork and exec the command; an exec failure is sent as ERROR, with 126 or 127 as its status."""
    pid = os.fork()
    if pid:
        return pid
    status = ExitStatus.CANNOT_START
    try:
        signals.reset_for_exec()
        # What the child left open is closed again here (fds.py); the channel is
        # close-on-exec, kept only to report a failed execve(). execvpe()
        # searches the container's PATH, from `env`.
        fds.close_all_but(fds.preserved(preserve_fds) | {chan.sock.fileno()})
        drop_mount_power()
        os.execvpe(argv[0], argv, env)
    except OSError as exc:
        status = ExitStatus.NOT_FOUND if exc.errno == errno.ENOENT else ExitStatus.CANNOT_EXECUTE
        chan.send_error(Failed("execute", argv[0], exc))
    finally:
        os._exit(status)


def drop_mount_power() -> None:
    """Container root that is host root (--map-root-to-caller, as root) loses CAP_SYS_ADMIN.

    The masks and read-only mounts of /proc (mounts.py) are made by init inside the container's
    user namespace, so they are not locked: with CAP_SYS_ADMIN there, the command could
    `mount -o remount,rw /proc/sys` or mount a proc of its own, and as host root write
    kernel.core_pattern, whose pipe the host's kernel runs as root. Without it, it can neither
    mount, unmount nor remount. Under the default mapping container root is nobody on the host,
    and keeps every capability in its namespace (a sysctl of the host refuses it anyway).
    """
    if syscalls.maps_host_root():
        syscalls.drop_bounding_capability(syscalls.CAP_SYS_ADMIN)

