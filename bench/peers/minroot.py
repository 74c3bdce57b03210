"""The root filesystem of the bash pipeline: a static busybox and three directories.

    ROOT/bin/busybox       a copy of the host's static busybox (runner's own check finds it)
    ROOT/bin/sh, bin/true  links to it: busybox runs the applet named by argv[0]
    ROOT/proc, dev         mount points
    ROOT/.oldroot          where pivot_root puts the old root, detached right after
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def build(root: Path) -> Path:
    from runner.busybox import find  # the same static busybox runner's built-in root uses

    for directory in ("bin", "proc", "dev", ".oldroot", "tmp"):
        (root / directory).mkdir(parents=True, exist_ok=True)
    shutil.copyfile(find(), root / "bin" / "busybox")
    os.chmod(root / "bin" / "busybox", 0o755)
    for applet in ("sh", "true"):
        os.symlink("busybox", root / "bin" / applet)
    return root
