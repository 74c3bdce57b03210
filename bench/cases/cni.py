"""f. CNI plugins: VERSION, ADD and DEL of netsetter-cni vs Debian's reference `bridge` plugin.

A CNI plugin is one executable called once per operation: the operation and
the container in CNI_* environment variables, the network's JSON
configuration on stdin, the result as JSON on stdout. Both plugins get the
script's network: bridge brg-demo with 10.10.10.100 as the container's
gateway and default route, the container at 10.10.10.101/24.

    version   CNI_COMMAND=VERSION                (engines call it on every start)
    add       CNI_COMMAND=ADD on a new container of a fresh sandbox
    del       CNI_COMMAND=DEL of what ADD made

Each round uses a new sandbox, so ADD makes the bridge, as in group a. The
reference plugin gets its addresses from host-local, with its state in the
bench's scratch directory. netsetter-cni is measured twice: ``ours`` with the
same conflist shape (ipam.type host-local, delegated: the issue-18 targets
compare these rows) and ``ours-own`` with its own allocator (ipam without a
type). Its rows are skipped while it is not installed.
"""

from __future__ import annotations

import json
import os
import shutil
from contextlib import ExitStack
from ipaddress import ip_interface, ip_network
from pathlib import Path
from typing import Any

from ..context import Context, tool
from ..results import Row
from ..sandboxes import check_away_from_home, entered, host, container as new_container
from ..timing import Stopwatch, interleave
from .commands import CommandFailed, run as run_command

CNI_PATH = "/usr/lib/cni"  # Debian's containernetworking-plugins
NETWORK = {"cniVersion": "1.0.0", "name": "bench", "bridge": "brg-demo", "isGateway": True,
           "isDefaultGateway": True, "ipMasq": False}
IPAM = {"subnet": "10.10.10.0/24", "gateway": "10.10.10.100", "rangeStart": "10.10.10.101"}
SUBNET = ip_network(IPAM["subnet"])


def configuration(plugin: str, state: Path) -> dict[str, Any]:
    if plugin == "ours-own":
        return {**NETWORK, "type": "netsetter-cni", "ipam": dict(IPAM)}
    return {**NETWORK, "type": "bridge" if plugin == "bridge" else "netsetter-cni",
            "ipam": {"type": "host-local", **IPAM, "dataDir": str(state)}}


def call(executable: str, command: str, config: dict[str, Any], netns: str = "", container_id: str = "") -> float:
    env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "CNI_COMMAND": command,
           "CNI_CONTAINERID": container_id, "CNI_NETNS": netns, "CNI_IFNAME": "eth0", "CNI_PATH": CNI_PATH}
    check_away_from_home()
    name = os.path.basename(executable)
    with Stopwatch() as sw:
        try:
            proc = run_command([executable], input=json.dumps(config), env=env, capture=True)
        except CommandFailed as exc:
            raise CommandFailed(f"{name} {command}: {exc}") from None
    if command == "ADD":  # an ADD that configured nothing must not count
        ips = [ip.get("address", "") for ip in json.loads(proc.stdout or "{}").get("ips", [])]
        # host-local hands addresses out round-robin: .101, then .102, ... even after a DEL
        if not any(ip_interface(ip).ip in SUBNET for ip in ips):
            raise CommandFailed(f"{name} ADD: the result gives {ips or 'no address'}, none in {SUBNET}")
    return sw.seconds


class Plugin:
    """One plugin's VERSION, ADD and DEL as measures; ADD leaves its sandbox open for the DEL right after it."""

    def __init__(self, executable: str, config: dict[str, Any], tag: str, suffix: str = "") -> None:
        self.executable, self.config, self.tag, self.suffix = executable, config, tag, suffix
        self.pending: list[tuple[ExitStack, str, str]] = []  # (the open sandbox, CNI_NETNS, CNI_CONTAINERID)
        self.made = iter(range(1_000_000))

    def version(self) -> float:
        return call(self.executable, "VERSION", self.config)

    def add(self) -> float:
        stack = ExitStack()
        try:
            box = entered(stack, host("cni"))
            container = new_container(box)
            netns, cid = f"/proc/{container.pid}/ns/net", f"bench-{next(self.made)}"
            seconds = call(self.executable, "ADD", self.config, netns, cid)
        except BaseException:
            stack.close()
            raise
        self.pending.append((stack, netns, cid))
        return seconds

    def delete(self) -> float:
        if not self.pending:
            raise CommandFailed("no ADD to delete (ADD failed)")
        stack, netns, cid = self.pending.pop()
        with stack:
            return call(self.executable, "DEL", self.config, netns, cid)

    def variants(self) -> dict[str, Any]:
        return {f"{self.tag}-version": self.version, f"{self.tag}-add": self.add, f"{self.tag}-del": self.delete}

    def rows(self, outcomes: dict[str, Any]) -> list[Row]:
        name = os.path.basename(self.executable)
        return [Row.of(f"cni/{self.tag}-{verb}", f"{name} {verb.upper()}{self.suffix}", outcomes[f"{self.tag}-{verb}"],
                       note=self.executable) for verb in ("version", "add", "del")]


def measure(ctx: Context, plugins: list[Plugin]) -> list[Row]:
    """Every plugin's VERSION, ADD and DEL interleaved in the same rounds: each round runs
    them all once, so a drift of the machine's load hits each plugin alike."""
    variants: dict[str, Any] = {}
    for plugin in plugins:  # in this order, each ADD's sandbox is closed by its DEL before the next opens
        variants.update(plugin.variants())
    with host("cni"):  # VERSION changes nothing, but every plugin call runs in a sandbox
        try:
            outcomes = interleave(variants, ctx.options.runs, ctx.options.warmup,
                                  lambda msg: ctx.log(f"f. CNI: {msg}"))
        finally:
            for plugin in reversed(plugins):  # Ctrl-C between an ADD and its DEL; inside the outer sandbox,
                while plugin.pending:         # so that each nested one returns this thread where it found it
                    plugin.pending.pop()[0].close()
    return [row for plugin in plugins for row in plugin.rows(outcomes)]


def run(ctx: Context) -> list[Row]:
    rows: list[Row] = []
    plugins: list[Plugin] = []
    ours = tool("netsetter-cni")
    if ours is None:
        rows += [Row(f"cni/{tag}-{verb}", f"netsetter-cni {verb.upper()}",
                     skipped="not available yet (netsetter-cni is not installed; issue 7)")
                 for tag in ("ours", "ours-own") for verb in ("version", "add", "del")]
    else:
        plugins += [Plugin(ours, configuration("ours", ctx.workdir / "cni-host-local-ours"), "ours", " (host-local)"),
                    Plugin(ours, configuration("ours-own", ctx.workdir), "ours-own", " (own allocator)")]
    reference = os.path.join(CNI_PATH, "bridge")
    if not os.access(reference, os.X_OK):
        rows += [Row(f"cni/bridge-{verb}", f"bridge {verb.upper()} (reference)",
                     skipped=f"{reference} not found: apt-get install containernetworking-plugins")
                 for verb in ("version", "add", "del")]
    else:
        plugins.append(Plugin(reference, configuration("bridge", ctx.workdir / "cni-host-local"), "bridge",
                              " (host-local)"))
    try:
        rows += measure(ctx, plugins)
    finally:
        for state in ("cni-host-local-ours", "cni-host-local"):
            shutil.rmtree(ctx.workdir / state, ignore_errors=True)
    return rows
