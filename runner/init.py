"""The container's PID 1: it prepares the inside, then runs the command and reaps.

    set the hostname                 in the container's UTS namespace only
    make the root filesystem /       mounts.py (procfs needs a process of the new PID namespace)
    bring lo up                      with --no-net; netsetter does it otherwise
    wait for NETWORK_READY           the parent configured the network, or gave up
    fork + exec the command          PID 2, in a clean environment
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
from typing import TYPE_CHECKING, NoReturn

from nskit import syscalls

from . import loopback, mounts, signals
from .channel import Channel, Message
from .deadline import Deadline
from .errors import ExitStatus, Failed
from .trace import Trace

if TYPE_CHECKING:
    from pathlib import Path

    from .spec import Spec


def run(spec: "Spec", root: "Path", chan: Channel, deadline: Deadline) -> NoReturn:
    status: int = ExitStatus.FAILED
    try:
        status = _run(spec, root, chan, deadline)
    except BaseException as exc:  # noqa: BLE001 - whatever it is, the parent must hear of it
        chan.send_error(exc)
    finally:
        os._exit(status)


def _run(spec: "Spec", root: "Path", chan: Channel, deadline: Deadline) -> int:
    trace = Trace(spec.verbose, spec.started)
    # The child could only die before this line if runner died too; then the
    # channel's other end is closed and the wait below fails at once.
    syscalls.set_parent_death_signal(signal.SIGKILL)
    try:
        syscalls.sethostname(spec.hostname)
    except OSError as exc:
        raise Failed("set hostname", spec.hostname, exc) from None
    mounts.enter(root)
    trace("init", f"pid {os.getpid()}: root is {root}, /proc and /dev mounted, old root detached")
    if spec.net is None:
        loopback.up()
    chan.wait_for(Message.NETWORK_READY, deadline)
    pid = spawn(spec.command, spec.env, chan)
    trace("init", f"started {spec.command[0]} as pid {pid}")
    chan.send(Message.STARTED, pid)
    status = signals.supervise(pid)
    chan.send(Message.EXITED, status)
    return signals.exit_code(status)


def spawn(argv: tuple[str, ...], env: dict[str, str], chan: Channel) -> int:
    """Fork and exec the command; an exec failure is sent as ERROR, with 126 or 127 as its status."""
    pid = os.fork()
    if pid:
        return pid
    status = ExitStatus.FAILED
    try:
        signals.reset_for_exec()
        # execvpe() searches the container's PATH, from `env`; the channel is
        # close-on-exec, so the command does not inherit it.
        os.execvpe(argv[0], argv, env)
    except OSError as exc:
        status = ExitStatus.NOT_FOUND if exc.errno == errno.ENOENT else ExitStatus.CANNOT_EXECUTE
        chan.send_error(Failed("execute", argv[0], exc))
    finally:
        os._exit(status)
