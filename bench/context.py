"""What every case is handed: the options, a scratch directory, the tools, a log."""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .options import Options


def tool(name: str) -> str | None:
    """An executable installed with this Python (the venv's bin), else from PATH."""
    beside = Path(sys.executable).parent / name
    if os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which(name)


@dataclass
class Context:
    options: Options
    workdir: Path  # removed with everything in it when the run ends
    log: Callable[[str], None]

    @property
    def script(self) -> str:
        return str(self.options.script)

    @property
    def netsetter(self) -> str:
        return installed("netsetter")

    @property
    def runner(self) -> str:
        return installed("runner")

    @property
    def runner_cache(self) -> Path:
        """runner's --cache-dir: its busybox root is built here once, and removed with the run."""
        return self.workdir / "runner-cache"


def installed(name: str) -> str:
    """The project's command ``name`` next to this interpreter, or an error saying how to get it."""
    found = tool(name)
    if found is None:
        raise RuntimeError(f"the {name} command is not installed (pip install -e . in the venv)")
    return found
