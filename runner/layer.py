"""The container's root: an image it reads, and a writable layer of its own on top.

    CACHE/layers/<runner pid>-<random>/   one per container, removed when it ends
        lock                 flock()ed by runner while the container lives
        root/                the mount point: the container's / before pivot_root
        upper/, work/        overlayfs's writable layer and its scratch directory

The built-in busybox root and an unpacked tarball are the overlay's
lowerdir: shared by every container, never written by one (overlayfs copies
a file up into ``upper`` before the first write). ``upper`` and the
directories above it go when the container ends; with ``--keep-layer DIR``
upper and work are DIR/upper and DIR/work instead, and stay: DIR/upper then
holds every file the container wrote (deletions as whiteouts, see the kernel's
overlayfs.rst), and a later run with the same --keep-layer DIR continues them.

A ``--rootfs DIR`` of the user's is bound onto ``root`` as it is: the
container writes into that directory, as runc writes into its bundle.

Who mounts. When runner is root, the child mounts the root as the host's
root, in a mount namespace of its own made before the user namespace: path
lookups and overlayfs's copy-up then run with the host root's rights, and
the cache may stay closed to everyone else (mode 0700; only the way to
``root`` is 0711, passable, not listable). Otherwise the child mounts it
after its user namespace is mapped, as the user, who owns the cache:
unprivileged overlayfs mounts have been allowed since Linux 5.11.

A runner killed with SIGKILL leaves its layer behind; its lock is free
then (the kernel drops an flock with its last descriptor), and the next
runner's :func:`collect` removes it.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable
from pathlib import Path

from nskit import syscalls
from nskit.syscalls import MS_BIND, MS_PRIVATE, MS_REC

from .errors import Failed, UsageError
from .idmap import Mapping

PASSABLE = 0o711  # others may go through to root/, not list what is there
UNLOCKED_GRACE = 3600  # seconds a layer without a lock file is let be (it is being made)
OVERLAY_SPECIAL = ",:\\"  # these would split overlayfs's mount options


class Layer:
    """One container's writable layer (a plain class, as on all of runner start's path: see parent.py)."""

    def __init__(self, home: Path, image: Path, in_place: bool, upper: Path | None, work: Path | None,
                 keep: Path | None, lock_fd: int | None = None) -> None:
        self.home = home  # CACHE/layers/<id>
        self.image = image  # the lowerdir, or the user's directory
        self.in_place = in_place  # the user's directory, bound as it is
        self.upper, self.work, self.keep = upper, work, keep
        self.lock_fd = lock_fd

    @property
    def root(self) -> Path:
        return self.home / "root"

    @classmethod
    def create(cls, cache: Path, image: Path, in_place: bool, mapping: Mapping,
               keep: Path | None = None) -> "Layer":
        """Make the directories for one container; the mount is :meth:`mount`'s, in the child."""
        if in_place and keep is not None:
            raise UsageError("--keep-layer", keep, "goes with the built-in root or a tarball; "
                                                  "a --rootfs directory is written in place")
        layers = cache / "layers"
        try:
            _passable(cache)
            os.makedirs(layers, mode=PASSABLE, exist_ok=True)
            _passable(layers)
            home = _new_home(layers)
        except OSError as exc:
            raise Failed("create the writable layer in", layers, exc) from None
        layer = cls(home, image, in_place, None, None, keep)
        try:
            layer.lock_fd = _locked(home)
            os.chmod(home, PASSABLE)
            os.mkdir(layer.root, 0o755)
            if not in_place:
                top = keep if keep is not None else home
                layer.upper, layer.work = top / "upper", top / "work"
                for path in (image, layer.upper, layer.work):
                    if any(c in str(path) for c in OVERLAY_SPECIAL):
                        raise Failed("use", path, f"overlayfs cannot take a path with any of {OVERLAY_SPECIAL!r}; "
                                                  "choose another --cache-dir or --keep-layer")
                os.makedirs(top, mode=0o700, exist_ok=True)
                for path, mode in ((layer.upper, 0o755), (layer.work, 0o700)):
                    os.makedirs(path, mode=mode, exist_ok=True)
                    _own(path, mapping)
        except OSError as exc:
            layer.remove()
            raise Failed("create the writable layer", home, exc) from None
        except BaseException:
            layer.remove()
            raise
        return layer

    def mount(self) -> None:
        """Mount the container's root on :attr:`root`, in the calling process's mount namespace."""
        target = str(self.root)
        try:
            if self.in_place:
                syscalls.mount(str(self.image), target, None, MS_BIND | MS_REC)
            else:
                syscalls.mount("overlay", target, "overlay", 0,
                               f"lowerdir={self.image},upperdir={self.upper},workdir={self.work}")
        except OSError as exc:
            what = "bind-mount" if self.in_place else "mount the overlay of"
            raise Failed(what, self.image, exc) from None

    def mount_in_own_namespace(self) -> None:
        """unshare(CLONE_NEWNS), cut propagation to the host, then :meth:`mount` (root, before the user ns)."""
        try:
            syscalls.unshare(syscalls.CLONE_NEWNS)
            syscalls.mount(None, "/", None, MS_REC | MS_PRIVATE)
        except OSError as exc:
            raise Failed("make a mount namespace for", self.root, exc) from None
        self.mount()

    def close_lock(self) -> None:
        """In the child: its copy of the lock's descriptor (runner's own holds the lock)."""
        if self.lock_fd is not None:
            os.close(self.lock_fd)
            self.lock_fd = None

    def remove(self) -> None:
        """Remove the layer, but not a --keep-layer DIR; the container has ended."""
        remove_tree(self.home)
        if self.lock_fd is not None:
            os.close(self.lock_fd)
            self.lock_fd = None


def check_reachable(cache: Path, mapping: Mapping) -> None:
    """Refuse, before anything is made in it, a cache the container's root could not walk to:
    mapped to a host uid of no one, it needs every directory above the cache to let others
    through (o+x)."""
    if not mapping.unprivileged:
        return
    uid = mapping.uid
    for parent in cache.resolve().parents:
        try:
            mode = parent.stat().st_mode & 0o777
        except FileNotFoundError:
            continue  # made by the cache's own makedirs, passable
        if not mode & 0o001:
            raise UsageError("--cache-dir", cache, f"is under {parent} (mode {mode:04o}), "
                                                   f"which the container's root (host uid {uid}) cannot pass; choose "
                                                   "a cache others may reach, or use --map-root-to-caller")


def _passable(path: Path) -> None:
    """Let others through a directory that root made (0700 -> 0711), so that the
    container's processes reach root/; a user's own cache is theirs already."""
    mode = path.stat().st_mode & 0o777
    if os.geteuid() == 0 and mode & 0o011 != 0o011:
        os.chmod(path, mode | 0o011)


def _own(path: Path, mapping: Mapping) -> None:
    if os.geteuid() == 0:
        os.chown(path, mapping.host_uid(0), mapping.host_gid(0))


def remove_tree(top: Path) -> None:
    """Remove ``top`` and everything in it, as far as it can be: what cannot be removed is
    left, as shutil.rmtree(ignore_errors=True) leaves it, without importing shutil (which
    loads zlib, bz2 and lzma: ~2.5 ms of every start). What the container wrote is not
    trusted: os.fwalk works on descriptors and never descends through a symbolic link, and
    each name is removed relative to its directory's descriptor."""
    try:
        for _, dirs, files, fd in os.fwalk(top, topdown=False):
            for name in files:
                _remove(name, fd, os.unlink)
            for name in dirs:  # a symbolic link to a directory is listed here, and unlinked
                _remove(name, fd, os.rmdir)
        os.rmdir(top)
    except OSError:
        pass


def _remove(name: str, fd: int, remove: Callable[..., None]) -> None:
    try:
        remove(name, dir_fd=fd)
    except NotADirectoryError:
        _remove(name, fd, os.unlink)
    except OSError:
        pass


def _locked(home: Path) -> int:
    """A descriptor of ``home``'s lock, flock()ed. The file is made and locked under another
    name and only then renamed to ``lock``: a ``lock`` that another runner's :func:`collect`
    finds free is one whose runner is gone, never one not yet locked (made in place, it was
    free between the open and the flock, and a start beside this one removed the layer)."""
    making = home / "lock.new"
    fd = os.open(making, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.rename(making, home / "lock")
    except BaseException:
        os.close(fd)
        raise
    return fd


def _new_home(layers: Path) -> Path:
    """A new directory PID-RANDOM in ``layers``, mode 0700, as tempfile.mkdtemp makes it
    (tempfile and random are ~1.5 ms of a start)."""
    while True:
        home = layers / f"{os.getpid()}-{os.urandom(6).hex()}"
        try:
            os.mkdir(home, 0o700)
            return home
        except FileExistsError:
            continue


def collect(cache: Path) -> list[Path]:
    """Remove the layers whose runner is gone (their lock is free); return them."""
    removed: list[Path] = []
    try:
        entries = list(os.scandir(cache / "layers"))
    except OSError:
        return removed
    for entry in entries:
        home = Path(entry.path)
        try:
            fd = os.open(home / "lock", os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            try:
                if time.time() - entry.stat(follow_symlinks=False).st_mtime > UNLOCKED_GRACE:
                    remove_tree(home)
                    removed.append(home)
            except OSError:
                pass
            continue
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue  # its runner lives
        try:
            remove_tree(home)
            removed.append(home)
        finally:
            os.close(fd)
    return removed
