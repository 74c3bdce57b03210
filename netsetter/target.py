"""Checks made before any change: the target pid, its netns, our privileges."""

from __future__ import annotations

import os
from nskit.errors import UsageError
from nskit.netns import foreign_entry, is_initial_netns, is_own_netns, pid_netns
from nskit.record import Record

from .errors import PreflightError, TargetRefused

CAP_NET_ADMIN = 12
CAP_SYS_ADMIN = 21  # setns() into the container's netns, as `ip netns exec` does


class Target(Record):
    """A live process whose network namespace is not the caller's. Read-only: a Record,
    not a frozen dataclass (dataclasses costs ~10 ms to import)."""

    __slots__ = ("pid", "netns_inode")

    def __init__(self, pid: int, netns_inode: int) -> None:
        self.pid = pid
        self.netns_inode = netns_inode

    @property
    def netns_path(self) -> str:
        return pid_netns(self.pid)

    def alive(self) -> bool:
        """Is the pid still this process (and not gone, or reused by another)?"""
        try:
            return os.stat(self.netns_path).st_ino == self.netns_inode
        except OSError:
            return False


def parse_pid(value: object) -> int:
    text = str(value).strip()
    digits = text[1:] if text.startswith("-") else text
    # ASCII digits only: str.isdigit() and int() also take "²" and Arabic-Indic digits.
    if not digits or not (digits.isascii() and digits.isdigit()):
        raise UsageError("pid", value, "is not a number (ASCII digits 0-9)")
    pid = int(text)
    if pid <= 0:
        raise UsageError("pid", value, "must be a positive process id")
    return pid


def resolve_target(value: object) -> Target:
    """The pid as a :class:`Target`, or an error that says why it cannot be one."""
    pid = parse_pid(value)
    path = pid_netns(pid)
    try:
        theirs = os.stat(path)
    except FileNotFoundError:
        raise PreflightError(f"no process with pid {pid}: {path} does not exist") from None
    except PermissionError:
        if pid == 1:
            raise TargetRefused("pid 1 is the machine's init, in the machine's initial network namespace: "
                                "netsetter never configures it; give the pid of a process in its own "
                                "network namespace (for example one started with `unshare --net`)") from None
        hint = "run as root" if os.geteuid() != 0 else "the kernel refuses ptrace-level access to that process"
        raise PreflightError(f"cannot read {path}: permission denied ({hint})") from None
    if is_initial_netns(theirs):
        raise TargetRefused(
            f"pid {pid} lives in the machine's initial network namespace (PID 1's, net:[{theirs.st_ino}]): "
            f"netsetter never configures it, from wherever it runs; give the pid of a process in its "
            f"own network namespace (for example one started with `unshare --net`)")
    if is_own_netns(theirs):
        who = "is netsetter itself" if pid == os.getpid() else "shares netsetter's network namespace"
        raise PreflightError(
            f"pid {pid} {who} (net:[{theirs.st_ino}]): configuring it would put a default route "
            f"on this host; give the pid of a process in its own network namespace "
            f"(for example one started with `unshare --net`)")
    other = foreign_entry(pid)
    if other is not None:
        raise PreflightError(f"cannot reach the netns of pid {pid} by its name: {other}, and `ip` would "
                             "follow it into that namespace; netsetter leaves it alone: remove it if it "
                             "is stale, or let its owner do so")
    return Target(pid=pid, netns_inode=theirs.st_ino)


def effective_caps() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    return 0


def check_privileges() -> None:
    caps = effective_caps()
    missing = [name for bit, name in ((CAP_NET_ADMIN, "CAP_NET_ADMIN"), (CAP_SYS_ADMIN, "CAP_SYS_ADMIN"))
               if not caps >> bit & 1]
    if missing:
        raise PreflightError(f"netsetter needs {' and '.join(missing)} to configure links and enter "
                             f"network namespaces; run it as root (for example with sudo)")
