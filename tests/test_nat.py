"""Beyond the bridge: --masquerade out to an "outside" namespace, -p published ports in.

The outside is a sandbox namespace linked to the sandbox host with a
documentation address (198.51.100.0/24); the host's forward policy is drop,
as Docker sets it.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from .sandbox import ROOT
from .test_many import leases_and_records
from .test_runner_support import RUNNER, cache_dir  # noqa: F401  (a fixture)

SERVER = ("import socket,sys; s = socket.create_server(('198.51.100.2', 9000)); print('listening', flush=True);"
          "s.settimeout(30); c, peer = s.accept(); print(peer[0], flush=True); c.sendall(b'hello'); c.close()")


@pytest.fixture
def world(sandbox):
    host, outside = sandbox(), sandbox()
    host.ip("link", "add", "up0", "type", "veth", "peer", "name", "out0", "netns", outside.name)
    host.ip("addr", "add", "198.51.100.1/24", "dev", "up0")
    host.ip("link", "set", "up0", "up")
    outside.ip("addr", "add", "198.51.100.2/24", "dev", "out0")
    outside.ip("link", "set", "out0", "up")
    assert host.run("iptables", "-w", "-P", "FORWARD", "DROP").returncode == 0
    return host, outside


def firewall(box) -> str:
    return box.run("iptables", "-w", "-S").stdout + box.run("iptables", "-w", "-t", "nat", "-S").stdout


def forwarding(box) -> str:
    return box.run("cat", "/proc/sys/net/ipv4/ip_forward").stdout.strip()


def runner(box, cache, *args):
    return box.run(*RUNNER, *args, env={"RUNNER_CACHE_DIR": str(cache)})


def test_masquerade_reaches_the_outside_as_the_host(world, cache_dir):  # noqa: F811
    host, outside = world
    rules_before = firewall(host)
    server = subprocess.Popen(["ip", "netns", "exec", outside.name, sys.executable, "-c", SERVER],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout.readline() == "listening\n"
        # without --masquerade the outside is out of reach: no route back, and forwarding is off
        cut_off = runner(host, cache_dir, "--", "/bin/sh", "-c", "nc -w 2 198.51.100.2 9000 </dev/null; echo rc=$?")
        assert "hello" not in cut_off.stdout
        proc = runner(host, cache_dir, "--masquerade", "--", "/bin/sh", "-c", "nc -w 5 198.51.100.2 9000 </dev/null")
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == "hello"
        assert server.stdout.readline().strip() == "198.51.100.1"  # the server saw the host, not 10.10.10.x
    finally:
        server.kill()
        server.wait()
        server.stdout.close()
    assert firewall(host) == rules_before and forwarding(host) == "0"
    assert leases_and_records(host) == []


def test_published_port_reaches_the_container(world, cache_dir):  # noqa: F811
    host, outside = world
    rules_before = firewall(host)
    container = subprocess.Popen(["ip", "netns", "exec", host.name, "env", f"RUNNER_CACHE_DIR={cache_dir}", *RUNNER,
                                  "-p", "8080:80", "--", "/bin/sh", "-c",
                                  "nc -l -p 80 -e echo hello-from-the-container & echo ready; wait"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert container.stdout.readline() == "ready\n"
        assert "DNAT --to-destination 10.10.10.101:80" in firewall(host)
        client = outside.run(sys.executable, "-c", "import socket; c = socket.create_connection(('198.51.100.1', "
                                                   "8080), timeout=10); print(c.recv(100).decode().strip())")
        assert client.returncode == 0, client.stderr
        assert client.stdout.strip() == "hello-from-the-container"
        _, err = container.communicate(timeout=30)
        assert container.returncode == 0, err
    finally:
        if container.poll() is None:
            container.kill()
            container.wait()
    # the rule went with the container
    assert firewall(host) == rules_before and forwarding(host) == "0"
    assert leases_and_records(host) == []


def test_netsetter_publish_refuses_a_taken_port(world):
    host, _ = world
    one, two = host.container(), host.container()
    assert host.netsetter(str(one.pid), "-p", "8080:80").returncode == 0
    before = host.snapshot()
    proc = host.netsetter(str(two.pid), "-p", "8080:81", "--veth-host", "vh2", "--veth-container", "vc2",
                          "--container-addr", "10.10.10.102/24")
    assert proc.returncode == 1
    assert proc.stderr.strip() == ("netsetter: error: step 'nat-publish' failed: failed to publish port \"8080\": "
                                   "it is already published to 10.10.10.101:80")
    assert host.snapshot() == before
    assert host.netsetter("down", str(one.pid)).returncode == 0
    assert "NSPROC" not in firewall(host)
