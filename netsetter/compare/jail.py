"""A jail for one side of a comparison: the kernel, not the guard, keeps what runs in it in.

    compare (root on the host)   writes the id maps, reads the state through /proc, kills
      anchor     forked: drops its groups, takes an empty session keyring, unshares user,
                 mount, net, pid, ipc, uts and cgroup namespaces at once; once mapped, is
                 root inside = one unused uid outside; makes every mount read-only except
                 its own tmpfs on /tmp, /run and /run/netns; forks init, waits for it
        init     pid 1 inside: a procfs of its own; forks the container, says READY, waits
                 for GO, forks the payload, reaps every process; says EXIT <status>
          container   sleeps in a network namespace of its own: the script's $1
          payload     bash running the script (scriptrun.py), or the port's steps (portrun.py)

Both network namespaces, the jail's own (which plays the host) and the
container's, are made inside the user namespace, so its root owns them: `ip`,
`ip netns add` and `exec`, bridges, veth pairs and `ip link set X netns PID`
all work there, and reach no namespace of the machine, whose owner is the
machine's root. The payload is that root: on the machine it is uid/gid
:attr:`Jail.uid`, which owns no file and no process, with no supplementary
group, no_new_privs, not dumpable; its pid namespace shows and signals only
the jail; its descriptors are stdin (/dev/null), stdout and stderr (the
output) and fd 3 (the trace socket), nothing else.

Limits: RLIMIT_NPROC bounds a fork bomb, RLIMIT_FSIZE a file, the tmpfs
sizes the files in them, and the time limit everything: at the deadline
compare kills init, and the kernel kills every process of its pid namespace
with it. When compare dies, however it dies, the anchor gets SIGKILL from the
kernel (PR_SET_PDEATHSIG), init gets it from the anchor's death, and the
namespaces (network, mounts, ...) go with their last process: nothing is
left behind.
"""

from __future__ import annotations

import grp
import os
import pwd
import random
import resource
import select
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Mapping, NoReturn

from nskit import syscalls

from . import snapshot
from ..errors import NetsetterError
from .snapshot import NetnsRef, State
from . import lockdown

CLONE_NEWCGROUP = 0x02000000
NAMESPACES = (syscalls.CLONE_NEWUSER | syscalls.CLONE_NEWNS | syscalls.CLONE_NEWNET | syscalls.CLONE_NEWPID
              | syscalls.CLONE_NEWIPC | syscalls.CLONE_NEWUTS | CLONE_NEWCGROUP)
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
TMPFS = {"/tmp": "mode=1777,size=16m", "/run": "mode=755,size=16m", "/run/netns": "mode=755,size=1m"}
LIMITS = {resource.RLIMIT_NPROC: 128, resource.RLIMIT_FSIZE: 16 << 20, resource.RLIMIT_CORE: 0,
          resource.RLIMIT_NOFILE: 1024}
FILES_DIR = "/run/nsp"  # inside: files compare gives the payload (the hook, a copy of the script)
TRACE_FD = 3
MAX_MESSAGE = 4096
JAIL_IDS = range(0x4000_0000, 0x7FFF_0000)  # root of a jail is one of these on the machine
JAIL_IDS_ENV = "NETSETTER_JAIL_IDS"  # FIRST-LAST: a part of JAIL_IDS, to tell one run's jails from another's


class TimeLimit(NetsetterError):
    """The jail's time ran out; it was killed."""


class JailError(NetsetterError):
    """The jail could not be built."""


def jail_ids(environ: Mapping[str, str] = os.environ) -> range:
    """The ids a jail's root may have on the machine: :data:`JAIL_IDS`, or the part of it
    that NETSETTER_JAIL_IDS=FIRST-LAST names."""
    value = environ.get(JAIL_IDS_ENV, "")
    if not value:
        return JAIL_IDS
    first, _, last = value.partition("-")
    try:
        ids = range(int(first), int(last) + 1)
    except ValueError:
        ids = range(0)
    if not ids or ids.start not in JAIL_IDS or ids[-1] not in JAIL_IDS:
        raise JailError(f"failed to choose a jail's uid: {JAIL_IDS_ENV}={value!r} is not FIRST-LAST within "
                        f"{JAIL_IDS.start}-{JAIL_IDS[-1]}; unset it, or name such a range")
    return ids


def _unused_id() -> int:
    """An id no user or group of the machine has: root inside the jail is this id outside."""
    ids = jail_ids()
    for _ in range(1000):
        candidate = random.choice(ids)
        try:
            pwd.getpwuid(candidate)
            continue
        except KeyError:
            pass
        try:
            grp.getgrgid(candidate)
        except KeyError:
            return candidate
    raise JailError(f"failed to choose a jail's uid: users or groups hold every id tried in {ids.start}-{ids[-1]}"
                    f" ({JAIL_IDS_ENV}); name a range no one holds")


def _python_dirs() -> list[str]:
    """The directories of the running Python: its prefixes and the sys.path entries it has
    imported from, none inside another."""
    files = [os.path.realpath(f) for m in list(sys.modules.values()) if (f := getattr(m, "__file__", None))]
    used = [p for p in sys.path if p and any(f.startswith(os.path.realpath(p) + os.sep) for f in files)]
    wanted = {os.path.realpath(p) for p in (*used, sys.prefix, sys.base_prefix,
                                            os.path.dirname(os.path.realpath(sys.executable)))}
    return [path for path in sorted(wanted)
            if os.path.isdir(path) and not any(path.startswith(w + os.sep) for w in wanted)]


def _under_tmpfs(dirs: list[str]) -> list[str]:
    """Those of ``dirs`` that the jail's own /tmp or /run would hide (a checkout in /tmp):
    bound back in, read-only, over the jail's tmpfs."""
    return [path for path in dirs if any(path.startswith(target + os.sep) for target in TMPFS)]


def _behind_closed_doors(dirs: list[str]) -> dict[str, list[str]]:
    """Those of ``dirs`` that the jail's uid could not reach, by the first directory on
    their way that others may not enter.

    Here Python lives under /root (mode 700): in the jail, a tmpfs replaces /root and
    holds only those directories, bound in read-only, so the port's imports work and
    nothing else of /root shows."""
    doors: dict[str, list[str]] = {}
    for path in dirs:
        if path in _under_tmpfs([path]):
            continue
        parts = Path(path).parts
        for depth in range(2, len(parts) + 1):
            ancestor = os.path.join(*parts[:depth])
            if not os.stat(ancestor).st_mode & stat.S_IXOTH:
                doors.setdefault(ancestor, []).append(path)
                break
    return doors


Payload = Callable[[int], None]  # runs in the payload process, given the container's pid inside


class Jail:
    """Start with :meth:`start`; :meth:`go` runs the payload; :meth:`close` kills it all."""

    def __init__(self, what: str, payload: Payload, *, time_limit: float,
                 files: dict[str, bytes] | None = None, trace_fd: int | None = None,
                 output_fd: int | None = None) -> None:
        self.what, self.payload, self.time_limit = what, payload, time_limit
        self.files = files or {}
        self.trace_fd, self.output_fd = trace_fd, output_fd
        self.uid = _unused_id()
        dirs = _python_dirs()
        self.doors = _behind_closed_doors(dirs)
        self.hidden = _under_tmpfs(dirs)
        self.deadline = time.monotonic() + time_limit
        self.anchor = self.init = self.container = 0  # pids on the machine
        self.container_pid = 0  # the container's pid inside the jail
        self.ctl: socket.socket | None = None
        self.early: dict[str, str] = {}  # messages received before they were waited for
        self.init_fd: int | None = None  # a pidfd of init

    # --- compare's side -------------------------------------------------------
    def start(self) -> "Jail":
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.ctl = ours
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            _never_return(lambda: self._anchor(theirs, parent), theirs)
        theirs.close()
        self.anchor = pid
        try:
            self._expect("unshared")
            self._map_ids()
            ours.sendall(b"mapped")
            self._hold_init(int(self._expect("init")))
            self.container_pid = int(self._expect("ready"))
            children = Path(f"/proc/{self.init}/task/{self.init}/children").read_text().split()
            if len(children) != 1:
                raise JailError(f"failed to build the {self.what}'s sandbox: init has {len(children)} "
                                "children, not the container alone")
            self.container = int(children[0])
        except BaseException:
            self.close()
            raise
        return self

    def _hold_init(self, pid: int) -> None:
        """Keep a pidfd of init, the anchor's child: a signal through it cannot reach
        another process that reuses the pid once init is gone."""
        try:
            fd = os.pidfd_open(pid)
        except OSError:
            return
        try:
            with open(f"/proc/{pid}/status") as status:
                parent = next(int(line.split()[1]) for line in status if line.startswith("PPid:"))
        except (OSError, StopIteration, ValueError):
            parent = 0
        if parent != self.anchor:
            os.close(fd)
            return
        self.init, self.init_fd = pid, fd

    def _map_ids(self) -> None:
        try:
            for name, text in (("setgroups", "deny"), ("uid_map", f"0 {self.uid} 1\n"),
                               ("gid_map", f"0 {self.uid} 1\n")):
                with open(f"/proc/{self.anchor}/{name}", "w") as f:
                    f.write(text)
        except OSError as exc:
            raise JailError(f"failed to map root of the {self.what}'s sandbox to uid {self.uid}: {exc}") from None

    def remaining(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeLimit(f"the {self.what} ran past its time limit of {self.time_limit:g} s: its sandbox "
                            "was killed (give more with --time-limit)")
        return left

    def wait_readable(self, *fds: int) -> list[int]:
        """Block until one of ``fds`` can be read (those are returned), or raise
        :class:`TimeLimit` at the deadline."""
        while True:
            ready, _, _ = select.select(fds, [], [], self.remaining())
            if ready:
                return ready

    def _expect(self, tag: str) -> str:
        """The next message ``tag`` from the anchor or init. They talk at once ("init" from
        the anchor and "ready" from init race), so a message that comes early is kept."""
        assert self.ctl is not None
        while tag not in self.early:
            self.wait_readable(self.ctl.fileno())
            data = self.ctl.recv(MAX_MESSAGE).decode(errors="replace")
            word, _, rest = data.partition(" ")
            if word == "error":
                raise JailError(f"the {self.what}'s sandbox failed: {rest}")
            if not data:
                raise JailError(f"failed to build the {self.what}'s sandbox: it ended before saying {tag!r}")
            if word not in ("unshared", "init", "ready", "exit") or word in self.early:
                raise JailError(f"failed to build the {self.what}'s sandbox: {data[:80]!r} out of turn")
            self.early[word] = rest
        return self.early.pop(tag)

    def go(self) -> None:
        """Start the payload."""
        assert self.ctl is not None
        self.ctl.sendall(b"go")

    def exit_status(self) -> int:
        """Wait for the payload to end; its exit status (128 + N for signal N)."""
        status = int(self._expect("exit"))
        return os.waitstatus_to_exitcode(status) if not os.WIFSIGNALED(status) else 128 + os.WTERMSIG(status)

    @property
    def host(self) -> NetnsRef:
        return NetnsRef(pid=self.init)

    @property
    def container_netns(self) -> NetnsRef:
        return NetnsRef(pid=self.container)

    def netns_entry(self, name: str) -> str | None:
        """What /run/netns/NAME is inside the jail: the target of a symbolic link, "" for
        anything else, None when there is nothing. Read with lstat() and readlink() through
        /proc/INIT/root, never following a link: the jail's root owns its /run."""
        root = f"/proc/{self.init}/root"
        for path in (f"{root}/run", f"{root}/run/netns"):
            try:
                if not stat.S_ISDIR(os.lstat(path).st_mode):
                    return None
            except OSError:
                return None
        path = f"{root}/run/netns/{name}"
        try:
            mode = os.lstat(path).st_mode
        except OSError:
            return None
        return os.readlink(path) if stat.S_ISLNK(mode) else ""

    def state(self) -> State:
        """The host's and the container's state now, and the container's /var/run/netns entry."""
        try:
            return State(snapshot.take(self.host), snapshot.take(self.container_netns),
                         self.netns_entry(str(self.container_pid)) is not None)
        except subprocess.CalledProcessError as exc:
            gone = "" if os.path.exists(f"/proc/{self.container}") else " (its container process is gone)"
            raise JailError(f"failed to read the state of the {self.what}'s sandbox{gone}: "
                            f"{(exc.stderr or '').strip() or exc}") from None

    def close(self) -> None:
        """Kill everything in the jail and wait until it is gone; safe to call twice."""
        if self.anchor:
            # init's exit waits until every process of its pid namespace is gone, and the
            # anchor's wait for init until then: when the anchor is reaped, nothing is left.
            if self.init_fd is None:
                try:
                    self._hold_init(int(Path(f"/proc/{self.anchor}/task/{self.anchor}/children").read_text().split()[0]))
                except (OSError, IndexError, ValueError):
                    pass
            try:
                if self.init_fd is not None:
                    signal.pidfd_send_signal(self.init_fd, signal.SIGKILL)
                else:  # no init yet: the anchor, our child, is the jail
                    os.kill(self.anchor, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(self.anchor, 0)
            self.anchor = 0
        if self.init_fd is not None:
            os.close(self.init_fd)
            self.init_fd = None
        if self.ctl is not None:
            self.ctl.close()
            self.ctl = None

    # --- inside ---------------------------------------------------------------
    def _anchor(self, ctl: socket.socket, parent: int) -> None:
        lockdown.reset_signals()
        syscalls.set_parent_death_signal(signal.SIGKILL)
        if os.getppid() != parent:  # compare died before prctl() took effect
            return
        _close_all_but(ctl.fileno(), self.trace_fd, self.output_fd)
        os.setgroups([])  # still root on the machine: the groups root is in must not come along
        lockdown.new_session_keyring()
        syscalls.unshare(NAMESPACES)
        # opened while we are still uid 0 outside, who may pass the closed doors, and in the
        # new mount namespace, whose mounts alone may be bound in it
        inside = {path: os.open(path, os.O_PATH | os.O_DIRECTORY)
                  for path in [*(p for paths in self.doors.values() for p in paths), *self.hidden]}
        ctl.sendall(b"unshared")
        if ctl.recv(MAX_MESSAGE) != b"mapped":
            return
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
        # a change of credentials clears the parent-death signal: set it again
        syscalls.set_parent_death_signal(signal.SIGKILL)
        if os.getppid() != parent:
            return
        self._mounts(inside)
        lockdown.no_new_privs()
        lockdown.not_dumpable()
        for limit, value in LIMITS.items():
            resource.setrlimit(limit, (value, value))
        init = os.fork()
        if init == 0:
            _never_return(lambda: self._init(ctl), ctl)
        ctl.sendall(f"init {init}".encode())
        ctl.close()
        _close_all_but()
        while True:
            try:
                os.waitpid(init, 0)
                return
            except ChildProcessError:
                return
            except InterruptedError:
                continue

    def _mounts(self, inside: dict[str, int]) -> None:
        syscalls.mount(None, "/", None, syscalls.MS_REC | syscalls.MS_PRIVATE)
        # /dev: a tmpfs with the harmless devices of the machine bound in (no mknod in a
        # user namespace); the sources are opened before the tmpfs hides them.
        sources = {name: os.open(f"/dev/{name}", os.O_PATH) for name in DEVICES}
        syscalls.mount("tmpfs", "/dev", "tmpfs", syscalls.MS_NOSUID | syscalls.MS_NOEXEC, "mode=755,size=64k")
        for name, fd in sources.items():
            os.close(os.open(f"/dev/{name}", os.O_CREAT | os.O_WRONLY, 0o666))
            syscalls.mount(f"/proc/self/fd/{fd}", f"/dev/{name}", None, syscalls.MS_BIND)
            os.close(fd)
        for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                             ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
            os.symlink(target, f"/dev/{name}")
        lockdown.make_read_only("/")
        for target, options in TMPFS.items():  # in order: /run/netns is made in the new /run
            os.makedirs(target, exist_ok=True)
            syscalls.mount("tmpfs", target, "tmpfs", syscalls.MS_NOSUID | syscalls.MS_NODEV, options)
        for path in self.hidden:  # Python's own directories in /tmp or /run, read-only
            os.makedirs(path, exist_ok=True)
            syscalls.mount(f"/proc/self/fd/{inside[path]}", path, None, syscalls.MS_BIND | syscalls.MS_REC)
            os.close(inside[path])
            lockdown.make_read_only(path)
        for door, paths in self.doors.items():
            syscalls.mount("tmpfs", door, "tmpfs", syscalls.MS_NOSUID | syscalls.MS_NODEV, "mode=755,size=64k")
            for path in paths:
                os.makedirs(path, exist_ok=True)
                syscalls.mount(f"/proc/self/fd/{inside[path]}", path, None, syscalls.MS_BIND | syscalls.MS_REC)
                os.close(inside[path])
            lockdown.make_read_only(door)
        os.makedirs(FILES_DIR, mode=0o755)
        for n, (path, data) in enumerate(self.files.items()):
            if path.startswith(("/tmp/", "/run/")):
                os.makedirs(os.path.dirname(path), exist_ok=True)
                Path(path).write_bytes(data)
            else:  # elsewhere the root is read-only: a copy is bound over the path
                copy = f"{FILES_DIR}/file-{n}"
                Path(copy).write_bytes(data)
                syscalls.mount(copy, path, None, syscalls.MS_BIND)
        os.chdir("/")

    def _init(self, ctl: socket.socket) -> None:
        syscalls.set_parent_death_signal(signal.SIGKILL)
        # a procfs of this pid namespace: only the jail's processes, with the jail's pids
        syscalls.mount("proc", "/proc", "proc", syscalls.MS_NOSUID | syscalls.MS_NODEV | syscalls.MS_NOEXEC)
        # and a sysfs of the jail's network namespace, not the machine's
        syscalls.mount("sysfs", "/sys", "sysfs", syscalls.MS_RDONLY | syscalls.MS_NOSUID | syscalls.MS_NODEV
                       | syscalls.MS_NOEXEC)
        ready_r, ready_w = os.pipe()
        container = os.fork()
        if container == 0:
            _never_return(lambda: _container(ready_w), None)
        os.close(ready_w)
        if os.read(ready_r, 1) != b"k":
            ctl.sendall(b"error the container process could not make its network namespace")
            return
        os.close(ready_r)
        ctl.sendall(f"ready {container}".encode())
        if ctl.recv(MAX_MESSAGE) != b"go":
            return  # compare closed the channel: it is done with us
        payload = os.fork()
        if payload == 0:
            _never_return(lambda: self._payload(container), None)
        _close_all_but(ctl.fileno())  # the trace and the output are the payload's alone
        while True:
            try:
                pid, status = os.waitpid(-1, 0)  # every orphan of the jail comes to us
            except ChildProcessError:
                break
            except InterruptedError:
                continue
            if pid == payload:
                ctl.sendall(f"exit {status}".encode())
        ctl.recv(MAX_MESSAGE)  # nothing left to reap: wait until compare kills us or goes

    def _payload(self, container: int) -> None:
        os.setsid()
        null = os.open("/dev/null", os.O_RDWR)
        output = os.dup(self.output_fd) if self.output_fd is not None else os.dup(null)
        trace = os.dup(self.trace_fd) if self.trace_fd is not None else None
        os.dup2(null, 0)
        os.dup2(output, 1)
        os.dup2(output, 2)
        if trace is not None:
            os.dup2(trace, TRACE_FD)
            os.set_inheritable(TRACE_FD, True)
        _close_all_but(*((TRACE_FD,) if trace is not None else ()))
        self.payload(container)


def _container(ready: int) -> None:
    syscalls.unshare(syscalls.CLONE_NEWNET)
    os.write(ready, b"k")
    _close_all_but()
    # a program of its own, as a container's process is: the jail's root may open its
    # /proc/PID/ns/net (`ip netns exec PID`), which it may not for a process forked from compare
    os.execvp("sleep", ["sleep", "infinity"])


def _close_all_but(*keep: int | None) -> None:
    """Close every descriptor above 2 except ``keep``."""
    low = 3
    for fd in sorted(k for k in keep if k is not None and k >= 3):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 1 << 20)


def _never_return(body: Callable[[], None], ctl: socket.socket | None) -> NoReturn:
    """The whole life of a forked process: it never returns into compare's code, and
    os._exit() skips compare's `finally` blocks and atexit."""
    status = 1
    try:
        body()
        status = 0
    except BaseException as exc:  # noqa: BLE001 - whatever it is, compare must hear of it
        if ctl is not None:
            try:
                ctl.sendall(f"error {exc}".encode()[:MAX_MESSAGE])
            except OSError:
                pass
    finally:
        os._exit(status)
