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
bench's scratch directory; netsetter-cni serves them itself (issue 7), from
the same ipam fields. Its rows are skipped while it is not installed.
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
from ..sandboxes import check_away_from_home, host, container as new_container
from ..timing import Stopwatch, interleave
from .commands import CommandFailed, run as run_command

CNI_PATH = "/usr/lib/cni"  # Debian's containernetworking-plugins
NETWORK = {"cniVersion": "1.0.0", "name": "bench", "bridge": "brg-demo", "isGateway": True,
           "isDefaultGateway": True, "ipMasq": False}
IPAM = {"subnet": "10.10.10.0/24", "gateway": "10.10.10.100", "rangeStart": "10.10.10.101"}
SUBNET = ip_network(IPAM["subnet"])


def configuration(plugin: str, state: Path) -> dict[str, Any]:
    if plugin == "bridge":
        return {**NETWORK, "type": "bridge", "ipam": {"type": "host-local", **IPAM, "dataDir": str(state)}}
    return {**NETWORK, "type": "netsetter-cni", "ipam": dict(IPAM)}


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


def measure(ctx: Context, executable: str, config: dict[str, Any], tag: str) -> list[Row]:
    """VERSION, ADD and DEL in rounds; ADD leaves its sandbox open for the DEL right after it."""
    pending: list[tuple[ExitStack, str, str]] = []  # (the open sandbox, CNI_NETNS, CNI_CONTAINERID)
    made = iter(range(1_000_000))

    def add() -> float:
        stack = ExitStack()
        try:
            box = stack.enter_context(host("cni"))
            container = new_container(box)
            netns, cid = f"/proc/{container.pid}/ns/net", f"bench-{next(made)}"
            seconds = call(executable, "ADD", config, netns, cid)
        except BaseException:
            stack.close()
            raise
        pending.append((stack, netns, cid))
        return seconds

    def delete() -> float:
        if not pending:
            raise CommandFailed("no ADD to delete (ADD failed)")
        stack, netns, cid = pending.pop()
        with stack:
            return call(executable, "DEL", config, netns, cid)

    with host("cni"):  # VERSION changes nothing, but every plugin call runs in a sandbox
        try:
            outcomes = interleave({"version": lambda: call(executable, "VERSION", config), "add": add,
                                   "del": delete}, ctx.options.runs, ctx.options.warmup,
                                  lambda msg: ctx.log(f"f. CNI {tag}: {msg}"))
        finally:
            while pending:  # Ctrl-C between an ADD and its DEL; inside the outer sandbox, so that
                pending.pop()[0].close()  # each nested one returns this thread where it found it
    name = os.path.basename(executable)
    return [Row.of(f"cni/{tag}-{verb}", f"{name} {verb.upper()}", outcomes[verb], note=executable)
            for verb in ("version", "add", "del")]


def run(ctx: Context) -> list[Row]:
    rows: list[Row] = []
    ours = tool("netsetter-cni")
    if ours is None:
        rows += [Row(f"cni/ours-{verb}", f"netsetter-cni {verb.upper()}",
                     skipped="not available yet (netsetter-cni is not installed; issue 7)")
                 for verb in ("version", "add", "del")]
    else:
        rows += measure(ctx, ours, configuration("ours", ctx.workdir), "ours")
    reference = os.path.join(CNI_PATH, "bridge")
    if not os.access(reference, os.X_OK):
        rows += [Row(f"cni/bridge-{verb}", f"bridge {verb.upper()} (reference)",
                     skipped=f"{reference} not found: apt-get install containernetworking-plugins")
                 for verb in ("version", "add", "del")]
    else:
        state = ctx.workdir / "cni-host-local"
        try:
            rows += measure(ctx, reference, configuration("bridge", state), "bridge")
        finally:
            shutil.rmtree(state, ignore_errors=True)
    return rows
