"""The container's network namespace, as CNI_NETNS gives it: a path, held by an fd.

Runtimes pass different paths: podman and `ip netns add` a bind mount under
/run/netns (/var/run is a link to /run), containerd /proc/PID/ns/net. The
plugin opens that path once, checks what it opened, and from then on reaches
the namespace only through that fd, as /proc/<plugin's pid>/fd/<fd>
(:func:`opened`): the backends take a netns path wherever they take a name
under /var/run/netns. Nothing is named under /var/run/netns, so nothing can
outlive a run that is killed, and a path swapped meanwhile (a pid reused, a
mount replaced) cannot steer the plugin into another namespace.

Before anything changes, the path must be a network namespace other than the
plugin's own and the machine's initial one: "configuring" the host as a
container would put the container's address and default route on the host,
and DEL would delete a host link.
"""

from __future__ import annotations

import os
import stat
from contextlib import contextmanager

from nskit.netns import INITIAL_NETNS, is_initial_netns, is_own_netns, ns_type
from nskit.syscalls import CLONE_NEWNET

from .errors import INVALID_ENVIRONMENT, IO_FAILURE, UNKNOWN_CONTAINER, CniError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~5 ms a CNI call)
if TYPE_CHECKING:
    from typing import Iterator


def state(path: str) -> str:
    """"netns" for another network namespace; "missing" when the path is gone or is no
    namespace (a runtime's stale mount point); raises for the plugin's own netns."""
    fd = _open(path)
    if fd is None:
        return "missing"
    os.close(fd)
    return "netns"


def _open(path: str) -> int | None:
    """An fd of the network namespace at ``path``, checked; None when it is gone or no namespace."""
    try:
        fd = _open_regular(path)
    except FileNotFoundError:
        return None
    except PermissionError:
        if os.path.normpath(path) == INITIAL_NETNS:  # an init the kernel keeps out of reach, even of root
            raise _initial(path) from None
        raise CniError(IO_FAILURE, f'failed to open netns "{path}": permission denied') from None
    except OSError as exc:
        raise CniError(IO_FAILURE, f'failed to open netns "{path}": {exc.strerror}') from None
    try:
        kind = ns_type(fd)
        if kind is None:
            os.close(fd)
            return None
        if kind != CLONE_NEWNET:
            raise CniError(INVALID_ENVIRONMENT, f"invalid CNI_NETNS {path!r}: a namespace, but not a network one")
        st = os.fstat(fd)
        if is_initial_netns(st):
            raise _initial(path)
        if is_own_netns(st):
            raise CniError(INVALID_ENVIRONMENT, f"invalid CNI_NETNS {path!r}: it is the plugin's own network "
                           "namespace, the host's; a container needs a netns of its own")
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open_regular(path: str) -> int:
    """``path`` opened for reading only if it is a regular file, as every namespace file is.

    A FIFO would block the open until a writer comes (the plugin hung, DEL too), and opening a
    device can act (a tape rewinds, a watchdog arms): the path is first opened with O_PATH,
    which opens nothing, and the very inode found there is reopened through /proc/self/fd.
    Anything else is treated as no namespace (code 3), like a plain file.
    """
    at = os.open(path, os.O_PATH | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(at).st_mode):
            raise FileNotFoundError(path)
        return os.open(f"/proc/self/fd/{at}", os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC)
    finally:
        os.close(at)


def _initial(path: str) -> CniError:
    return CniError(INVALID_ENVIRONMENT, f"invalid CNI_NETNS {path!r}: it is the machine's initial network "
                    "namespace (PID 1's); the plugin never configures it, from wherever it runs",
                    "give the container's own network namespace", exit_status=2)


def require(path: str) -> None:
    """ADD and CHECK need the container: gone is the spec's code 3."""
    if state(path) == "missing":
        raise _missing(path)


def _missing(path: str) -> CniError:
    return CniError(UNKNOWN_CONTAINER, f'failed to open netns "{path}": no such network namespace',
                    "the container is gone (or was never started)")


@contextmanager
def opened(path: str) -> Iterator[str]:
    """The namespace at ``path`` as /proc/<pid>/fd/<fd> while the block runs: the very
    namespace checked here, whatever ``path`` comes to name meanwhile. Gone: code 3."""
    fd = _open(path)
    if fd is None:
        raise _missing(path)
    try:
        yield f"/proc/{os.getpid()}/fd/{fd}"
    finally:
        os.close(fd)
