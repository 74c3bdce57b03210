"""Where netsetter keeps what must outlive one run: /run/ns-proc/netns-<cookie>/.

/run is a tmpfs: it starts empty at boot, as the kernel objects it describes
(links, namespaces) do. Everything lives in a folder of the host's network
namespace, named by its netns cookie (SO_NETNS_COOKIE): unlike an inode
number, which the kernel hands to the next namespace as soon as one is freed,
a cookie is never reused before reboot, so a fresh namespace never inherits a
dead one's records and leases. ``netns`` in the folder says which namespace
it was (cookie, and inode while it lived) for :mod:`netsetter.host.gc`.

The folders are private (0700) and opened one component at a time with
O_NOFOLLOW|O_DIRECTORY from the one above: a component that is a symlink, or
not a directory, stops the run instead of steering a write elsewhere.
Callers get paths through an open descriptor (/proc/self/fd/N/NAME), so a
component swapped for a symlink after the check is never followed either.
Files in them are opened with O_NOFOLLOW too (:func:`write_file`,
:func:`read_file`); a file a folder should not hold is ignored, with one
warning (:func:`foreign`).
"""

from __future__ import annotations

import errno
import json
import os
import stat
import sys
import _thread  # not threading.py: its Lock is this one, without its import (~1 ms)

from nskit.boundary import deferred
from nskit.errors import OpError
from nskit.netns import cookie

RUN_DIR = "/run/ns-proc"
PREFIX = "netns-"
META = "netns"  # in each folder: {"cookie": ..., "inode": ..., "dev": ...} of its namespace
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_fds: dict[tuple[str, ...], int] = {}  # open folders of this process, by their path components
_warned: set[str] = set()
_fds_lock = _thread.allocate_lock()  # threads of one process share _fds (a fleet's, concurrent setups)


def host_cookie() -> int:
    """The network namespace this thread works in, as its cookie."""
    return cookie()


def host_dir(key: int | None = None) -> str:
    return os.path.join(RUN_DIR, f"{PREFIX}{host_cookie() if key is None else key}")


def _refuse(path: str, why: str) -> OpError:
    return OpError("open state directory", path, f"{why}; netsetter keeps its state only in real, private "
                   f"directories under {RUN_DIR}: remove it (`netsetter gc` removes what it knows)")


def _open_child(parent: int, name: str, shown: str, create: bool) -> int | None:
    if create:
        try:
            os.mkdir(name, 0o700, dir_fd=parent)
        except FileExistsError:
            pass
        except OSError as exc:
            raise OpError("create state directory", shown, exc.strerror or str(exc), exc.errno) from None
    try:
        fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise _refuse(shown, "it is a symlink or not a directory") from None
        raise OpError("open state directory", shown, exc.strerror or str(exc), exc.errno) from None
    st = os.fstat(fd)
    if st.st_uid != os.geteuid():
        os.close(fd)
        raise _refuse(shown, f"it belongs to uid {st.st_uid}, not to netsetter's")
    if st.st_mode & 0o077:
        os.fchmod(fd, 0o700)  # made by an older netsetter with 0755
    return fd


def open_dir(*parts: str, key: int | None = None, create: bool = True) -> int | None:
    """A descriptor of the folder /run/ns-proc/netns-<key>/PARTS..., made as needed (0700),
    or None when it does not exist and ``create`` is False. Kept open for the process."""
    top = f"{PREFIX}{host_cookie() if key is None else key}"
    wanted = (top, *parts)
    if wanted in _fds:
        return _fds[wanted]
    with _fds_lock:
        return _open_dir(wanted, key, create)


def _open_dir(wanted: tuple[str, ...], key: int | None, create: bool) -> int | None:
    if wanted in _fds:
        return _fds[wanted]
    fd = _root(create)
    if fd is None:
        return None
    shown = RUN_DIR
    for depth, name in enumerate(wanted, 1):
        if name in ("", ".", "..") or "/" in name:
            raise OpError("open state directory", os.path.join(shown, name), "not a plain name")
        shown = os.path.join(shown, name)
        if wanted[:depth] in _fds:
            fd = _fds[wanted[:depth]]
            continue
        child = _open_child(fd, name, shown, create)
        if child is None:
            return None
        _fds[wanted[:depth]] = child
        if depth == 1 and create:
            _write_meta(child, key)
        fd = child
    return fd


def _root(create: bool) -> int | None:
    if () in _fds:
        return _fds[()]
    parent = os.open(os.path.dirname(RUN_DIR), _DIR_FLAGS)
    try:
        fd = _open_child(parent, os.path.basename(RUN_DIR), RUN_DIR, create)
    finally:
        os.close(parent)
    if fd is not None:
        _fds[()] = fd
    return fd


def _write_meta(fd: int, key: int | None) -> None:
    """Say which namespace the folder is of, once: the cookie, and its inode while it lives."""
    if key is not None and key != host_cookie():
        return
    try:
        os.stat(META, dir_fd=fd, follow_symlinks=False)
        return
    except FileNotFoundError:
        pass
    st = os.stat("/proc/thread-self/ns/net")
    write_file(fd, META, json.dumps({"cookie": host_cookie(), "inode": st.st_ino, "dev": st.st_dev}))


def path(*parts: str, key: int | None = None) -> str:
    """A file under the host's folder, reached through the open folder; its folders are made as needed."""
    *folders, leaf = parts
    fd = open_dir(*folders, key=key)
    return f"/proc/self/fd/{fd}/{leaf}"


def dir_path(*parts: str, key: int | None = None, create: bool = True) -> str | None:
    fd = open_dir(*parts, key=key, create=create)
    return None if fd is None else f"/proc/self/fd/{fd}"


def write_file(folder: int, name: str, text: str) -> None:
    """Write ``name`` in ``folder`` whole or not at all: a private temporary file (never
    following a symlink), synced, renamed into place, with SIGINT/SIGTERM held meanwhile
    (a signal acts once the file is in place or gone: no temporary file is left)."""
    with deferred():
        _write_file(folder, name, text)


def _write_file(folder: int, name: str, text: str) -> None:
    # Unique per writer, not per process: threads of one process (or processes of two PID
    # namespaces, with the same pid) writing the same file at once must not share it.
    tmp = f".{name}.{os.getpid()}.{os.urandom(6).hex()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=folder)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, name, src_dir_fd=folder, dst_dir_fd=folder)
    except BaseException:
        try:
            os.unlink(tmp, dir_fd=folder)
        except OSError:
            pass
        raise


def read_file(folder: int, name: str) -> str | None:
    """The text of ``name`` in ``folder``; None when absent, a symlink or not a file."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=folder)
    except OSError:
        return None
    with os.fdopen(fd) as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            return None
        try:
            return f.read()
        except (OSError, UnicodeDecodeError):
            return None


def foreign(where: str, name: str, why: str) -> None:
    """A file a state folder should not hold: ignored, and said once (on stderr, which the
    CNI plugin's runtime keeps in its logs)."""
    key = f"{where}/{name}"
    if key in _warned or name.startswith("."):
        return
    _warned.add(key)
    print(f"netsetter: warning: ignoring {name!r} in {where}: {why}", file=sys.stderr)


def remove_if_empty(*parts: str, key: int | None = None) -> None:
    """Drop a folder that holds nothing any more (a bridge's leases after the last release)."""
    *above, name = parts
    parent = open_dir(*above, key=key, create=False)
    if parent is None:
        return
    top = (f"{PREFIX}{host_cookie() if key is None else key}", *parts)
    try:
        os.rmdir(name, dir_fd=parent)
    except OSError:
        return
    fd = _fds.pop(top, None)
    if fd is not None:
        os.close(fd)


def forget(key: int) -> None:
    """Remove the folder of a host netns that is going away."""
    import shutil  # here: at the top it costs every CNI call its bz2/lzma imports

    top = f"{PREFIX}{key}"
    for parts in [p for p in _fds if p[:1] == (top,)]:
        os.close(_fds.pop(parts))
    shutil.rmtree(os.path.join(RUN_DIR, top), ignore_errors=True)
