"""Which directory becomes the container's root, built or unpacked once into a cache.

    --rootfs DIR              that directory, used in place
    --rootfs FILE.tar[.gz]    unpacked once into CACHE/rootfs/tar-<sha256 of the file>[-u<uid>]
    (none)                    built once into CACHE/rootfs/busybox-<device.inode.size.mtime of busybox>-<layout>[-u<uid>]

A cached root is an image: containers read it through an overlay, each
with a writable layer of its own (layer.py), and never write it. Under the
unprivileged mapping (idmap.py) its files belong to the container's ids as
the host sees them (owner + 1000000000, the ``-u<uid>`` of its name), so
that the container's root owns its own /bin as it would without a user
namespace; the article's mapping keeps the files as they are made.

A root is refused before anything is made in it or started when it is
empty (``--rootfs ''``), missing, a file that is not a tarball, or has no
command to run: no /bin/sh for the default command (exit 2), or not the
command given (exit 127, as execve() would say).

CACHE is ``--cache-dir`` (or $RUNNER_CACHE_DIR); else /var/cache/ns-proc for
root, and $XDG_CACHE_HOME/ns-proc (~/.cache/ns-proc) for other users, who
must own what their containers' root maps to. A root is made in a
temporary directory next to its final name and renamed into place: rename()
is atomic, so two runners starting at once never see half a root, and the
loser of the race throws its copy away.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path

from . import busybox
from .errors import Failed, NotFound, UsageError
from .idmap import Mapping

LAYOUT = 1  # bump when busybox.build() changes, so that old cached roots are not reused


def cache_dir(override: Path | None = None) -> Path:
    if override is not None:
        return override
    if os.geteuid() == 0:
        return Path("/var/cache/ns-proc")
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "ns-proc"


def prepare(rootfs: str | None, cache: Path, mapping: Mapping | None = None,
            command: tuple[str, ...] = ("/bin/sh",), path: str = "/bin") -> tuple[Path, bool]:
    """The image to start from, made first if it is not in the cache yet, and whether it is the
    user's own directory (used in place) rather than a cached image."""
    shift = mapping if mapping is not None and mapping.uid != os.geteuid() else None
    suffix = f"-u{shift.uid}" if shift is not None else ""
    if rootfs is None:
        bb = busybox.find()

        def build(root: Path) -> None:
            busybox.build(root, bb)
            give(root, shift)
        return cached(cache, f"busybox-{identity(bb)}-{LAYOUT}{suffix}", build), False
    if not rootfs:
        raise UsageError("--rootfs", rootfs, "is empty; give a directory or a tarball, "
                                             "or leave --rootfs out for the built-in busybox root")
    path_ = Path(rootfs).absolute()
    if path_.is_dir():
        check_command(path_, rootfs, command, path)
        return path_, True
    if not path_.exists():
        raise UsageError("--rootfs", rootfs, "does not exist")
    from . import tarball  # tarballs only: tarfile is ~1.5 ms of a start

    if not tarball.is_tarball(path_):
        raise UsageError("--rootfs", rootfs, "is neither a directory nor a tar archive")

    def unpack(root: Path) -> None:
        tarball.unpack(path_, root)
        give(root, shift)
    image = cached(cache, f"tar-{sha256(path_)[:16]}{suffix}", unpack)
    check_command(image, rootfs, command, path)
    return image, False


def check_command(root: Path, rootfs: str, command: tuple[str, ...], path: str) -> None:
    """Refuse a root without the command: :class:`UsageError` for the default /bin/sh, else
    :class:`NotFound`. Found means a name is there; whether it runs is execve()'s to say."""
    name = command[0]
    if "/" in name:
        candidates = [name]
    else:
        candidates = [os.path.join(d or ".", name) for d in path.split(":")]
    if any(os.path.lexists(root / c.lstrip("/")) for c in candidates):
        return
    if tuple(command) == ("/bin/sh",):
        raise UsageError("--rootfs", rootfs, "has no /bin/sh to run; give a root filesystem with a shell, "
                                             "or the command to run after --")
    where = name if "/" in name else f"{name} (searched in {path})"
    raise NotFound(name, f"not found in the root filesystem {rootfs}: {where}")


def give(root: Path, mapping: Mapping | None) -> None:
    """Shift every file's owner and group into the mapping's range (None: leave them).

    chown() clears the set-user-ID and set-group-ID bits of a file; they are
    put back, as the container sees them: a set-user-ID root file of the
    image is set-user-ID the container's root.
    """
    if mapping is None:
        return
    for top, dirs, files in os.walk(root):
        for name in ([top] if top == str(root) else []) + [os.path.join(top, n) for n in dirs + files]:
            st = os.lstat(name)
            os.lchown(name, mapping.host_uid(st.st_uid), mapping.host_gid(st.st_gid))
            if not os.path.islink(name) and st.st_mode & 0o6000:
                os.chmod(name, st.st_mode & 0o7777)


def cached(cache: Path, key: str, make: Callable[[Path], None]) -> Path:
    final = cache / "rootfs" / key
    if final.is_dir():
        return final
    import shutil  # a build only: the cached root is the common case
    import tempfile

    try:
        # 0700: a root unpacked by root may hold set-user-ID files; keep other users out.
        os.makedirs(cache, mode=0o700, exist_ok=True)
        os.makedirs(final.parent, mode=0o700, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=final.parent))
    except OSError as exc:
        raise Failed("create cache directory", final.parent, exc) from None
    try:
        os.chmod(work, 0o755)  # the mode of the container's /
        make(work)
        os.rename(work, final)
    except OSError as exc:
        shutil.rmtree(work, ignore_errors=True)
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST) and final.is_dir():
            return final  # another runner finished first
        raise Failed("build root filesystem", final, exc) from None
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return final


def identity(path: Path) -> str:
    """The file as its inode and times name it: a new busybox (a package upgrade writes a new
    file) gets a new image. Not its sha256: that read 2 MB and loaded OpenSSL on every start."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise Failed("stat", path, exc) from None
    return f"{st.st_dev:x}.{st.st_ino:x}.{st.st_size:x}.{st.st_mtime_ns:x}"


def sha256(path: Path) -> str:
    import hashlib  # tarballs only: hashlib loads OpenSSL (5-10 ms)

    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    except OSError as exc:
        raise Failed("read", path, exc) from None
    return digest.hexdigest()
