"""The `runner` console script: `runner start` without importing typer, when it can.

A plain `runner start [OPTIONS] [-- CMD ...]` is parsed here, from the table below
(nskit.argv), and runs at once; anything else goes to the typer CLI (runner.cli),
the one place that defines the options, prints help and words usage errors.
typer's import alone costs more than the rest of `runner start --no-net -- /bin/true`
(issue 16 point 3). tests/test_runner_launch.py holds the table to typer's own parse.
"""

from __future__ import annotations

import os
import sys

from nskit.argv import Table
from nskit.boundary import guard

# runner.cli.start's options: option -> (parameter, kind); a flag -> (parameter, its value).
START = Table(
    values={
        "--rootfs": ("rootfs", "str"), "--hostname": ("hostname", "str"), "--env": ("env", "list"),
        "-e": ("env", "list"), "--timeout": ("timeout", "float"), "--preserve-fds": ("preserve_fds", "int"),
        "--keep-layer": ("keep_layer", "str"), "--backend": ("backend", "str"), "--bridge": ("bridge", "str"),
        "--bridge-mac": ("bridge_mac", "str"), "--bridge-addr": ("bridge_addr", "str"),
        "--veth-host": ("veth_host", "str"), "--veth-container": ("veth_container", "str"),
        "--ip": ("container_addr", "str"), "--container-addr": ("container_addr", "str"),
        "--gateway": ("gateway", "str"), "--publish": ("publish", "list"), "-p": ("publish", "list"),
        "--cache-dir": ("cache_dir", "path"),
    },
    flags={
        "--net": ("net", True), "--no-net": ("net", False), "--map-root-to-caller": ("map_root_to_caller", True),
        "--masquerade": ("masquerade", True), "--verbose": ("verbose", True), "-v": ("verbose", True),
        "--debug": ("debug", True),
    },
    defaults={
        "rootfs": None, "hostname": "ns-proc", "net": True, "env": [], "timeout": 60.0, "preserve_fds": 0,
        "map_root_to_caller": False, "keep_layer": None, "backend": None, "bridge": None, "bridge_mac": None,
        "bridge_addr": None, "veth_host": None, "veth_container": None, "container_addr": None,
        "gateway": None, "masquerade": False, "publish": [], "cache_dir": None, "verbose": False,
        "debug": False,
    },
)


def parse_start(args: list[str]) -> dict[str, object] | None:
    """runner.cli.start's parameters for ``args``, or None when typer must parse them."""
    if args[:1] != ["start"]:
        return None
    params = START.parse(args[1:], rest="command")
    if params is None:
        return None
    if params["cache_dir"] is None and os.environ.get("RUNNER_CACHE_DIR"):
        from pathlib import Path

        params["cache_dir"] = Path(os.environ["RUNNER_CACHE_DIR"])
    if params["cache_dir"] is not None and not str(params["cache_dir"]).strip(". "):
        return None  # "" or "." as a cache: let typer/click judge it
    return params


def start(params: dict[str, object]) -> int:
    """Build the container's spec from runner.cli.start's parameters, run it, report; its exit status."""
    from . import parent, spec

    p = dict(params)
    net_values = {k: p.pop(k) for k in ("bridge", "bridge_mac", "bridge_addr", "veth_host", "veth_container",
                                          "container_addr", "gateway")}
    p.pop("debug", None)
    what = spec.build(net_values=net_values, **p)  # type: ignore[arg-type]
    outcome = parent.run(what)
    for error in outcome.errors:
        print(f"runner: error: {error}", file=sys.stderr)
    return outcome.status


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    params = parse_start(args)
    if params is None:
        from .cli import main as typer_main

        return typer_main(args)
    # Ctrl-C and SIGTERM are rendered by the boundary (nskit.boundary.start); an NsError is
    # rendered here, as runner.cli.start renders it: the boundary's own look for --debug in
    # argv would also find the command's (`runner start -- prog --debug`).
    return guard("runner", bool(params["debug"]), lambda: start(params))
