"""What the kernel says about the machine while a case runs: CPU, packets, memory, processes.

- CPU busy: /proc/stat's first line counts, per state, the time all CPUs
  spent since boot (in USER_HZ ticks); busy = everything but idle and iowait,
  as a share of the total over a window; softirq, packet processing, apart.
- Packets on a link: `ip -s -j link` in the current netns (sysfs would show
  the netns that mounted /sys, not ours).
- Memory: the drop of MemAvailable in /proc/meminfo while something runs,
  which counts the kernel's share too (namespaces, links) but also whatever
  else the machine does meanwhile; and the private memory of the processes
  (smaps_rollup), exact but blind to the kernel's share.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import time
from collections.abc import Iterable


def _cpu_ticks() -> tuple[int, int, int]:
    """(busy, softirq, total) ticks of all CPUs since boot."""
    with open("/proc/stat") as stat:
        # user nice system idle iowait irq softirq steal (guest time is already in user/nice)
        fields = [int(v) for v in stat.readline().split()[1:9]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, fields[6], sum(fields)


def cpu_busy(seconds: float) -> tuple[float, float]:
    """The shares (0-1) of all CPUs' time spent busy, and in softirq, during the next ``seconds``.

    softirq is where the kernel processes packets: a multicast storm on a
    bridge shows there, whatever else the machine is busy with.
    """
    busy0, soft0, total0 = _cpu_ticks()
    time.sleep(seconds)
    busy1, soft1, total1 = _cpu_ticks()
    total = max(total1 - total0, 1)
    return (busy1 - busy0) / total, (soft1 - soft0) / total


def link_packets(name: str) -> int | None:
    """rx + tx packets of a link in the current netns, or None if it is not there."""
    proc = subprocess.run(["ip", "-s", "-j", "link", "show", "dev", name], capture_output=True, text=True)
    if proc.returncode:
        return None
    stats = json.loads(proc.stdout)[0].get("stats64", {})
    return int(stats.get("rx", {}).get("packets", 0)) + int(stats.get("tx", {}).get("packets", 0))


def quiet_after(bridge: str, window: float) -> dict[str, float | None]:
    """CPU busy and packets/s on ``bridge`` over ``window`` seconds, from now."""
    before = link_packets(bridge)
    started = time.perf_counter()
    busy, softirq = cpu_busy(window)
    after = link_packets(bridge)
    pps = None if before is None or after is None else (after - before) / (time.perf_counter() - started)
    return {"cpu_busy_pct": round(busy * 100, 1), "softirq_pct": round(softirq * 100, 1),
            "bridge_pps": None if pps is None else round(pps, 1)}


def children_of() -> dict[int, list[int]]:
    """Every process's children, from one pass over /proc."""
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                # The command name (field 2) is in parentheses and may hold spaces.
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def descendants(roots: Iterable[int]) -> set[int]:
    tree = children_of()
    found: set[int] = set()
    todo = list(roots)
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(tree.get(pid, []))
    return found


def mem_available_mb() -> float:
    """MemAvailable: what the kernel could give without swapping. Its drop while N
    containers are up is their whole cost, kernel objects (netns, veths) included."""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no MemAvailable in /proc/meminfo")


def private_mb(pids: Iterable[int]) -> float:
    """Memory only these processes hold (Private_Clean + Private_Dirty of smaps_rollup):
    what their exit would free, kernel objects aside."""
    return _smaps_mb(pids, "Private_")


def pss_mb(pids: Iterable[int]) -> float:
    """The proportional set size of these processes, summed (Pss of smaps_rollup): each shared
    page counted once over all the processes that map it, so the sum is what they take together."""
    return _smaps_mb(pids, "Pss:")


def _smaps_mb(pids: Iterable[int], field: str) -> float:
    """The fields of smaps_rollup that start with ``field``, summed over ``pids``, in MB."""
    total_kb = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                total_kb += sum(int(line.split()[1]) for line in f if line.startswith(field))
        except OSError:
            continue  # gone meanwhile
    return round(total_kb / 1024, 1)


def kill(pids: Iterable[int], sig: int = signal.SIGKILL) -> None:
    """Signal processes by id; those already gone are skipped."""
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def raise_open_files() -> None:
    """Allow as many open files as the hard limit: 1000 containers keep 1000 pipes and sockets open.
    The limit is this process's own; the machine's settings are not touched."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
