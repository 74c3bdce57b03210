"""Start N containers with the Fleet API, wait, check them, tear them down; report the times.

The counterpart of mininet_driver.py, with the same protocol, run the same way
(inside a sandbox netns through `ip netns exec`, by the project's python):

    ip netns exec SANDBOX python fleet_driver.py N CACHE_DIR

    -> built SECONDS          N containers running `sleep infinity`, each networked
    <- reach                  (optional, untimed) ping every container from the host, then from
    -> reach HOST_OK ONE_OK   the first container every other one; the counts that answered
    <- stop
    -> stopped SECONDS        leaving the `with` block: every container ended, every link gone

The fleet is routed (Fleet(..., routed=True)): the kernel's neighbour table is
one for every netns, 1024 entries by default (gc_thresh3, a machine-wide
setting this benchmark leaves alone), and on one link the first container would
learn an entry for each other one and each of them one of it, past that limit
at N=1000. Routed, each container's only neighbour is the gateway, permanent,
and the host's entries for the containers are permanent: none counts.
"""

import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from runner import Fleet  # noqa: E402

BRIDGE = "fl0"
SUBNET = "10.30.0.0/16"


def reach(fleet: Fleet) -> tuple[int, int]:
    boxes = fleet.containers
    host_ok = 0
    for c in boxes:
        ip = str(c.address.ip)
        host_ok += subprocess.run(["ping", "-c1", "-W2", ip], capture_output=True).returncode == 0
    # From the first container, each of the others, routed by the host (nothing to learn by ARP).
    loop = "ok=0; for ip in $TARGETS; do ping -c1 -W2 $ip >/dev/null && ok=$((ok+1)); done; echo $ok"
    targets = " ".join(str(c.address.ip) for c in boxes[1:])
    out = boxes[0].exec(["sh", "-c", loop], env={"PATH": "/bin:/sbin:/usr/bin:/usr/sbin", "TARGETS": targets})
    one_ok = int(out.stdout.strip() or 0) if out.returncode == 0 else 0
    return host_ok, one_ok


def main(n: int, cache: str) -> None:
    started = time.perf_counter()
    with Fleet(bridge=BRIDGE, subnet=SUBNET, cache_dir=cache, routed=True) as fleet:
        fleet.start_many(n, ["/bin/sleep", "infinity"])
        print(f"built {time.perf_counter() - started:.6f}", flush=True)
        while sys.stdin.readline().strip() == "reach":
            host_ok, one_ok = reach(fleet)
            print(f"reach {host_ok} {one_ok}", flush=True)
        started = time.perf_counter()
    print(f"stopped {time.perf_counter() - started:.6f}", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
