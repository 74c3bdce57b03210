"""b. N containers: N runs of the script vs the library configuring all N in one process.

The script hard-codes its names and address and deletes the bridge first,
so N runs of it on one host would leave only the last container connected.
We give it its best case instead: each of its N runs gets a sandbox of its
own (an empty host, as in group a), and the original script runs unmodified
there. The sum of the N runs is the script's time. (The alternative, N
edited copies on one shared bridge, would make each run also tear down the
bridge the previous ones used, which only adds to the script's time.)

The library does the real job: one process, one backend, all N containers
on one bridge in one sandbox, each with its own names and address
(:mod:`bench.addressing`); the loop's wall time is its time. netsetter has no
multi-pid CLI, which issue 8 allows.
"""

from __future__ import annotations

from contextlib import ExitStack

from .. import addressing
from ..context import Context
from ..results import Row
from ..sandboxes import check_away_from_home, host, inside, entered, sandbox, container as new_container
from ..timing import Measure, Stopwatch, interleave
from .commands import CommandFailed, addresses, run as run_command, timed, warm_imports


def script_runs(ctx: Context, n: int) -> Measure:
    def once() -> float:
        with ExitStack() as stack:
            boxes = [entered(stack, sandbox("many")) for _ in range(n)]
            containers = [new_container(box) for box in boxes]
            total = 0.0
            for box, container in zip(boxes, containers, strict=True):
                with inside(box):
                    total += timed(["bash", ctx.script, str(container.pid)])
            if "10.10.10.101/24" not in addresses(containers[-1]):
                raise CommandFailed("the last container did not get 10.10.10.101/24")
            return total

    return once


def library_loop(n: int, backend: str) -> Measure:
    def once() -> float:
        from backends import open_backend
        from netsetter.engine import setup

        with host("many") as box:
            pids = [new_container(box).pid for _ in range(n)]
            check_away_from_home()
            with Stopwatch() as sw:
                with open_backend(backend) as chosen:
                    for i, pid in enumerate(pids):
                        setup(pid, addressing.config(i), chosen)
            ports = run_command(["ip", "-o", "link", "show", "master", addressing.BRIDGE], capture=True).stdout
            if len(ports.splitlines()) != n:
                raise CommandFailed(f"expected {n} ports on {addressing.BRIDGE}, found {len(ports.splitlines())}")
            return sw.seconds

    return once


def run(ctx: Context) -> list[Row]:
    n = ctx.options.containers
    warm_imports()
    outcomes = interleave({"script": script_runs(ctx, n), "lib-ip": library_loop(n, "ip"),
                           "lib-netlink": library_loop(n, "netlink")},
                          ctx.options.runs, ctx.options.warmup, lambda msg: ctx.log(f"b. {n} containers: {msg}"))
    return [
        Row.of("many/script", f"netsetter.sh ×{n}", outcomes["script"], per=n,
               note="sum of N runs, each on an empty sandbox host"),
        Row.of("many/lib-ip", f"library loop ×{n}, ip backend", outcomes["lib-ip"], per=n,
               note="one process, one bridge"),
        Row.of("many/lib-netlink", f"library loop ×{n}, netlink backend", outcomes["lib-netlink"], per=n,
               note="one process, one bridge"),
    ]
