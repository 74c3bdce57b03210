"""The `runner` command: parse, make one call into the runner, render.

``runner start [OPTIONS] [-- CMD [ARGS]...]``. The exit status is the
command's (128+N when signal N ended it); runner's own failures are one line
on stderr and the statuses in :class:`nskit.errors.ExitStatus`; a traceback
only with ``--debug``. Heavy modules (the netsetter engine, its backends) are
imported only when a network is set up.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, List, Optional

import typer

from nskit.boundary import guard
from nskit.errors import ExitStatus

HELP = """Run a command in a container: the article's ns-proc, in Python.

runner start forks a child into new user, mount, UTS, IPC, PID and network
namespaces, maps the container's root to an unprivileged host id (or, as the
article does, to you when you are not root), gives it netsetter.sh's network
(veth_conta 10.10.10.101/24 on the host's bridge brg-demo 10.10.10.100/24,
default route via 10.10.10.100), pivots into a root filesystem, and runs the
command there.
"""

START_HELP = """Start a container and run CMD in it (default: /bin/sh).

Without --rootfs the root filesystem is a static busybox (Debian package
busybox-static), built once into the cache. The shell is interactive when
stdin is a terminal, with the prompt -[namespace-process]-# . The command
starts only once the network is configured, and sees a clean environment:
PATH, HOME, TERM, PS1 and the --env values. Ctrl-C and SIGTERM reach it.

Isolation: the command gets no descriptor but 0, 1, 2 (and --preserve-fds);
/proc/sys, /proc/sysrq-trigger, /proc/irq, /proc/bus and /proc/fs are
read-only and /proc/kcore, /proc/keys, /proc/timer_list and the like masked,
as runc does; the built-in root and unpacked tarballs are read through an
overlay with a writable layer per container, removed when it ends (kept with
--keep-layer DIR); a --rootfs directory is used in place, written into.

Run by root, the container's ids 0-65535 are host ids 1000000000-1000065535,
owned by no one: container root is nobody on the host. Run by another user,
the container's root is that user (the article's mapping), and the network
is set up with `sudo -n netsetter PID`: without sudo rights, use --no-net.

\b
Examples:
  runner start
  runner start --hostname box -- /bin/sh -c 'ip addr; ping -c1 10.10.10.100'
  runner start --no-net --rootfs alpine-minirootfs.tar.gz -- cat /etc/os-release

\b
Exit status: the command's, 128+N if signal N ended it; 125 if runner
could not start the container, 126 if CMD cannot be executed, 127 if it is
not found, 2 for bad options.
"""

app = typer.Typer(help=HELP, add_completion=False, no_args_is_help=True,
                  pretty_exceptions_enable=False, rich_markup_mode=None)


@app.callback()
def _group() -> None:
    """runner start runs a container."""


def _net(key: str, default: str, help_: str, metavar: str) -> Any:
    return typer.Option(None, f"--{key.replace('_', '-')}", help=f"{help_} [default: {default}]",
                        metavar=metavar, show_default=False, rich_help_panel="Network")


@app.command("start", help=START_HELP, no_args_is_help=False,
             context_settings={"allow_interspersed_args": False})
def start(
    command: Optional[List[str]] = typer.Argument(None, metavar="-- CMD ARGS", show_default=False,
                                                  help="The command to run in the container."),
    rootfs: Optional[str] = typer.Option(None, "--rootfs", metavar="DIR|FILE.tar[.gz]", show_default=False,
                                         help="Root filesystem: a directory, used in place and written into (as "
                                              "runc's bundle), or a tarball, unpacked once into the cache and "
                                              "read through a writable layer. [default: built-in busybox]"),
    hostname: str = typer.Option("ns-proc", "--hostname", metavar="NAME",
                                 help="Host name inside the container (its UTS namespace only)."),
    net: bool = typer.Option(True, "--net/--no-net",
                             help="Set up the container's network, or give it only lo."),
    env: List[str] = typer.Option([], "--env", "-e", metavar="KEY=VALUE", show_default=False,
                                  help="Add a variable to the command's environment (repeatable)."),
    timeout: float = typer.Option(60.0, "--timeout", metavar="SECONDS",
                                  help="Give up when the container and its network are not ready in time "
                                       "(finite, more than 0)."),
    preserve_fds: int = typer.Option(0, "--preserve-fds", metavar="N",
                                     help="Pass descriptors 3 to 3+N-1 on to the command, as runc does; every "
                                          "other descriptor above 2 is closed before it runs."),
    map_root_to_caller: bool = typer.Option(
        False, "--map-root-to-caller",
        help="Map the container's root to you, and no other id, as the article does (the default unless you "
             "are root). Run by root, this makes the container's root the host's root: a descriptor, mount or "
             "/proc file that isolation misses is then the whole host's."),
    keep_layer: Optional[str] = typer.Option(
        None, "--keep-layer", metavar="DIR", show_default=False,
        help="Keep the container's writable layer in DIR (DIR/upper: every file it wrote) instead of removing "
             "it when the container ends; a later run with the same DIR continues it. Not with a --rootfs "
             "directory, which is written in place."),
    backend: Optional[str] = typer.Option(None, "--backend", metavar="rtnl|ip|netlink", show_default=False,
                                          rich_help_panel="Network",
                                          help="How netsetter configures links: rtnl (raw netlink), ip (the ip "
                                               "binary) or netlink (pyroute2). [default: rtnl as root; "
                                               "$NETSETTER_BACKEND, else ip, through sudo]"),
    bridge: Optional[str] = _net("bridge", "brg-demo", "Bridge name.", "NAME"),
    bridge_mac: Optional[str] = _net("bridge_mac", "12:34:56:a1:b2:c3", "Bridge MAC address.", "MAC"),
    bridge_addr: Optional[str] = _net("bridge_addr", "10.10.10.100/24", "Bridge address/prefix.", "ADDR/LEN"),
    veth_host: Optional[str] = _net("veth_host", "auto: veth_host, or veth_h<pid> when taken",
                                    "Host end of the veth pair.", "NAME|auto"),
    veth_container: Optional[str] = _net("veth_container", "veth_conta (made in the container's own netns, never taken)",
                                         "Container end of the veth pair.", "NAME|auto"),
    container_addr: Optional[str] = typer.Option(
        None, "--ip", "--container-addr", metavar="ADDR/LEN|auto", show_default=False, rich_help_panel="Network",
        help="Container address/prefix. [default: auto: the first free address of the bridge's subnet from "
             ".101 on, leased until the container exits]"),
    gateway: Optional[str] = _net("gateway", "the bridge's address", "Container's default gateway.", "ADDR"),
    masquerade: bool = typer.Option(False, "--masquerade", rich_help_panel="Network",
                                    help="Let the container reach beyond the bridge: forwarding on in the host, "
                                         "the bridge's subnet masqueraded as the host (iptables); undone when "
                                         "the last container using it exits."),
    publish: List[str] = typer.Option([], "--publish", "-p", metavar="HOSTPORT:CONTAINERPORT", show_default=False,
                                      rich_help_panel="Network",
                                      help="Forward a TCP port of the host to the container (repeatable); "
                                           "removed when the container exits."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", envvar="RUNNER_CACHE_DIR", metavar="DIR",
                                             show_default=False,
                                             help="Where root filesystems are built and unpacked. [default: "
                                                  "/var/cache/ns-proc for root, else "
                                                  "$XDG_CACHE_HOME/ns-proc]"),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show each start-up step on stderr, timed."),
    debug: bool = typer.Option(False, "--debug", help="Show a traceback on errors."),
) -> None:
    params = dict(locals())  # every option, by name: launch.start takes them as the fast path parses them
    from .launch import start as start_container

    raise typer.Exit(guard("runner", debug, lambda: start_container(params)))


EXEC_HELP = """Run CMD inside the running container of PID, and exit with its status.

PID is a process of the container as the host sees it: a Fleet container's
Container.pid, or the command of a `runner start` container. CMD runs in the
container's user, mount, UTS, IPC, PID and network namespaces, in its root
directory, with its environment, as `nsenter --all` or `podman exec` run it.

\b
Examples:
  runner exec 4242 -- ip -4 addr
  runner exec 4242 -- /bin/sh

\b
Exit status: CMD's, 128+N if signal N ended it; 125 if runner could not
enter the container, 126 if CMD cannot be executed, 127 if it is not found.
"""


@app.command("exec", help=EXEC_HELP, no_args_is_help=True,
             context_settings={"allow_interspersed_args": False})
def exec_(
    pid: str = typer.Argument(..., metavar="PID", help="A process of the container (on the host)."),
    command: List[str] = typer.Argument(..., metavar="-- CMD ARGS", help="The command to run in it."),
    debug: bool = typer.Option(False, "--debug", help="Show a traceback on errors."),
) -> None:
    from . import enter
    from .errors import UsageError

    def body() -> int:
        if not pid.isdigit() or int(pid) <= 0:
            raise UsageError("pid", pid, "is not a positive process id")
        argv = list(command)
        if argv[:1] == ["--"]:  # after PID, the parser keeps the separator among the arguments
            argv = argv[1:]
        return enter.run(int(pid), argv)

    raise typer.Exit(guard("runner", debug, body))


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    command = typer.main.get_command(app)
    try:
        status = command.main(args, prog_name="runner", standalone_mode=False)
        return status if isinstance(status, int) else ExitStatus.OK
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:  # click's word for Ctrl-C: the boundary (nskit.boundary) says it
        raise KeyboardInterrupt from None
    except typer.TyperException as exc:  # bad usage, found by the parser
        ctx = getattr(exc, "ctx", None)  # click's UsageError has one; typer does not declare it
        if ctx is not None and not args:
            print(ctx.get_help())
            return ExitStatus.USAGE
        print(f"runner: error: {exc.format_message()}", file=sys.stderr)
        return ExitStatus.USAGE
    # An NsError out of start() or exec_() is one that --debug re-raised: the boundary
    # (nskit.boundary.start) prints its traceback and its line, as for the launcher's.


def run() -> None:
    """A console script installed before :mod:`runner.__main__` was the entry point."""
    from .__main__ import run as entry

    entry()
