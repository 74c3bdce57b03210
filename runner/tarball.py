"""Unpack a root filesystem tarball without letting it write outside its directory.

A tarball is data from elsewhere (an Alpine minirootfs, a `docker export`).
Each member is checked before it is written, and refused when:

- its name is absolute or has a ``..`` component;
- its path goes through, or replaces, a symbolic link unpacked before it:
  writing ``etc/passwd`` after a link ``etc -> /etc`` would write the host's;
- it is a symbolic link whose target climbs above the root. An absolute
  target is fine: it is read inside the container, where / is this root;
- it is a hard link to anything but a regular file unpacked before it
  (link() follows a symbolic link, so it could reach a host file).

Device files are skipped: the container gets a fresh /dev at start, and an
unprivileged user could not make them anyway. Owners are taken by number
(``numeric_owner``): the names in the tarball belong to its own /etc/passwd,
not the host's. Only root can give files to other owners; others own all.
"""

from __future__ import annotations

import posixpath
import tarfile
from pathlib import Path

from .errors import Failed

SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.bz2", ".tbz2")


def is_tarball(path: Path) -> bool:
    return path.name.endswith(SUFFIXES) or (path.is_file() and tarfile.is_tarfile(path))


def unpack(archive: Path, root: Path) -> None:
    """Unpack ``archive`` into the empty directory ``root``, or raise :class:`Failed` naming the member."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            # extractall() sets the modes of directories last, so that a read-only
            # directory (Alpine's /proc is 0555) does not stop its own contents.
            tar.extractall(root, numeric_owner=True, filter=Checker())
    except (tarfile.TarError, OSError) as exc:
        raise Failed("unpack", archive, exc) from None


class Checker:
    """tarfile's filter: decides member by member, remembering what was unpacked before."""

    def __init__(self) -> None:
        self.symlinks: set[str] = set()
        self.files: set[str] = set()

    def __call__(self, member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
        """``member`` to unpack it, None to skip it; :class:`Unsafe` refuses the whole tarball."""
        name = host_path(member.name, member.name, "has")
        if name == ".":
            return None
        for path in (name, *parents(name)):
            if path in self.symlinks:
                raise Unsafe(member.name, f"goes through the symbolic link {path!r} unpacked before it")
        if member.ischr() or member.isblk():
            return None
        if member.issym():
            # Resolved lexically as the container will: from the link's directory,
            # or from the root for an absolute target.
            base = "" if member.linkname.startswith("/") else posixpath.dirname(name)
            target = posixpath.normpath(posixpath.join(base, member.linkname.lstrip("/")) or ".")
            if target == ".." or target.startswith("../"):
                raise Unsafe(member.name, f"links to {member.linkname!r}, which is outside the root")
            self.symlinks.add(name)
        elif member.islnk():
            target = host_path(member.linkname, member.name, "links to")
            if target not in self.files:
                raise Unsafe(member.name, f"is a hard link to {member.linkname!r}, "
                                          "which is not a regular file unpacked before it")
            self.files.add(name)
        elif member.isfile():
            self.files.add(name)
        return member


class Unsafe(tarfile.TarError):
    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"refused member {name!r}: it {reason}")


def host_path(path: str, name: str, verb: str) -> str:
    """A path tarfile opens on the host, normalised; neither absolute nor with a ``..``.

    ``..`` is refused anywhere, not only where it climbs out: with ``a`` a
    symbolic link, ``a/../b`` would be resolved on the host through it.
    """
    if path.startswith("/"):
        raise Unsafe(name, f"{verb} an absolute path {path!r}")
    if ".." in path.split("/"):
        raise Unsafe(name, f"{verb} a path with '..': {path!r}")
    return posixpath.normpath(path or ".")


def parents(name: str) -> list[str]:
    """``a/b/c`` -> ``a``, ``a/b``."""
    parts = name.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]
