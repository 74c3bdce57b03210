"""Which directory becomes the container's root, built or unpacked once into a cache.

    --rootfs DIR              that directory, used in place
    --rootfs FILE.tar[.gz]    unpacked once into CACHE/rootfs/tar-<sha256 of the file>
    (none)                    built once into CACHE/rootfs/busybox-<sha256 of busybox>

CACHE is ``--cache-dir`` (or $RUNNER_CACHE_DIR); else /var/cache/ns-proc for
root, and $XDG_CACHE_HOME/ns-proc (~/.cache/ns-proc) for other users, who
must own what their containers' root maps to. A root is made in a
temporary directory next to its final name and renamed into place: rename()
is atomic, so two runners starting at once never see half a root, and the
loser of the race throws its copy away.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from . import busybox, tarball
from .errors import Failed, UsageError

LAYOUT = 1  # bump when busybox.build() changes, so that old cached roots are not reused


def cache_dir(override: Path | None = None) -> Path:
    if override is not None:
        return override
    if os.geteuid() == 0:
        return Path("/var/cache/ns-proc")
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "ns-proc"


def prepare(rootfs: str | None, cache: Path) -> Path:
    """The directory to pivot into, made first if it is not in the cache yet."""
    if rootfs is None:
        bb = busybox.find()
        return cached(cache, f"busybox-{sha256(bb)[:16]}-{LAYOUT}", lambda root: busybox.build(root, bb))
    path = Path(rootfs).absolute()
    if path.is_dir():
        return path
    if not path.exists():
        raise UsageError("--rootfs", rootfs, "does not exist")
    if not tarball.is_tarball(path):
        raise UsageError("--rootfs", rootfs, "is neither a directory nor a tar archive")
    return cached(cache, f"tar-{sha256(path)[:16]}", lambda root: tarball.unpack(path, root))


def cached(cache: Path, key: str, make: Callable[[Path], None]) -> Path:
    final = cache / "rootfs" / key
    if final.is_dir():
        return final
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


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    except OSError as exc:
        raise Failed("read", path, exc) from None
    return digest.hexdigest()
