"""Run a command inside a running container: ``runner exec PID -- CMD``, and ``Container.exec``.

    open /proc/PID/ns/{user,ipc,uts,net,pid,mnt} and /proc/PID/root   (on the host, first)
    setns() into each, the user namespace first                        (full capabilities in it)
    fchdir(root) + chroot(".")                                         the container's /
    fork                                                               setns(CLONE_NEWPID) takes
    the child execs CMD, with the environment of the container's       effect for children only
    process (/proc/PID/environ), in /
    the parent waits and passes the status back (128+N for signal N)

As `nsenter --all --root --wd` or `podman exec` do. PID is any process of the
container seen from the host: a fleet container's init (Container.pid), or a
`runner start` container's command or init. Given a process that made the
namespaces but stayed outside its PID namespace (`runner start`'s child), its
namespaces are taken, and the PID namespace its children are in.

setns() into a user namespace needs a single-threaded caller: ``runner exec``
is one, and Container.exec does it in the child subprocess forks.
"""

from __future__ import annotations

import os

from nskit import syscalls

from . import fds
from .errors import Failed, UsageError

ORDER = (("user", syscalls.CLONE_NEWUSER), ("ipc", syscalls.CLONE_NEWIPC), ("uts", syscalls.CLONE_NEWUTS),
         ("net", syscalls.CLONE_NEWNET), ("pid", syscalls.CLONE_NEWPID), ("mnt", syscalls.CLONE_NEWNS))


class Entry:
    """The open namespaces and root of one container process: opened once, entered in a child."""

    def __init__(self, pid: int) -> None:
        self.pid, self.root = pid, -1
        self.host_root = False
        self.fds: list[tuple[str, int, int]] = []
        base = f"/proc/{pid}"
        try:
            if not os.path.exists(base):
                raise Failed("enter container of pid", pid, "no such process")
            if _same(f"{base}/ns/user", "/proc/self/ns/user"):
                raise Failed("enter container of pid", pid, "it shares runner's user namespace, so it is no "
                             "container; give the pid of a process in a container (Container.pid, or one under `runner start`)")
            pid_ns = f"{base}/ns/pid"
            if _same(pid_ns, "/proc/self/ns/pid"):  # runner start's child: its children are inside
                pid_ns = f"{base}/ns/pid_for_children"
            for name, kind in ORDER:
                path = pid_ns if name == "pid" else f"{base}/ns/{name}"
                self.fds.append((name, kind, os.open(path, os.O_RDONLY | os.O_CLOEXEC)))
            self.root = os.open(f"{base}/root", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            # read from here: inside, /proc is the container's PID namespace's, where runner exec is not
            self.host_root = syscalls.maps_host_root(pid)
            self.env = _environ(pid)
        except OSError as exc:
            self.close()
            raise Failed("enter container of pid", pid, exc) from None
        except BaseException:
            self.close()
            raise

    def enter(self) -> None:
        """Move the calling (single-threaded) process into the container; the PID namespace applies to
        its children."""
        for name, kind, fd in self.fds:
            syscalls.setns(fd, kind, f"/proc/{self.pid}/ns/{name}")
        os.fchdir(self.root)
        os.chroot(".")
        os.chdir("/")
        _become_root()
        if self.host_root:  # as the container's command has it (init.drop_mount_power)
            syscalls.drop_bounding_capability(syscalls.CAP_SYS_ADMIN)

    def close(self) -> None:
        for _, _, fd in self.fds:
            os.close(fd)
        self.fds = []
        if self.root >= 0:
            os.close(self.root)
            self.root = -1


def _become_root() -> None:
    """The container's root ids, as nsenter takes them: setns() changes no id, so the host's root
    would stay the unmapped 65534 inside (with no capability once CMD is exec'd, and owner of
    every host file a descriptor could reach) and keep the host's supplementary groups."""
    try:
        os.setgroups([])
    except PermissionError:  # setgroups denied in that namespace (a map of one id): nothing to drop
        pass
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)


def _same(a: str, b: str) -> bool:
    sa, sb = os.stat(a), os.stat(b)
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def _environ(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/environ", "rb") as f:
        raw = f.read()
    env = {}
    for item in raw.split(b"\0"):
        key, sep, value = item.partition(b"=")
        if sep and key:
            env[os.fsdecode(key)] = os.fsdecode(value)
    return env or {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}


def forked_into(entry: Entry) -> None:
    """For subprocess's preexec_fn: enter, then fork; the parent passes the child's status back
    and exits, the child goes on to subprocess's exec, inside the container's PID namespace."""
    entry.enter()
    child = os.fork()
    if child == 0:
        return
    _, status = os.waitpid(child, 0)
    code = os.waitstatus_to_exitcode(status)
    os._exit(code if code >= 0 else 128 - code)


def run(pid: int, argv: list[str]) -> int:
    """``runner exec``: run ``argv`` in the container of ``pid``; its exit status."""
    if not argv:
        raise UsageError("command", "", "is missing: runner exec PID -- CMD [ARGS]...")
    entry = Entry(pid)
    # Nothing runner exec was started with crosses into the container: a directory descriptor
    # there (a shell's `exec 7< /`) is the host's tree, for CMD and for any container process
    # that reads /proc/<pid>/fd of the forked child before it execs (CVE-2016-9962's way).
    fds.close_all_but({fd for _, _, fd in entry.fds} | {entry.root})
    syscalls.set_dumpable(False)  # not ptrace()able by the container's root until CMD is exec'd
    try:
        entry.enter()
    except OSError as exc:
        raise Failed("enter container of pid", pid, exc) from None
    finally:
        entry.close()
    child = os.fork()
    if child == 0:
        status = 125
        try:
            os.execvpe(argv[0], argv, entry.env)
        except OSError as exc:
            status = 127 if isinstance(exc, FileNotFoundError) else 126
            os.write(2, f"runner: error: failed to execute \"{argv[0]}\" in the container of pid {pid}: "
                        f"{exc.strerror}\n".encode())
        finally:
            os._exit(status)
    import signal

    for signum in (signal.SIGINT, signal.SIGQUIT):  # the terminal's signals are the command's
        signal.signal(signum, signal.SIG_IGN)
    _, status = os.waitpid(child, 0)
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code
