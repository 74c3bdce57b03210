"""a. One container's network: the script vs the netsetter CLI vs the library.

Every measurement starts from nothing: a new sandbox (no bridge yet) and a
new container, so each path makes the bridge, the veth pair, the address
and the route, as the script does on a fresh host. Five variants, in rounds:

    script        bash netsetter.sh PID
    cli-ip        netsetter PID --backend ip        (a new Python process each time)
    cli-netlink   netsetter PID --backend netlink
    lib-ip        netsetter.engine.setup(PID, ...) in this process, ip backend
    lib-netlink   the same, netlink backend (no process started at all)
    cli-rtnl, lib-rtnl   the same two on the rtnl backend (raw netlink, stdlib only)
    fast-rtnl     netsetter.fast.setup_fast(PID) in this process: the peer made in place

Each run is checked afterwards: the container must hold 10.10.10.101/24.
"""

from __future__ import annotations

from ..context import Context
from ..results import Row
from ..timing import interleave
from .commands import in_fresh_host, library, library_fast, timed, warm_imports

EXPECT = "10.10.10.101/24"  # the script's container address


def run(ctx: Context) -> list[Row]:
    from netsetter.config import NetConfig

    warm_imports()
    config = NetConfig.build()  # the script's values
    variants = {
        "script": lambda pid: timed(["bash", ctx.script, str(pid)]),
        "cli-ip": lambda pid: timed([ctx.netsetter, str(pid), "--backend", "ip"]),
        "cli-netlink": lambda pid: timed([ctx.netsetter, str(pid), "--backend", "netlink"]),
        "lib-ip": lambda pid: library(pid, config, "ip"),
        "lib-netlink": lambda pid: library(pid, config, "netlink"),
        "cli-rtnl": lambda pid: timed([ctx.netsetter, str(pid), "--backend", "rtnl"]),
        "lib-rtnl": lambda pid: library(pid, config, "rtnl"),
        "fast-rtnl": lambda pid: library_fast(pid, config, "rtnl"),
    }
    outcomes = interleave({name: in_fresh_host("single", measure, EXPECT) for name, measure in variants.items()},
                          ctx.options.runs, ctx.options.warmup, lambda msg: ctx.log(f"a. one container: {msg}"))
    labels = {
        "script": "netsetter.sh (bash)",
        "cli-ip": "netsetter CLI, ip backend",
        "cli-netlink": "netsetter CLI, netlink backend",
        "lib-ip": "library in-process, ip backend",
        "lib-netlink": "library in-process, netlink backend",
        "cli-rtnl": "netsetter CLI, rtnl backend",
        "lib-rtnl": "library in-process, rtnl backend (the script's 14 steps)",
        "fast-rtnl": "netsetter.fast in-process, rtnl (peer made in place)",
    }
    return [Row.of(f"single/{name}", labels[name], outcome, note="fresh sandbox, bridge made")
            for name, outcome in outcomes.items()]
