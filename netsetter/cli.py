"""The `netsetter` command's typer CLI: every command's options, help and usage errors.

``netsetter PID`` is short for ``netsetter up PID``. The commands' bodies are
:mod:`netsetter.commands` (one call into the core each, rendered); a plain
`netsetter PID` or `netsetter down PID` is parsed by :mod:`netsetter.launch`
without importing typer, from a table that tests hold to the options here.
Domain errors become one line on stderr and an exit status (see
:class:`nskit.errors.ExitStatus`); a traceback only with ``--debug``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from nskit.errors import ExitStatus

from . import commands
from .config import DEFAULTS

HELP = """Give the network namespace of a running process a network, as netsetter.sh does.

In the namespace netsetter runs in (the host), it makes or reuses the bridge
brg-demo (12:34:56:a1:b2:c3, 10.10.10.100/24) and a veth pair veth_host/veth_conta,
puts veth_host on the bridge and moves veth_conta into the netns of PID; through
/var/run/netns/PID, exposed only while it works, it gives veth_conta 10.10.10.101/24,
brings it and lo up, and adds a default route via 10.10.10.100.
"""

app = typer.Typer(help=HELP, add_completion=False, no_args_is_help=True,
                  pretty_exceptions_enable=False, rich_markup_mode=None)
COMMANDS = ("up", "down", "ls", "gc", "compare")


def _opt(key: str, help_: str, metavar: str) -> Any:
    return typer.Option(f"--{key.replace('_', '-')}", help=f"{help_} [default: {DEFAULTS[key]}]",
                        metavar=metavar, show_default=False)


# The script's hard-coded values, one option each; None means the script's default.
Bridge = Annotated[Optional[str], _opt("bridge", "Bridge name.", "NAME")]
BridgeMac = Annotated[Optional[str], _opt("bridge_mac", "Bridge MAC address.", "MAC")]
BridgeAddr = Annotated[Optional[str], _opt("bridge_addr", "Bridge address/prefix.", "ADDR/LEN")]
VethHost = Annotated[Optional[str], _opt("veth_host", "Host end of the veth pair; auto: veth_host, or "
                                                      "veth_h<pid> when taken.", "NAME|auto")]
VethContainer = Annotated[Optional[str], _opt("veth_container", "Container end of the veth pair; auto: "
                                                                "veth_conta, or veth_c<pid> when taken.",
                                              "NAME|auto")]
ContainerAddr = Annotated[Optional[str], _opt("container_addr", "Container address/prefix; auto: the first "
                                                                "free address of the bridge's subnet from .101 "
                                                                "on.", "ADDR/LEN|auto")]
Gateway = Annotated[Optional[str], typer.Option("--gateway", metavar="ADDR", show_default=False,
                                                help="Container's default gateway [default: the bridge's address]")]
AsJson = Annotated[bool, typer.Option("--json", help="Print one JSON result instead of the table.")]
Masquerade = Annotated[bool, typer.Option("--masquerade", help="Let the container reach beyond the bridge: "
                                                               "forwarding on, and the bridge's subnet "
                                                               "masqueraded as the host (iptables).")]
Publish = Annotated[Optional[list[str]], typer.Option(
    "--publish", "-p", metavar="HOSTPORT:CONTAINERPORT", show_default=False,
    help="Forward a TCP port of the host to the container (repeatable).")]
Debug = Annotated[bool, typer.Option("--debug", help="Show a traceback on errors.")]


@app.callback()
def _group() -> None:
    """netsetter PID is short for netsetter up PID."""


# Unknown options are let through so that a negative pid ("-1") reaches the pid check;
# they are then refused by name below.
@app.command("up", context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
             help="Set up the network of PID's netns, step by step (the default command).")
def up(
    ctx: typer.Context,
    pid: Annotated[str, typer.Argument(help="A process in its own network namespace (for example "
                                            "started with `unshare --net`).", metavar="PID",
                                       show_default=False)],
    bridge: Bridge = None, bridge_mac: BridgeMac = None, bridge_addr: BridgeAddr = None,
    veth_host: VethHost = None, veth_container: VethContainer = None,
    container_addr: ContainerAddr = None, gateway: Gateway = None,
    backend: Annotated[Optional[str], typer.Option(
        "--backend", metavar="ip|netlink|rtnl", show_default=False,
        help="ip: the ip binary, one process per script line; netlink: pyroute2, no process; "
             "rtnl: rtnetlink on a raw socket, standard library only. "
             "[default: $NETSETTER_BACKEND, else ip]")] = None,
    masquerade: Masquerade = False, publish: Publish = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the steps as a bash script; change "
                                                            "nothing.")] = False,
    as_json: AsJson = False, debug: Debug = False,
) -> None:
    for arg in [pid, *ctx.args]:
        if arg.startswith("-") and not arg.lstrip("-").isdigit():
            _fail(f"no such option: {arg} (see netsetter up --help)", ExitStatus.USAGE)
    if ctx.args:
        _fail(f"unexpected argument: {ctx.args[0]} (netsetter takes one PID)", ExitStatus.USAGE)
    values = dict(bridge=bridge, bridge_mac=bridge_mac, bridge_addr=bridge_addr, veth_host=veth_host,
                  veth_container=veth_container, container_addr=container_addr, gateway=gateway)
    if dry_run:
        raise typer.Exit(commands.guard(debug, lambda: commands.dry_run(pid, values)))
    raise typer.Exit(commands.up(pid, values, backend=backend, as_json=as_json, debug=debug,
                            masquerade=masquerade, publish=publish or []))


@app.command("down", help="Remove what `netsetter PID` made for a container: its host veth end (the "
                          "container end goes with it), its /var/run/netns entry and its record. The "
                          "bridge stays, for other containers, unless --bridge is given.")
def down_cmd(
    target: Annotated[str, typer.Argument(metavar="PID|IFNAME", show_default=False,
                                          help="The container's pid, or one of its interface names "
                                               "(the process may be gone).")],
    bridge: Annotated[bool, typer.Option("--bridge", help="Also delete the bridge, if no other port "
                                                          "remains on it.")] = False,
    veth_host: VethHost = None, veth_container: VethContainer = None,
    backend: Annotated[Optional[str], typer.Option(
        "--backend", metavar="ip|netlink|rtnl", show_default=False,
        help="[default: $NETSETTER_BACKEND, else ip]")] = None,
    as_json: AsJson = False, debug: Debug = False,
) -> None:
    values = dict(veth_host=veth_host, veth_container=veth_container)
    raise typer.Exit(commands.guard(debug, lambda: commands.down(target, bridge, values, backend, as_json)))


@app.command("ls", help="Show the bridges of this host, their ports and the containers on them (pid, "
                        "interfaces, address, lease, alive or stale), and NAT: the article's network figure.")
def ls_cmd(as_json: AsJson = False, debug: Debug = False) -> None:
    raise typer.Exit(commands.guard(debug, lambda: commands.ls(as_json)))


@app.command("gc", help="Remove the state netsetter kept for namespaces and processes that are gone: "
                        "folders of namespaces that no longer exist, records, leases and NAT rules of "
                        "processes that exited, /var/run/netns entries it made that lead nowhere. "
                        "Says what it removed.")
def gc_cmd(as_json: AsJson = False, debug: Debug = False) -> None:
    raise typer.Exit(commands.guard(debug, lambda: commands.gc(as_json)))


@app.command("compare", help="Run the original script and the port in throwaway sandboxes and compare the "
                             "state after every command, side by side.")
def compare_cmd(
    script: Annotated[Optional[Path], typer.Option(
        "--script", metavar="PATH", show_default=False,
        help="The original netsetter.sh (or a variant). [default: $NETSETTER_SCRIPT]")] = None,
    backend: Annotated[str, typer.Option("--backend", metavar="ip|netlink|rtnl|all",
                                         help="The port's backend(s) to compare.")] = "all",
    bridge: Bridge = None, bridge_mac: BridgeMac = None, bridge_addr: BridgeAddr = None,
    veth_host: VethHost = None, veth_container: VethContainer = None,
    container_addr: ContainerAddr = None, gateway: Gateway = None,
    time_limit: Annotated[float, typer.Option(
        "--time-limit", metavar="SECONDS",
        help="Kill the script's sandbox, or a backend's, when it runs longer.")] = 30.0,
    as_json: AsJson = False, debug: Debug = False,
) -> None:
    values = dict(bridge=bridge, bridge_mac=bridge_mac, bridge_addr=bridge_addr, veth_host=veth_host,
                  veth_container=veth_container, container_addr=container_addr, gateway=gateway)
    raise typer.Exit(commands.guard(debug, lambda: commands.compare(script, backend, values, as_json,
                                                                   time_limit)))


def _fail(message: str, status: int) -> None:
    print(f"netsetter: error: {message}", file=sys.stderr)
    raise typer.Exit(status)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        args = ["--help"]
    if args[0] not in COMMANDS and args[0] not in ("--help", "-h"):
        args.insert(0, "up")
    command = typer.main.get_command(app)
    try:
        status = command.main(args, prog_name="netsetter", standalone_mode=False)
        status = status if isinstance(status, int) else ExitStatus.OK
    except typer.Exit as exc:
        status = exc.exit_code
    except typer.Abort:  # click's word for Ctrl-C: the boundary (nskit.boundary) says it
        raise KeyboardInterrupt from None
    except typer.TyperException as exc:  # bad usage, found by the parser
        print(f"netsetter: error: {exc.format_message()}", file=sys.stderr)
        return ExitStatus.USAGE
    if status == ExitStatus.INTERRUPTED:  # typer turns Ctrl-C into exit status 130: say it, once
        raise KeyboardInterrupt
    return status


def run() -> None:
    """A console script installed before :mod:`netsetter.__main__` was the entry point."""
    from .__main__ import run as entry

    entry()
