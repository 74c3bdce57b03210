"""c. Container start: `runner start -- /bin/true` vs the same made of unshare + pivot_root + the script.

    runner-ip, runner-netlink   runner start --backend B -- /bin/true     (with network)
    runner-rtnl                 runner start -- /bin/true                 (the default: rtnl)
    pipeline                    peers/pipeline.sh ROOT netsetter.sh -- /bin/true
    runner-nonet                runner start --no-net -- /bin/true
    pipeline-nonet              peers/pipeline.sh --no-net ROOT -- /bin/true
    unshare                     unshare -U -r -m -u -i -p -n -f -- /bin/true (namespaces only)
    podman                      podman run --rm --network bench IMAGE /bin/true   (bench.podman)

podman runs confined as in tests/test_cni_podman.py (:mod:`bench.podman`: a
sandbox netns of its own playing the host, a private mount namespace, storage
and configuration in the scratch dir), on a conflist of the reference `bridge`
plugin with host-local and the script's addresses (no masquerade: the script and runner
set none up). Its engine
and image are made once, untimed; after each run its bridge is deleted,
untimed, so that every run makes it, as every other row does.

Each measurement gets a new sandbox, so every networked start makes the
bridge, as the script does. runner's busybox root is built once into a
scratch cache before anything is timed; the pipeline's root is a copy of
the same busybox (:mod:`bench.peers.minroot`).
"""

from __future__ import annotations

import os
from contextlib import ExitStack
from pathlib import Path

from .. import podman
from ..context import Context
from ..peers import minroot
from ..results import Row
from ..sandboxes import entered, sandbox
from ..timing import Measure, interleave
from .commands import CommandFailed, in_fresh_host, run as run_command, timed

PIPELINE = Path(__file__).resolve().parent.parent / "peers" / "pipeline.sh"
NAMESPACES = ["--user", "--map-root-user", "--mount", "--uts", "--ipc", "--pid", "--net", "--fork"]
BRIDGE = "brg-demo"  # the script's network, as group f gives the CNI plugins
NETWORK = {"type": "bridge", "bridge": BRIDGE, "isGateway": True, "isDefaultGateway": True, "ipMasq": False,
           "ipam": {"type": "host-local", "subnet": "10.10.10.0/24", "gateway": "10.10.10.100",
                    "rangeStart": "10.10.10.101"}}


def run(ctx: Context) -> list[Row]:
    cache = str(ctx.runner_cache)
    root = minroot.build(ctx.workdir / "pipeline-root")
    runner = [ctx.runner, "start", "--cache-dir", cache]
    run_command([*runner, "--no-net", "--", "/bin/true"])  # builds runner's root into the cache, untimed
    commands = {
        "runner-ip": [*runner, "--backend", "ip", "--", "/bin/true"],
        "runner-netlink": [*runner, "--backend", "netlink", "--", "/bin/true"],
        "runner-rtnl": [*runner, "--", "/bin/true"],
        "pipeline": ["bash", str(PIPELINE), str(root), ctx.script, "--", "/bin/true"],
        "runner-nonet": [*runner, "--no-net", "--", "/bin/true"],
        "pipeline-nonet": ["bash", str(PIPELINE), "--no-net", str(root), "-", "--", "/bin/true"],
        "unshare": ["unshare", *NAMESPACES, "--", "/bin/true"],
    }
    # Bind each argv now: a lambda made in a loop would see only the last one.
    variants = {name: in_fresh_host("start", lambda pid, argv=argv: timed(argv), None)
                for name, argv in commands.items()}
    failed = None
    with ExitStack() as stack:
        why_not = podman.missing()
        try:
            why_not = why_not or _podman_variant(stack, variants)
        except (CommandFailed, RuntimeError, OSError) as exc:  # reported in the row; the others go on
            failed = f"podman could not be set up: {exc}"
        outcomes = interleave(variants, ctx.options.runs, ctx.options.warmup,
                              lambda msg: ctx.log(f"c. container start: {msg}"))
    labels = {
        "runner-ip": ("runner start -- /bin/true, ip backend", "network made on a fresh sandbox"),
        "runner-netlink": ("runner start -- /bin/true, netlink backend", "network made on a fresh sandbox"),
        "runner-rtnl": ("runner start -- /bin/true (default: rtnl, peer made in place)",
                        "network made on a fresh sandbox"),
        "pipeline": ("unshare + pivot_root + netsetter.sh", "bench/peers/pipeline.sh"),
        "runner-nonet": ("runner start --no-net -- /bin/true", ""),
        "pipeline-nonet": ("unshare + pivot_root, no network", "bench/peers/pipeline.sh --no-net"),
        "unshare": ("unshare alone (same namespaces)", "no root change, no network"),
        "podman": ("podman run --rm, CNI bridge network", "reference bridge + host-local, crun, vfs; bench.podman"),
    }
    rows = [Row.of(f"start/{name}", labels[name][0], outcome, note=labels[name][1])
            for name, outcome in outcomes.items()]
    if why_not:
        rows.append(Row("start/podman", labels["podman"][0], skipped=why_not))
    elif failed:
        rows.append(Row("start/podman", labels["podman"][0], error=failed))
    return rows


def _podman_variant(stack: ExitStack, variants: dict[str, Measure]) -> str | None:
    """Add the podman variant, its engine and image made now and owned by ``stack``;
    or why it cannot be measured."""
    plugins = podman.REFERENCE_PLUGINS
    if not all(os.access(f"{plugins}/{name}", os.X_OK) for name in ("bridge", "host-local")):
        return f"{plugins}/bridge or host-local not found: apt-get install containernetworking-plugins"
    box = entered(stack, sandbox("start-podman"))
    engine, _ = entered(stack, podman.confined(box.path, plugin_dirs=[plugins]))
    engine.network("bench", NETWORK)
    argv, env = engine.argv("run", "--rm", "--network", "bench", podman.IMAGE), engine.env()
    shown = run_command([*argv, "ip", "-4", "-o", "addr", "show", "eth0"], env=env, capture=True).stdout
    if "inet 10.10.10.101/24" not in shown:  # a run that did nothing must not count
        raise CommandFailed(f"podman's container did not get 10.10.10.101: {shown.strip() or 'no address'}")
    delete_bridge = ["ip", "-n", box.name, "link", "del", BRIDGE]
    run_command(delete_bridge)

    def once() -> float:
        seconds = timed([*argv, "/bin/true"], env=env)
        run_command(delete_bridge)  # untimed: the next run makes it again
        return seconds

    variants["podman"] = once
    return None
