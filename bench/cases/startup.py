"""e. Start-up: what a user waits for before the CLI does anything.

    python        python -c pass                   (the interpreter alone, for scale)
    netsetter-help, runner-help   `netsetter --help`, `runner --help` wall time
    netsetter-dry-run             `netsetter PID --dry-run`: the options parsed as for a
                  real run (by netsetter.launch, without typer), the plan printed, nothing
                  changed: start-up without the network
    import-netsetter.cli, import-runner.cli
                  python -X importtime -c 'import M': the cumulative import
                  time of M as Python reports it (µs, on stderr)

`netsetter --help` and `netsetter PID --dry-run` are also run once with
PYTHONPROFILEIMPORTTIME=1, which makes Python list every module it imports:
the rows say whether pyroute2, sh, pydantic (typer >= 0.29 parses options
through it) or the netsetter engine were among them, and the slowest
imports of `netsetter.cli` are kept in the row's extra data (the profile
behind a miss).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

from ..context import Context
from ..results import Row
from ..timing import interleave
from .commands import timed

LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)$")
HEAVY = ("pyroute2", "sh", "rich", "typer", "pydantic", "netsetter.engine", "backends.iproute", "backends.netlink")


def import_profile(argv: list[str]) -> list[tuple[str, int, int, int]]:
    """(module, self µs, cumulative µs, depth) for every import of running ``argv``."""
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)
    found = []
    for line in proc.stderr.splitlines():
        match = LINE.match(line)
        if match:
            found.append((match[4], int(match[1]), int(match[2]), len(match[3]) // 2))
    return found


def import_time(module: str) -> float:
    """Seconds Python reports for importing ``module`` (cumulative, with what it imports)."""
    for name, _, cumulative, _ in import_profile([sys.executable, "-X", "importtime", "-c", f"import {module}"]):
        if name == module:
            return cumulative / 1e6
    raise RuntimeError(f"python -X importtime did not report {module}")


def imported(modules: list[str], top: str) -> bool:
    return any(m == top or m.startswith(top + ".") for m in modules)


def run(ctx: Context) -> list[Row]:
    dry_run = [ctx.netsetter, str(os.getpid()), "--dry-run"]
    variants = {
        "python": lambda: timed([sys.executable, "-c", "pass"]),
        "netsetter-help": lambda: timed([ctx.netsetter, "--help"]),
        "runner-help": lambda: timed([ctx.runner, "--help"]),
        "netsetter-dry-run": lambda: timed(dry_run),
        "import-netsetter.cli": lambda: import_time("netsetter.cli"),
        "import-runner.cli": lambda: import_time("runner.cli"),
    }
    outcomes = interleave(variants, ctx.options.runs, ctx.options.warmup, lambda msg: ctx.log(f"e. start-up: {msg}"))
    help_imports = [m for m, *_ in import_profile([ctx.netsetter, "--help"])]
    dry_imports = [m for m, *_ in import_profile(dry_run)]
    slowest = sorted(import_profile([sys.executable, "-X", "importtime", "-c", "import netsetter.cli"]),
                     key=lambda m: -m[1])[:10]
    found = {name: imported(help_imports, name) for name in HEAVY}
    verdict = ", ".join(f"{name} {'yes' if found[name] else 'no'}" for name in ("pyroute2", "sh"))
    return [
        Row.of("startup/python", "python -c pass (the interpreter alone)", outcomes["python"]),
        Row.of("startup/netsetter-help", "netsetter --help", outcomes["netsetter-help"],
               note=f"imports {verdict}",
               extra={"imports": found, "modules_imported": len(help_imports)}),
        Row.of("startup/runner-help", "runner --help", outcomes["runner-help"]),
        Row.of("startup/netsetter-dry-run", "netsetter PID --dry-run (options parsed, nothing done)",
               outcomes["netsetter-dry-run"],
               note="imports " + ", ".join(f"{m} {'yes' if imported(dry_imports, m) else 'no'}"
                                           for m in ("typer", "pydantic", "pyroute2", "sh")),
               extra={"imports": {name: imported(dry_imports, name) for name in HEAVY},
                      "modules_imported": len(dry_imports)}),
        Row.of("startup/import-netsetter.cli", "import netsetter.cli (python -X importtime)",
               outcomes["import-netsetter.cli"],
               extra={"slowest_self_ms": {name: round(us / 1000, 1) for name, us, _, _ in slowest}}),
        Row.of("startup/import-runner.cli", "import runner.cli (python -X importtime)",
               outcomes["import-runner.cli"]),
    ]
