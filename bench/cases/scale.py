"""d. The cost of one more setup with 1, 100, 500, 1000 containers already on the bridge.

    one sandbox; containers are added until the bridge has S of them
      (the library, netlink backend: the fastest way to get there, untimed)
    then CPU busy (all, and the kernel's softirq share) and packets/s on the
    bridge over --cpu-window seconds:
      does the bridge settle? (issue 6: IPv6 start-up multicast is flooded
      to every port, so each new port costs work on all the others)
    then, --runs times per backend: a new container, setup timed (the
      library, backend opened and closed), then `netsetter down` and the
      container stopped, untimed, so S stays S
    grow to the next size

Container i gets its own names and address (:mod:`bench.addressing`); the
extra one is always index 65000, so its config is the same at every size.
"""

from __future__ import annotations

from ..addressing import BRIDGE, config
from ..context import Context
from ..results import Row
from ..sandboxes import check_away_from_home, host, container as new_container
from ..system import quiet_after
from ..timing import Outcome, Stopwatch, interleave
from .commands import library, warm_imports

EXTRA = 65000  # the index of the "one more" container
BACKENDS = ("netlink", "ip")


def run(ctx: Context) -> list[Row]:
    from backends import open_backend
    from netsetter.engine import setup
    from netsetter.host.teardown import down

    warm_imports()
    rows: list[Row] = []
    with host("scale") as box:
        population = 0
        for size in ctx.options.scale:
            ctx.log(f"d. scale: filling the bridge to {size} containers")
            with Stopwatch() as fill:
                while population < size:
                    check_away_from_home()
                    container = new_container(box)
                    # Keep this process's open files few: `sh` closes every inherited
                    # descriptor one by one in each child it forks, so 1000 open pipes
                    # would slow the ip backend down for a reason of the bench's own.
                    if container.proc.stdout:
                        container.proc.stdout.close()
                    with open_backend("netlink") as filler:
                        setup(container.pid, config(population), filler)
                    population += 1
            settle = quiet_after(BRIDGE, ctx.options.cpu_window)

            def one_more(backend: str) -> float:
                container = new_container(box)
                try:
                    seconds = library(container.pid, config(EXTRA), backend)
                    with open_backend(backend) as chosen:
                        down(str(container.pid), config(EXTRA), chosen)
                finally:
                    container.stop()
                    box.containers.remove(container)
                return seconds

            outcomes: dict[str, Outcome] = interleave(
                {b: (lambda b=b: one_more(b)) for b in BACKENDS}, ctx.options.runs, ctx.options.warmup,
                lambda msg, size=size: ctx.log(f"d. scale, {size} present: {msg}"))
            after = quiet_after(BRIDGE, ctx.options.cpu_window)
            for backend in BACKENDS:
                note = (f"after filling: CPU {settle['cpu_busy_pct']}% (softirq {settle['softirq_pct']}%), "
                        f"{settle['bridge_pps']} pkt/s on the bridge")
                extra = {"fill_seconds": round(fill.seconds, 2), "after_fill": settle, "after_runs": after}
                rows.append(Row.of(f"scale/{backend}@{size}", f"one more setup, library {backend}, {size} present",
                                   outcomes[backend], note=note, extra=extra if backend == BACKENDS[0] else {}))
    return rows
