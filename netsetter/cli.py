"""The `netsetter` command: parse, make one call into the core, render.

``netsetter PID`` is short for ``netsetter up PID``. Domain errors become one
line on stderr and an exit status (see :class:`netsetter.errors.ExitStatus`);
a traceback only with ``--debug``.
"""

from __future__ import annotations

import json
import sys
from typing import Optional

import typer

from .config import DEFAULTS
from .errors import ExitStatus, NetsetterError

HELP = """Give the network namespace of a running process a network, as netsetter.sh does.

In the namespace netsetter runs in (the host), it makes or reuses the bridge
brg-demo (12:34:56:a1:b2:c3, 10.10.10.100/24) and a veth pair veth_host/veth_conta,
puts veth_host on the bridge and moves veth_conta into the netns of PID; through
/var/run/netns/PID, exposed only while it works, it gives veth_conta 10.10.10.101/24,
brings it and lo up, and adds a default route via 10.10.10.100.
"""

app = typer.Typer(help=HELP, add_completion=False, no_args_is_help=True,
                  pretty_exceptions_enable=False, rich_markup_mode=None)
COMMANDS = ("up",)


@app.callback()
def _group() -> None:
    """netsetter PID is short for netsetter up PID."""


def _opt(key: str, help_: str, metavar: str):  # type: ignore[no-untyped-def]
    return typer.Option(None, f"--{key.replace('_', '-')}", help=f"{help_} [default: {DEFAULTS[key]}]",
                        metavar=metavar, show_default=False)


# Unknown options are let through so that a negative pid ("-1") reaches the pid check;
# they are then refused by name below.
@app.command("up", context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
             help="Set up the network of PID's netns, step by step (the default command).")
def up(
    ctx: typer.Context,
    pid: str = typer.Argument(..., help="A process in its own network namespace (for example started "
                                        "with `unshare --net`).", metavar="PID", show_default=False),
    bridge: Optional[str] = _opt("bridge", "Bridge name.", "NAME"),
    bridge_mac: Optional[str] = _opt("bridge_mac", "Bridge MAC address.", "MAC"),
    bridge_addr: Optional[str] = _opt("bridge_addr", "Bridge address/prefix.", "ADDR/LEN"),
    veth_host: Optional[str] = _opt("veth_host", "Host end of the veth pair.", "NAME"),
    veth_container: Optional[str] = _opt("veth_container", "Container end of the veth pair.", "NAME"),
    container_addr: Optional[str] = _opt("container_addr", "Container address/prefix.", "ADDR/LEN"),
    gateway: Optional[str] = typer.Option(None, "--gateway", metavar="ADDR", show_default=False,
                                          help="Container's default gateway [default: the bridge's address]"),
    backend: Optional[str] = typer.Option(None, "--backend", metavar="ip|netlink", show_default=False,
                                          help="ip: the ip binary, one process per script line; netlink: "
                                               "pyroute2, no process. [default: $NETSETTER_BACKEND, else ip]"),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON result instead of the steps."),
    debug: bool = typer.Option(False, "--debug", help="Show a traceback on errors."),
) -> None:
    for arg in [pid, *ctx.args]:
        if arg.startswith("-") and not arg.lstrip("-").isdigit():
            _fail(f"no such option: {arg} (see netsetter up --help)", ExitStatus.USAGE)
    if ctx.args:
        _fail(f"unexpected argument: {ctx.args[0]} (netsetter takes one PID)", ExitStatus.USAGE)
    code = run_up(pid, dict(bridge=bridge, bridge_mac=bridge_mac, bridge_addr=bridge_addr,
                            veth_host=veth_host, veth_container=veth_container,
                            container_addr=container_addr, gateway=gateway),
                  backend=backend, as_json=as_json, debug=debug)
    raise typer.Exit(code)


def run_up(pid: str, values: dict[str, Optional[str]], *, backend: Optional[str], as_json: bool,
           debug: bool) -> int:
    from backends import open_backend, resolve

    from .config import NetConfig
    from .engine import plan, setup
    from .report import PlainReporter, RichReporter

    result = None
    try:
        config = NetConfig.build(**values)
        name = resolve(backend)
        if as_json:
            reporter = None
        elif sys.stdout.isatty():
            from rich.console import Console

            reporter = RichReporter(Console())
        else:
            reporter = PlainReporter(sys.stdout)
        with open_backend(name) as chosen:
            result = setup(pid, config, chosen, reporter=reporter)
    except NetsetterError as exc:
        if debug:
            raise
        result = getattr(exc, "result", None)
        if as_json:
            if result is None:
                # Refused before any step: show the plan that did not run.
                try:
                    _, result = plan(None, NetConfig.build(**values), backend or "")
                except NetsetterError:
                    result = None
            data = result.as_dict() if result else {"outcome": "failed", "steps": []}
            data.update(outcome="failed", error=str(exc))
            print_json(data)
        print(f"netsetter: error: {exc}", file=sys.stderr)
        return exc.exit_status
    if as_json:
        print_json(result.as_dict())
    return ExitStatus.OK


def _fail(message: str, status: int) -> None:
    print(f"netsetter: error: {message}", file=sys.stderr)
    raise typer.Exit(status)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] not in COMMANDS and args[0] not in ("--help", "-h"):
        args.insert(0, "up")
    command = typer.main.get_command(app)
    try:
        status = command.main(args, prog_name="netsetter", standalone_mode=False)
        return status if isinstance(status, int) else ExitStatus.OK
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        return ExitStatus.INTERRUPTED
    except typer.TyperException as exc:  # bad usage, found by the parser
        if getattr(exc, "ctx", None) is not None and not args:
            print(exc.ctx.get_help())
            return ExitStatus.USAGE
        print(f"netsetter: error: {exc.format_message()}", file=sys.stderr)
        return ExitStatus.USAGE
    except NetsetterError as exc:
        print(f"netsetter: error: {exc}", file=sys.stderr)
        return exc.exit_status


def print_json(data: object) -> None:
    print(json.dumps(data, indent=2))
