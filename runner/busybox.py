"""Build the built-in root filesystem: one static busybox, and a link for each applet.

    rootfs/bin/busybox              a copy of the host's static busybox
    rootfs/bin/sh -> /bin/busybox   one symbolic link per applet (`busybox --list-full`)
    rootfs/etc/passwd, etc/group    root, so that `id` and `whoami` have names
    rootfs/proc, dev, tmp, root     mount points and the home directory

A symbolic link's target is resolved when it is used, inside the container,
where /bin/busybox is the copy above. busybox picks the applet from the name
it was called by (argv[0]).
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

from .errors import Failed

PACKAGE = "busybox-static"  # Debian's static busybox: /bin/busybox
CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")
PT_INTERP = 3  # ELF program header naming the dynamic loader the kernel must run first


def find() -> Path:
    """The host's static busybox, or an error that names the package to install."""
    for candidate in CANDIDATES:
        if os.access(candidate, os.X_OK):
            path = Path(candidate)
            if is_dynamic(path):
                raise Failed("use busybox", path, "it is dynamically linked and would need the host's "
                             f"libraries inside the container; install the static one: "
                             f"apt-get install {PACKAGE}")
            return path
    raise Failed("find busybox", " or ".join(CANDIDATES),
                 f"not installed; install it with: apt-get install {PACKAGE}")


def is_dynamic(path: Path) -> bool:
    """Whether an ELF executable has a PT_INTERP header (a static one has none)."""
    with open(path, "rb") as elf:
        head = elf.read(64)
        if head[:4] != b"\x7fELF":
            return False
        is64, order = head[4] == 2, "<" if head[5] == 1 else ">"
        if is64:
            phoff, = struct.unpack_from(order + "Q", head, 32)
            phentsize, phnum = struct.unpack_from(order + "HH", head, 54)
        else:
            phoff, = struct.unpack_from(order + "I", head, 28)
            phentsize, phnum = struct.unpack_from(order + "HH", head, 42)
        elf.seek(phoff)
        table = elf.read(phentsize * phnum)
    return any(struct.unpack_from(order + "I", table, i * phentsize)[0] == PT_INTERP for i in range(phnum))


def applets(busybox: Path) -> list[str]:
    """Where each applet lives, relative to the root: ``bin/sh``, ``usr/bin/env``, ..."""
    import subprocess  # only when the image is built, once

    try:
        out = subprocess.run([str(busybox), "--list-full"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        raise Failed("list applets of", busybox, exc) from None
    return [line.strip() for line in out.splitlines() if line.strip()]


def build(root: Path, busybox: Path) -> None:
    """Fill the empty directory ``root`` with a busybox root filesystem."""
    for directory in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "dev", "root", "tmp"):
        (root / directory).mkdir(parents=True, exist_ok=True)
    os.chmod(root / "tmp", 0o1777)  # sticky, world-writable: every user's /tmp
    os.chmod(root / "root", 0o700)
    import shutil  # only when the image is built (with zlib, bz2 and lzma: ~2.5 ms)

    shutil.copyfile(busybox, root / "bin" / "busybox")
    os.chmod(root / "bin" / "busybox", 0o755)
    for applet in applets(busybox):
        link = root / applet
        if link.name == "busybox" or os.path.lexists(link):
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink("/bin/busybox", link)
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n"
                                         "nobody:x:65534:65534:nobody:/:/bin/false\n")
    (root / "etc" / "group").write_text("root:x:0:\nnogroup:x:65534:\n")
    (root / "etc" / "hosts").write_text("127.0.0.1\tlocalhost\n")
