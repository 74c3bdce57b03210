"""The `netsetter` console script: `netsetter PID` and `netsetter down PID` without typer.

Importing typer costs a `netsetter PID` ~65 ms of its ~250 (issue 12). A plain
`netsetter [up] [OPTIONS] PID` or `netsetter down [OPTIONS] PID|IFNAME` is
parsed here, from the tables below (nskit.argv), and runs the command's body
(netsetter.commands) at once. Anything else - another command, `--help`, an option
these tables do not know, a pid that starts with '-', a second argument - goes to
the typer CLI (netsetter.cli), the one place that defines the options, prints help
and words usage errors. tests/test_netsetter_launch.py holds the tables to typer's
own parse.
"""

from __future__ import annotations

import sys

from nskit.argv import Table
from nskit.errors import ExitStatus

from . import commands

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import Any

# netsetter.cli.up's options: option -> (parameter, kind); a flag -> (parameter, its value).
UP = Table(
    values={
        "--bridge": ("bridge", "str"), "--bridge-mac": ("bridge_mac", "str"),
        "--bridge-addr": ("bridge_addr", "str"), "--veth-host": ("veth_host", "str"),
        "--veth-container": ("veth_container", "str"), "--container-addr": ("container_addr", "str"),
        "--gateway": ("gateway", "str"), "--backend": ("backend", "str"),
        "--publish": ("publish", "list"), "-p": ("publish", "list"),
    },
    flags={"--masquerade": ("masquerade", True), "--dry-run": ("dry_run", True), "--json": ("as_json", True),
           "--debug": ("debug", True)},
    defaults={"bridge": None, "bridge_mac": None, "bridge_addr": None, "veth_host": None,
              "veth_container": None, "container_addr": None, "gateway": None, "backend": None,
              "masquerade": False, "publish": [], "dry_run": False, "as_json": False, "debug": False},
)
# netsetter.cli.down_cmd's.
DOWN = Table(
    values={"--veth-host": ("veth_host", "str"), "--veth-container": ("veth_container", "str"),
            "--backend": ("backend", "str")},
    flags={"--bridge": ("bridge", True), "--json": ("as_json", True), "--debug": ("debug", True)},
    defaults={"bridge": False, "veth_host": None, "veth_container": None, "backend": None,
              "as_json": False, "debug": False},
)
NET_VALUES = ("bridge", "bridge_mac", "bridge_addr", "veth_host", "veth_container", "container_addr", "gateway")
COMMANDS = ("up", "down", "ls", "gc", "compare")  # the typer CLI's; any other first word is up's


def parse(args: list[str]) -> tuple[str, dict[str, Any]] | None:
    """("up" or "down", that command's parameters) for ``args``, or None when typer must
    parse them."""
    if not args or args[0] in ("--help", "-h"):
        return None
    command, words = (args[0], args[1:]) if args[0] in COMMANDS else ("up", args)
    table = {"up": UP, "down": DOWN}.get(command)
    if table is None:
        return None
    params = table.parse(words, positional="pid" if command == "up" else "target")
    if params is None:
        return None
    if command == "up" and params["publish"] == []:
        params["publish"] = None
    return command, params


def run(command: str, params: dict[str, Any]) -> int:
    """Run ``command`` with the parameters :func:`parse` gave; its exit status."""
    p = dict(params)
    debug, as_json, backend = bool(p.pop("debug")), bool(p.pop("as_json")), p.pop("backend")
    if command == "down":
        target, bridge = str(p.pop("target")), bool(p.pop("bridge"))
        values = {k: p.pop(k) for k in ("veth_host", "veth_container")}
        return commands.guard(debug, lambda: commands.down(target, bridge, values, backend, as_json))
    pid = str(p.pop("pid"))
    values = {k: p.pop(k) for k in NET_VALUES}
    if p["dry_run"]:
        return commands.guard(debug, lambda: commands.dry_run(pid, values))
    return commands.up(pid, values, backend=backend, as_json=as_json, debug=debug,
                       masquerade=bool(p["masquerade"]), publish=p["publish"] or [])


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    parsed = parse(args)
    if parsed is None:
        from .cli import main as typer_main

        return typer_main(args)
    try:
        status = run(*parsed)
    except BrokenPipeError:  # stdout a closed pipe (`netsetter PID | head -0`): as typer ends it, 1 and no word
        return ExitStatus.FAILURE
    if status == ExitStatus.INTERRUPTED:  # as the typer CLI: an interrupted body is said once, by the boundary
        raise KeyboardInterrupt
    return status
