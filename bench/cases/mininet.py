"""g. N hosts on one bridge: Mininet building and tearing down N hosts vs ns-proc starting N containers.

    mininet   peers/mininet_driver.py N in a sandbox: SingleSwitchTopo(N) on a
              Linux bridge, no controller; build+start, then stop, as timed by
              the driver (after its imports)
    api       peers/fleet_driver.py N in a sandbox: the Fleet API (runner.fleet), one
              Python process and N containers of catatonit + `sleep infinity`; start_many,
              then leaving the block, as timed by the driver (after its imports), with
              the same protocol as Mininet's driver
    cli       N `runner start` processes, up to --fleet-cli-max (each keeps a
              Python process of ~40 MB for its container's lifetime)

PSS per host is the Pss of every process of the driver (the driver itself and
all its descendants: supervisor, inits, commands; Mininet's Python and its
bash hosts), summed, over N. For api, every container is pinged from the host
and from the first container once all are up (untimed): the row says how many
answered.

Started means every host/container is up with its address; ns-proc's
containers run `sh -c 'echo ready; read line'`, so ready means started and
networked. Teardown ends them all: Mininet's net.stop(), or for ns-proc
EOF on the commands' stdin, after which every runner removes its network.
While all N are up, the row records the memory they take (the drop of
MemAvailable, and the private memory of their processes) and the CPU
busy share and bridge packets/s over --cpu-window seconds (issue 6).

Each size runs --fleet-runs rounds, the variants interleaved within a round.
"""

from __future__ import annotations

import select
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from ..context import Context
from ..fleet import Fleet, cli_launcher
from ..results import Row
from ..sandboxes import host, inside, sandbox, shielded
from ..system import descendants, kill, mem_available_mb, private_mb, pss_mb, quiet_after
from ..timing import Outcome
from . import commands

DRIVER = Path(__file__).resolve().parent.parent / "peers" / "mininet_driver.py"
FLEET_DRIVER = Path(__file__).resolve().parent.parent / "peers" / "fleet_driver.py"
SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's, where the mininet package installs its modules

PROBE = 10  # containers in the warm-up round

# One round of a variant: (start seconds, stop seconds, facts seen while all N were up)
Trial = tuple[float, float, dict[str, object]]


def mininet_missing() -> str | None:
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import mininet.net"], capture_output=True)
    if probe.returncode != 0:
        return "mininet is not installed: apt-get install mininet bridge-utils"
    for binary in ("mnexec", "brctl", "ifconfig"):
        if subprocess.run(["sh", "-c", f"command -v {binary}"], capture_output=True).returncode:
            return f"{binary} not found: apt-get install mininet bridge-utils net-tools"
    return None


def _line(proc: subprocess.Popen, word: str, timeout: float) -> float:
    assert proc.stdout is not None
    if not select.select([proc.stdout], [], [], timeout)[0]:
        raise commands.CommandFailed(f"mininet driver: no '{word}' within {timeout:.0f} s")
    line = proc.stdout.readline().split()
    if len(line) != 2 or line[0] != word:
        raise commands.CommandFailed(f"mininet driver: expected '{word} SECONDS', got {' '.join(line)!r} "
                                     f"(exit {proc.poll()})")
    return float(line[1])


def mininet_trial(ctx: Context, n: int) -> Trial:
    return driver_trial(ctx, n, "mininet", [SYSTEM_PYTHON, str(DRIVER), str(n)], "s1")


def api_trial(ctx: Context, n: int) -> Trial:
    return driver_trial(ctx, n, "api", [sys.executable, str(FLEET_DRIVER), str(n), str(ctx.runner_cache)], "fl0",
                        reach=True)


def driver_trial(ctx: Context, n: int, tag: str, argv: list[str], bridge: str, reach: bool = False) -> Trial:
    timeout = 120 + n * 0.5
    with sandbox(tag) as box:
        free_before = mem_available_mb()
        proc: subprocess.Popen | None = None
        try:
            with shielded():  # the driver is started and known, or not started
                proc = subprocess.Popen(["ip", "netns", "exec", box.name, *argv],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                        text=True, start_new_session=True)
            built = _line(proc, "built", timeout)
            every = descendants([proc.pid]) | {proc.pid}
            seen: dict[str, object] = {"memory_mb": round(free_before - mem_available_mb(), 1),
                                       "private_mb": private_mb(every), "pss_mb": pss_mb(every),
                                       "processes": len(every)}
            seen["pss_per_host_mb"] = round(float(seen["pss_mb"]) / n, 2)  # type: ignore[arg-type]
            with inside(box):
                seen.update(quiet_after(bridge, ctx.options.cpu_window))
            if reach:
                assert proc.stdin is not None
                proc.stdin.write("reach\n")
                proc.stdin.flush()
                host_ok, one_ok = _reach_line(proc, timeout + n * 5)
                seen.update(reach_host=f"{host_ok}/{n}", reach_one=f"{one_ok}/{n - 1}",
                            reachable=host_ok == n and one_ok == n - 1)
            assert proc.stdin is not None
            proc.stdin.write("stop\n")
            proc.stdin.flush()
            stopped = _line(proc, "stopped", timeout)
            proc.wait(timeout=60)
            return built, stopped, seen
        finally:
            if proc is not None and proc.poll() is None:
                _stop_driver(proc, timeout)


def _reach_line(proc: subprocess.Popen, timeout: float) -> tuple[int, int]:
    assert proc.stdout is not None
    if not select.select([proc.stdout], [], [], timeout)[0]:
        raise commands.CommandFailed(f"fleet driver: no 'reach' within {timeout:.0f} s")
    line = proc.stdout.readline().split()
    if len(line) != 3 or line[0] != "reach":
        raise commands.CommandFailed(f"fleet driver: expected 'reach HOST ONE', got {' '.join(line)!r}")
    return int(line[1]), int(line[2])


def _stop_driver(proc: subprocess.Popen, timeout: float) -> None:
    """End a driver that did not finish: let it stop its network, else kill it and its hosts.

    Closing its stdin makes it stop once it has built (it cannot be stopped
    half-way through a build). Its host shells are its children until it
    dies, so they are listed before it is killed; a second Ctrl-C skips the wait.
    """
    if proc.stdin:
        proc.stdin.close()
    try:
        proc.wait(timeout=timeout)
        return
    except (subprocess.TimeoutExpired, KeyboardInterrupt):
        pass
    hosts = [pid for pid in descendants([proc.pid]) if pid != proc.pid]
    kill([proc.pid])
    proc.wait()
    kill(hosts)


def fleet_trial(ctx: Context, n: int, launcher: Callable[[], object]) -> Trial:
    with host("fleet"), Fleet(n, launcher(), ctx.workdir / "fleet.log") as fleet:  # type: ignore[arg-type]
        free_before = mem_available_mb()
        started = fleet.start()
        every = descendants(fleet.pids()) | set(fleet.pids())
        seen: dict[str, object] = {"memory_mb": round(free_before - mem_available_mb(), 1),
                                   "private_mb": private_mb(every), "pss_mb": pss_mb(every),
                                   "processes": len(every), "pss_per_host_mb": round(pss_mb(every) / n, 2)}
        seen.update(quiet_after("brg-demo", ctx.options.cpu_window))
        stopped = fleet.stop()
        return started, stopped, seen


def run(ctx: Context) -> list[Row]:
    opts = ctx.options
    cache, backend = ctx.runner_cache, opts.fleet_backend
    commands.run([ctx.runner, "start", "--cache-dir", str(cache), "--no-net", "--", "/bin/true"])  # build the root
    missing = mininet_missing()
    variants: dict[str, Callable[[int], Trial]] = {
        "api": lambda n: api_trial(ctx, n),
        "cli": lambda n: fleet_trial(ctx, n, lambda: cli_launcher(ctx.runner, cache, backend)),
    }
    if missing is None:
        variants = {"mininet": lambda n: mininet_trial(ctx, n), **variants}
    per_container_mb: dict[str, float] = {}  # by ns-proc variant
    # A warm-up round at a small size, untimed. It also tells what one container of
    # each ns-proc variant costs in memory, so that a size that would not fit is skipped, never tried: there
    # is no swap here, and the OOM killer would pick any process, not ours.
    if opts.warmup or max(opts.fleet) > PROBE:
        for name, trial in variants.items():
            ctx.log(f"g. warming up {name} with {PROBE}")
            try:
                _, _, facts = trial(PROBE)
            except Exception as exc:  # noqa: BLE001 - the measured rounds will report it
                ctx.log(f"g. warm-up of {name} failed: {exc}")
                continue
            if name != "mininet":
                per_container_mb[name] = _per_container(facts, PROBE)
    rows: list[Row] = []
    for n in opts.fleet:
        starts = {name: Outcome() for name in variants}
        stops = {name: Outcome() for name in variants}
        seen: dict[str, dict[str, object]] = {}
        skip: dict[str, str] = {}
        for name, why in (("cli", _cli_too_big(n, opts.fleet_cli_max)),
                          ("cli", _too_big(n, per_container_mb.get("cli"), opts.fleet_memory_share)),
                          ("api", _too_big(n, per_container_mb.get("api"), opts.fleet_memory_share))):
            if why and name not in skip:
                skip[name] = why
        for round_ in range(opts.fleet_runs):
            for name, trial in variants.items():
                if name in skip or starts[name].error:
                    continue
                ctx.log(f"g. {n}: {name}, round {round_ + 1}/{opts.fleet_runs}")
                try:
                    started, stopped, seen[name] = trial(n)
                except Exception as exc:  # noqa: BLE001 - recorded in the row; the others go on
                    starts[name].error = stops[name].error = f"{type(exc).__name__}: {exc}"
                    continue
                starts[name].samples.append(started)
                stops[name].samples.append(stopped)
        for name in ("api", "cli"):
            if name in seen:  # a better estimate, from more containers
                per_container_mb[name] = max(per_container_mb.get(name, 0.0), _per_container(seen[name], n))
        rows += _rows(n, starts, stops, seen, skip, missing, backend)
    return rows


LABELS = {  # (start row, stop row)
    "mininet": ("Mininet: build {n} hosts", "Mininet: tear down {n} hosts"),
    "api": ("ns-proc: start {n} containers (Fleet API)", "ns-proc: end {n} containers (Fleet API)"),
    "cli": ("ns-proc: start {n} containers (runner start ×{n})", "ns-proc: end {n} containers (runner start ×{n})"),
}


def _rows(n: int, starts: dict[str, Outcome], stops: dict[str, Outcome], seen: dict[str, dict[str, object]],
          skip: dict[str, str], missing: str | None, backend: str) -> list[Row]:
    rows = []
    for name in ("mininet", "api", "cli"):
        start_label, stop_label = (label.format(n=n) for label in LABELS[name])
        first, second = ("build", "stop") if name == "mininet" else ("start", "stop")
        why = missing if name == "mininet" else skip.get(name)
        if why:
            rows += [Row(f"mininet/{name}-{first}@{n}", start_label, per=n, skipped=why),
                     Row(f"mininet/{name}-{second}@{n}", stop_label, per=n, skipped=why)]
            continue
        facts = seen.get(name, {})
        note = (f"PSS {facts.get('pss_per_host_mb')} MB/host ({facts.get('pss_mb')} MB, "
                f"{facts.get('processes')} processes); {facts.get('memory_mb')} MB taken; after: CPU "
                f"{facts.get('cpu_busy_pct')}% (softirq {facts.get('softirq_pct')}%)" if facts else "")
        if "reach_host" in facts:
            note += f"; ping answered: host {facts['reach_host']}, one container {facts['reach_one']}"
        if name == "cli":
            note += f", {backend}"
        elif name == "api":
            note += ", rtnl"
        rows += [Row.of(f"mininet/{name}-{first}@{n}", start_label, starts[name], per=n, note=note, extra=facts),
                 Row.of(f"mininet/{name}-{second}@{n}", stop_label, stops[name], per=n)]
    return rows


def _cli_too_big(n: int, limit: int) -> str | None:
    if n <= limit:
        return None
    return (f"{n} runner processes exceed --fleet-cli-max {limit}: each keeps ~40 MB of Python for its "
            f"container's lifetime")


def _per_container(facts: dict[str, object], n: int) -> float:
    """MB per container, the larger of the two measures (the drop of MemAvailable is noisy)."""
    return max(float(facts["memory_mb"]), float(facts["private_mb"]), float(n)) / n  # type: ignore[arg-type]


def _too_big(n: int, per_container_mb: float | None, share: float) -> str | None:
    """Refuse a size whose memory, extrapolated from a smaller one, would take more than ``share``
    of what is available: other work shares this machine."""
    if per_container_mb is None:
        return None
    available = mem_available_mb()
    need = per_container_mb * n
    if need > share * available:
        return (f"would need ~{need:.0f} MB ({per_container_mb:.1f} MB per container), more than "
                f"{share:.0%} of the {available:.0f} MB available (--fleet-memory-share)")
    return None


