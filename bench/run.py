"""One benchmark run: every chosen group in turn, then the targets.

    check: root, and the tools every group needs (ip, bash, unshare, nsenter)
    byte-code for the project's modules, as ./dev.sh writes it at install
    make a scratch directory (runner's cache, CNI state, the pipeline's root)
    for each group a-g: its rows (a group that fails becomes one error row)
    judge the targets of issue 8 on the rows
    remove the scratch directory; report any sandbox left behind (there should be none)

A KeyboardInterrupt (Ctrl-C, or SIGTERM turned into one by the CLI) runs
every cleanup on its way out: each sandbox is removed by the ``with`` that
made it, each process killed by whoever started it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from . import machine, sandboxes, system, targets
from .cases import module
from .context import Context
from .options import Options
from .results import GROUPS, Row, Run


class CannotRun(RuntimeError):
    pass


def preflight(options: Options) -> None:
    if os.geteuid() != 0:
        raise CannotRun("run the benchmark as root: it makes network namespaces and containers")
    for binary in ("ip", "bash", "unshare", "nsenter"):
        if shutil.which(binary) is None:
            raise CannotRun(f"{binary} not found on PATH")


PROJECT = Path(__file__).resolve().parent.parent


def compile_project(root: Path = PROJECT) -> None:
    """Byte-code for the project's packages, where missing or stale, as ./dev.sh writes it at install.

    The commands under test import from this checkout (PYTHONPATH or the editable
    install). A checkout without __pycache__ (a new worktree, PYTHONDONTWRITEBYTECODE)
    would have every timed command compile its modules again: ~50 of them, about
    80 ms of a `runner start`, a cost no installed command pays.
    """
    import compileall
    import py_compile

    for package in sorted(p.parent for p in root.glob("*/__init__.py")):
        if package.name != "tests":
            compileall.compile_dir(package, quiet=1, invalidation_mode=py_compile.PycInvalidationMode.TIMESTAMP)


def run_all(options: Options, log: Callable[[str], None], debug: bool = False,
            advance: Callable[[str], None] | None = None) -> Run:
    """Run the chosen groups; ``log`` takes each progress line, ``advance`` is told
    the name of each group as it ends (the terminal's progress bar)."""
    preflight(options)
    compile_project()
    system.raise_open_files()
    result = Run(machine=machine.describe(), options=options.as_dict())
    started = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="ns-proc-bench-"))
    # o+x, not o+r: runner's unprivileged container root must pass through to runner-cache/.
    workdir.chmod(0o711)
    ctx = Context(options=options, workdir=workdir, log=log)
    try:
        for group in options.groups:
            log(f"{GROUPS[group]} ...")
            group_started = time.perf_counter()
            try:
                result.rows.extend(module(group).run(ctx))
            except Exception as exc:  # noqa: BLE001 - one broken group must not lose the others
                if debug:
                    traceback.print_exc()
                result.rows.append(Row(f"{group}/failed", GROUPS[group], error=f"{type(exc).__name__}: {exc}"))
            log(f"{GROUPS[group]}: done in {time.perf_counter() - group_started:.1f} s")
            if advance is not None:
                advance(GROUPS[group])
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        result.leftovers = sandboxes.leftovers()
        result.seconds = time.perf_counter() - started
    result.verdicts = targets.judge(result)
    return result
