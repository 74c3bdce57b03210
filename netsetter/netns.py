"""Expose and hide a process's netns under /var/run/netns, as netsetter.sh does.

`ip netns exec NAME` opens /var/run/netns/NAME; the script makes that name
exist for a pid with a symlink to /proc/PID/ns/net, and removes it at the end.
Both backends use these functions: the entry is a file, not a netlink object.
"""

from __future__ import annotations

import os

from .errors import OpError

NETNS_RUN_DIR = "/var/run/netns"


def entry_path(name: str) -> str:
    return os.path.join(NETNS_RUN_DIR, name)


def expose(pid: int) -> str:
    """Create /var/run/netns/PID -> /proc/PID/ns/net and return what was done.

    Unlike the script's ``[ -f ]`` test, which misses a symlink and so lets
    ``ln -s`` fail on a stale entry, a stale symlink is replaced. A named netns
    of that name (a bind mount made by ``ip netns add``) is never touched.
    """
    path = entry_path(str(pid))
    target = f"/proc/{pid}/ns/net"
    try:
        os.makedirs(NETNS_RUN_DIR, exist_ok=True)
    except OSError as exc:
        raise OpError("create directory", NETNS_RUN_DIR, exc.strerror or str(exc), exc.errno) from None
    replaced = ""
    if os.path.islink(path):
        replaced = f" (replaced a stale entry -> {os.readlink(path)})"
        os.unlink(path)
    elif os.path.lexists(path):
        raise OpError("expose netns", path,
                      "a named network namespace of that name exists (made by `ip netns add`); "
                      "remove it with `ip netns del` or choose another process")
    try:
        os.symlink(target, path)
    except OSError as exc:
        raise OpError("expose netns", path, exc.strerror or str(exc), exc.errno) from None
    return f"netns: {pid}{replaced}"


def hide(pid: int) -> str:
    """Remove the entry made by :func:`expose`; a missing entry is fine."""
    path = entry_path(str(pid))
    if not os.path.islink(path):
        return "nothing to hide" if not os.path.lexists(path) else f"{path} is not ours; left alone"
    try:
        os.unlink(path)
    except FileNotFoundError:
        return "nothing to hide"
    except OSError as exc:
        raise OpError("hide netns", path, exc.strerror or str(exc), exc.errno) from None
    return f"removed {path}"
