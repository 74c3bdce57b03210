"""Several containers on one bridge: their own names and addresses, talking to each other."""

from __future__ import annotations

import os
import subprocess

from .sandbox import ROOT
from .test_runner_support import RUNNER, cache_dir  # noqa: F401  (a fixture)

# Each container serves its host name on TCP 7000, says its address, waits for "go",
# asks every container (itself included) for its name, and stays up until "bye".
SCRIPT = """
set -- $(ip -4 -o addr show scope global)   # 2: interface, 4: address
nc -ll -p 7000 -e hostname &
echo "ready $4 $2"
read go
for ip in $PEERS; do echo "from $ip: $(nc -w 3 $ip 7000 </dev/null)"; done
read bye
"""


def leases_and_records(box) -> list[str]:
    from netsetter.host import state_dir
    from nskit.netns import cookie

    base = state_dir.host_dir(cookie(box.path))
    found = []
    for sub in ("leases", "containers"):
        for folder, _, files in os.walk(os.path.join(base, sub)):
            found += [os.path.join(folder, f) for f in files]
    return found


def test_three_containers_share_the_bridge_and_reach_each_other(sandbox, cache_dir):  # noqa: F811
    box = sandbox()
    peers = "10.10.10.101 10.10.10.102 10.10.10.103"
    procs, ready = [], []
    try:
        for n in (1, 2, 3):
            p = subprocess.Popen(["ip", "netns", "exec", box.name, "env", f"RUNNER_CACHE_DIR={cache_dir}",
                                  *RUNNER, "--hostname", f"c{n}", "--env", f"PEERS={peers}", "--",
                                  "/bin/sh", "-c", SCRIPT],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 env={**os.environ, "PYTHONPATH": str(ROOT)})
            procs.append(p)
            ready.append(p.stdout.readline().split())
        # a lone container gets the script's names; the next ones' host ends get names of their own,
        # while every container end is veth_conta: it is made in its container's netns, never on the host
        assert [r[1] for r in ready] == ["10.10.10.101/24", "10.10.10.102/24", "10.10.10.103/24"]
        assert [r[2] for r in ready] == ["veth_conta"] * 3
        ports = sorted(n for n, link in box.snapshot().links.items() if link["master"] == "brg-demo")
        assert len(ports) == 3 and "veth_host" in ports
        outputs = []
        for p in procs:
            p.stdin.write("go\n")
            p.stdin.flush()
            outputs.append("".join(p.stdout.readline() for _ in range(3)))
        for p in procs:
            _, err = p.communicate("bye\n", timeout=60)
            assert p.returncode == 0, err
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for out in outputs:  # every container reached every other over TCP, both ways
        for n, ip in enumerate(peers.split(), 1):
            assert f"from {ip}: c{n}" in out, outputs
    # their exit freed their leases and records; the bridge stays, with no port left
    assert leases_and_records(box) == []
    assert list(box.snapshot().links) == ["brg-demo"]
    # so the next lone container gets the script's address again
    again = box.run(*RUNNER, "--", "/bin/sh", "-c", "ip -4 -o addr show scope global | awk '{print $4}'",
                    env={"RUNNER_CACHE_DIR": str(cache_dir)})
    assert again.stdout.strip() == "10.10.10.101/24", again.stderr
