"""The container's network namespace, as CNI_NETNS gives it: a path.

Runtimes pass different paths: podman and `ip netns add` a bind mount under
/run/netns (/var/run is a link to /run), containerd /proc/PID/ns/net. The
backends name a netns the way `ip netns exec` does, by its entry under
/var/run/netns (iproute2's ``-n`` and ``netns exec`` refuse a path), so:

- a path that is an entry of /var/run/netns is used by its name;
- any other path gets an alias for the length of the command: a symlink
  /var/run/netns/netsetter-cni-<digest> -> CNI_NETNS, removed at the end,
  also on failure (netsetter.sh does the same for /proc/PID/ns/net).

Before anything changes, the path must be a network namespace other than the
plugin's own: "configuring" the host as a container would put the container's
address and default route on the host, and DEL would delete a host link.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

from nskit.netns import INITIAL_NETNS, NETNS_RUN_DIR, entry_path, is_initial_netns, is_own_netns, ns_type, same_netns
from nskit.syscalls import CLONE_NEWNET

from .errors import INVALID_ENVIRONMENT, IO_FAILURE, UNKNOWN_CONTAINER, CniError


def state(path: str) -> str:
    """"netns" for another network namespace; "missing" when the path is gone or is no
    namespace (a runtime's stale mount point); raises for the plugin's own netns."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return "missing"
    except PermissionError:
        if os.path.normpath(path) == INITIAL_NETNS:  # an init the kernel keeps out of reach, even of root
            raise _initial(path) from None
        raise CniError(IO_FAILURE, f'failed to open netns "{path}": permission denied') from None
    except OSError as exc:
        raise CniError(IO_FAILURE, f'failed to open netns "{path}": {exc.strerror}') from None
    try:
        kind = ns_type(fd)
        if kind is None:
            return "missing"
        if kind != CLONE_NEWNET:
            raise CniError(INVALID_ENVIRONMENT, f"invalid CNI_NETNS {path!r}: a namespace, but not a network one")
        if is_initial_netns(os.fstat(fd)):
            raise _initial(path)
        if is_own_netns(os.fstat(fd)):
            raise CniError(INVALID_ENVIRONMENT, f"invalid CNI_NETNS {path!r}: it is the plugin's own network "
                           "namespace, the host's; a container needs a netns of its own")
        return "netns"
    finally:
        os.close(fd)


def _initial(path: str) -> CniError:
    return CniError(INVALID_ENVIRONMENT, f"invalid CNI_NETNS {path!r}: it is the machine's initial network "
                    "namespace (PID 1's); the plugin never configures it, from wherever it runs",
                    "give the container's own network namespace", exit_status=2)


def require(path: str) -> None:
    """ADD and CHECK need the container: gone is the spec's code 3."""
    if state(path) == "missing":
        raise CniError(UNKNOWN_CONTAINER, f'failed to open netns "{path}": no such network namespace',
                       "the container is gone (or was never started)")


@contextmanager
def named(path: str, alias: str) -> Iterator[str]:
    """The name of ``path`` under /var/run/netns while the block runs (see the module's docstring)."""
    name = os.path.basename(path)
    if os.path.dirname(path) in (NETNS_RUN_DIR, "/run/netns") and same_netns(path, entry_path(name)):
        yield name
        return
    link = entry_path(alias)
    try:
        os.makedirs(NETNS_RUN_DIR, exist_ok=True)
        if os.path.islink(link):  # left by a run that was killed: ours, by its name
            os.unlink(link)
        os.symlink(path, link)
    except OSError as exc:
        raise CniError(IO_FAILURE, f'failed to expose netns "{path}" as "{link}": {exc.strerror}') from None
    try:
        yield alias
    finally:
        try:
            os.unlink(link)
        except FileNotFoundError:
            pass

