"""The child: forked by runner, it makes the container's namespaces and forks its PID 1.

    close inherited descriptors                fds.py: only 0-2, --preserve-fds and the channel stay
    mount the root, if runner is root          layer.py: in a mount namespace of the host's root
    unshare(user, mount, uts, ipc, pid, net)   -> UNSHARED
    wait for MAPPED                            (the parent writes our id maps)
    become the container's root                setgroups([]), setresgid(0), setresuid(0) in a range map
    mount the root, if runner is not root      layer.py: as the user, in the container's mount namespace
    fork init                                  PID 1 of the new PID namespace
    wait for init, passing signals on; exit with its status

unshare(CLONE_NEWPID) does not move the caller: its children are born in the
new PID namespace, the first one as PID 1. So the child stays outside and
forks. It also anchors the namespaces for the parent: netsetter configures
the netns of the child's pid, which the parent knows from fork().
"""

from __future__ import annotations

import errno
import os
import signal

from nskit import syscalls
from nskit.errors import ExitStatus

from . import fds, init, signals
from .channel import Channel, Message
from .deadline import Deadline
from .errors import Failed
from .trace import Trace

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~3 ms a start)
if TYPE_CHECKING:
    from typing import NoReturn

    from .idmap import Mapping
    from .layer import Layer
    from .spec import Spec

NAMESPACES = (syscalls.CLONE_NEWUSER | syscalls.CLONE_NEWNS | syscalls.CLONE_NEWUTS | syscalls.CLONE_NEWIPC
              | syscalls.CLONE_NEWPID | syscalls.CLONE_NEWNET)


def run(spec: "Spec", layer: "Layer", mapping: "Mapping", chan: Channel, parent: int,
        deadline: Deadline) -> NoReturn:
    """The forked child's whole life. It never returns into the parent's code:
    it leaves with os._exit(), which skips the parent's `finally` blocks and atexit."""
    status: int = ExitStatus.CANNOT_START
    try:
        status = _run(spec, layer, mapping, chan, parent, deadline)
    except BaseException as exc:  # noqa: BLE001 - whatever it is, the parent must hear of it
        chan.send_error(exc)
    finally:
        os._exit(status)


def _run(spec: "Spec", layer: "Layer", mapping: "Mapping", chan: Channel, parent: int, deadline: Deadline) -> int:
    trace = Trace(spec.verbose, spec.started)
    # If runner dies, even by SIGKILL, the kernel kills us; init does the same
    # with us, and when init dies, the kernel kills its whole PID namespace.
    syscalls.set_parent_death_signal(signal.SIGKILL)
    if os.getppid() != parent:  # runner died before prctl() took effect
        return ExitStatus.CANNOT_START
    layer.close_lock()
    fds.close_all_but(fds.preserved(spec.preserve_fds) | {chan.sock.fileno()})
    privileged = os.geteuid() == 0
    if privileged:
        layer.mount_in_own_namespace()
    unshare()
    trace("child", f"pid {os.getpid()}: unshared user, mount, uts, ipc, pid and net namespaces")
    chan.send(Message.UNSHARED)
    chan.wait_for(Message.MAPPED, deadline)
    if mapping.unprivileged:
        become_root()
        # A change of credentials clears the parent-death signal (prctl(2)): set it again.
        syscalls.set_parent_death_signal(signal.SIGKILL)
        if os.getppid() != parent:
            return ExitStatus.CANNOT_START
    if not privileged:
        layer.mount()
    pid = os.fork()
    if pid == 0:
        init.run(spec, layer.root, chan, deadline, layer.image if layer.in_place else None)
    chan.close()  # init talks from here on
    trace("child", f"forked init: pid {pid} here, 1 in the container")
    return signals.exit_code(signals.supervise(pid))


def become_root() -> None:
    """Take the container's root ids, in a range map: the child is still the host's root,
    which the map leaves out (it shows as 65534). The host's supplementary groups go
    first: unmapped, they would still grant what they grant on the host (root's group 0)."""
    try:
        os.setgroups([])
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
    except OSError as exc:
        raise Failed("become root of", "the container's user namespace", exc) from None


def unshare() -> None:
    try:
        syscalls.unshare(NAMESPACES)
    except OSError as exc:
        cause = exc.strerror or str(exc)
        if exc.errno in (errno.EPERM, errno.ENOSPC, errno.EUSERS) and os.geteuid() != 0:
            cause += ("; unprivileged user namespaces may be off here (sysctls "
                      "kernel.unprivileged_userns_clone, user.max_user_namespaces)")
        raise Failed("create namespaces", "user mount uts ipc pid net", cause) from None
