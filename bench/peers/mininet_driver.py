"""Build N Mininet hosts on one Linux bridge, wait, tear them down; report the times.

Run by Debian's python3 (Mininet lives in its dist-packages), inside a
sandbox netns through `ip netns exec` (which also mounts a /sys of that
netns: brctl reads and writes bridges there):

    ip netns exec SANDBOX python3 mininet_driver.py N

It talks over stdin/stdout, one line each way:

    -> built SECONDS          N hosts, their links and the bridge are up
    <- stop                   (the benchmark has looked at memory and CPU meanwhile)
    -> stopped SECONDS

The topology is Mininet's own SingleSwitchTopo: N hosts, each in a network
namespace of its own (a bash started by mnexec), one veth pair each to the
switch s1, a Linux bridge (no OpenFlow switch, no controller).

Mininet.init() would also raise resource limits and sysctls of the whole
machine (fixLimits: fs.file-max, kernel.pty.max, net.core.*); we mark it
done and raise only this process's open-file limit instead.
"""

import resource
import sys
import time

from mininet.log import setLogLevel
from mininet.net import Mininet
from mininet.nodelib import LinuxBridge
from mininet.topo import SingleSwitchTopo


def main(n: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # a pty and pipes per host
    Mininet.inited = True  # skip fixLimits(): it changes machine-wide settings
    setLogLevel("error")
    started = time.perf_counter()
    net = Mininet(topo=SingleSwitchTopo(k=n), switch=LinuxBridge, controller=None, build=False,
                  autoSetMacs=False, waitConnected=False)
    try:
        net.build()
        net.start()
        print(f"built {time.perf_counter() - started:.6f}", flush=True)
        sys.stdin.readline()
    finally:
        started = time.perf_counter()
        net.stop()
        print(f"stopped {time.perf_counter() - started:.6f}", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]))
