"""The bodies of netsetter's commands: one call into the core each, rendered; no typer.

Both parsers call them: the typer CLI (netsetter.cli: every command, help, usage
errors) and the plain-line launcher (netsetter.launch: `netsetter PID` and
`netsetter down PID` without importing typer). Each returns the exit status; a
domain error is one line on stderr through :func:`guard` (a traceback only with
--debug). Heavy modules (sh, pyroute2, rich) are imported by the body that uses them.
"""

from __future__ import annotations

import os
import sys

from nskit import boundary
from nskit.boundary import fail
from nskit.errors import ExitStatus, NsError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Callable, Optional


def guard(debug: bool, action: Callable[[], int]) -> int:
    """Run one command body (nskit.boundary.guard): a domain error is one line and its exit status."""
    return boundary.guard("netsetter", debug, action)


def up(pid: str, values: dict[str, Optional[str]], *, backend: Optional[str], as_json: bool,
       debug: bool, masquerade: bool = False, publish: list[str] | None = None) -> int:
    """`netsetter PID`: the script's steps, shown as they run (or one JSON result)."""
    from backends import open_backend, resolve

    from .config import NetConfig
    from .engine import Reporter, plan, setup
    from .errors import StepFailed
    from .host.nat import PortMap
    from .report import PlainReporter, RichReporter

    result = None
    reporter: Reporter | None
    try:
        config = NetConfig.build(**values)
        ports = [PortMap.parse(p) for p in publish or []]
        name = resolve(backend)
        if as_json:
            reporter = None
        elif sys.stdout.isatty():
            from rich.console import Console

            reporter = RichReporter(Console())
        else:
            reporter = PlainReporter(sys.stdout)
        with open_backend(name) as chosen:
            result = setup(pid, config, chosen, reporter=reporter, masquerade=masquerade, publish=ports)
    except NsError as exc:
        if debug:
            raise
        result = exc.result if isinstance(exc, StepFailed) else None
        if as_json:
            if result is None:
                # Refused before any step: show the plan that did not run.
                try:
                    _, result = plan(None, NetConfig.build(**values), backend or "")
                except NsError:
                    result = None
            data = result.as_dict() if result else {"outcome": "failed", "steps": []}
            data.update(outcome="failed", error=str(exc))
            print_json(data)
        return fail("netsetter", exc)
    if as_json:
        print_json(result.as_dict())
    return ExitStatus.OK


def dry_run(pid: str, values: dict[str, Optional[str]]) -> int:
    """`netsetter PID --dry-run`: the steps as a bash script; nothing changes."""
    from .config import NetConfig
    from .dryrun import render
    from .target import parse_pid

    config = NetConfig.build(**values)
    sys.stdout.write(render(parse_pid(pid), config))
    return ExitStatus.OK


def down(target: str, bridge: bool, values: dict[str, Optional[str]], backend: Optional[str],
         as_json: bool) -> int:
    """`netsetter down PID|IFNAME`: what `netsetter PID` made, removed."""
    from backends import open_backend

    from .config import NetConfig
    from .host import teardown

    config = NetConfig.build(**values)
    with open_backend(backend) as chosen:
        result = teardown.down(target, config, chosen, bridge=bridge)
    if as_json:
        print_json(result.as_dict())
        return ExitStatus.OK
    for line in result.actions + result.notes:
        print(f"netsetter down {target}: {line}")
    if not result.changed:
        print(f"netsetter down {target}: nothing to do")
    return ExitStatus.OK


def ls(as_json: bool) -> int:
    """`netsetter ls`: the bridges, their ports and containers, and NAT."""
    from .host.topology import render, topology

    view = topology()
    if as_json:
        print_json(view)
    else:
        from rich.console import Console

        Console().print(render(view))
    return ExitStatus.OK


def gc(as_json: bool) -> int:
    """`netsetter gc`: the state kept for what is gone, removed and said."""
    from .host import gc as host_gc
    from .target import check_privileges

    check_privileges()
    removed = host_gc.gc()
    if as_json:
        print_json({"removed": removed})
        return ExitStatus.OK
    for line in removed or ["nothing to remove"]:
        print(f"netsetter gc: {line}")
    return ExitStatus.OK


def compare(script: Optional[Path], backend: str, values: dict[str, Optional[str]], as_json: bool,
            time_limit: float) -> int:
    """`netsetter compare`: the original script and the port, state by state."""
    from pathlib import Path

    from backends import NAMES, resolve
    from nskit.errors import UsageError

    from .compare import comparison, report
    from .config import NetConfig
    from .target import check_privileges

    config = NetConfig.build(**values)
    path = script or (Path(os.environ["NETSETTER_SCRIPT"]) if os.environ.get("NETSETTER_SCRIPT") else None)
    if path is None:
        raise UsageError("script", "", "give the original script with --script PATH or $NETSETTER_SCRIPT")
    backends = list(NAMES) if backend == "all" else [resolve(backend)]
    check_privileges()
    compared = comparison.compare(path.resolve(), backends, config, time_limit=time_limit)
    if as_json:
        print_json(compared.as_dict())
    elif sys.stdout.isatty():
        from rich.console import Console

        report.rich(compared, Console())
    else:
        report.plain(compared, sys.stdout)
    return ExitStatus.OK if compared.same else ExitStatus.FAILURE


def print_json(data: object) -> None:
    import json

    print(json.dumps(data, indent=2))
