"""The CNI plugin against what a hostile or broken runtime hands it, on the real kernel.

Found by attacking it: a CNI_NETNS that is a FIFO hung ADD and DEL in open(2); a relative
CNI_PATH entry ran an IPAM plugin from the runtime's working directory; a closed stdin was an
internal error with a traceback; a DEL killed while it dropped its NAT rules left the
masquerade rule for good; the ip backend read short interface names ("a", "d", "help") as
keywords of `ip link set`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Callable

import pytest

from .sandbox import ROOT
from .test_cni_spec import PLUGIN, SUBNET, Plugin, error_ok, links, make_netns, network, plugin  # noqa: F401


def test_a_fifo_as_cni_netns_is_no_namespace_and_nothing_waits_on_it(plugin: Plugin, tmp_path: Path) -> None:
    fifo = tmp_path / "netns-fifo"
    os.mkfifo(fifo)
    error_ok(plugin.call("ADD", netns=str(fifo)), 3)  # a hang here is a TimeoutExpired from box.run
    got = plugin.call("DEL", netns=str(fifo))
    assert (got.status, got.stdout) == (0, ""), got


def test_a_device_as_cni_netns_is_no_namespace(plugin: Plugin) -> None:
    error_ok(plugin.call("ADD", netns="/dev/null"), 3)
    error_ok(plugin.call("ADD", netns="/dev"), 3)


@pytest.mark.parametrize("search", [".", "bin", ".:/usr/lib/cni"])
def test_a_relative_cni_path_entry_never_runs_a_plugin_from_the_working_directory(
        plugin: Plugin, make_netns: Callable[[], str], tmp_path: Path, search: str) -> None:
    ran = tmp_path / "ran"
    for folder in (tmp_path, tmp_path / "bin"):
        folder.mkdir(exist_ok=True)
        decoy = folder / "decoy-ipam"
        decoy.write_text(f"#!/bin/sh\ntouch {ran}\necho '{{\"code\": 11, \"msg\": \"decoy\"}}'\nexit 1\n")
        decoy.chmod(0o755)
    conf = network(ipam={"type": "decoy-ipam", "subnet": f"{SUBNET}.0/24"})
    env = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": plugin.cid("ctr1"), "CNI_NETNS": make_netns(),
           "CNI_IFNAME": "eth0", "CNI_PATH": search, "NETSETTER_BACKEND": plugin.backend}
    proc = subprocess.run(["ip", "netns", "exec", plugin.box.name, "env", *(f"{k}={v}" for k, v in env.items()),
                           *PLUGIN], input=json.dumps(conf), capture_output=True, text=True, timeout=60,
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert not ran.exists(), proc.stdout
    out = json.loads(proc.stdout)
    assert (proc.returncode, out["code"]) == (1, 7 if "/" in search else 4), proc.stdout
    assert "relative entries are ignored" in out["msg"], out


def test_a_closed_stdin_is_an_io_error_without_a_traceback(plugin: Plugin, make_netns: Callable[[], str]) -> None:
    env = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c", "CNI_NETNS": make_netns(), "CNI_IFNAME": "eth0"}
    proc = plugin.box.run("sh", "-c", f"exec {' '.join(PLUGIN)} <&-", env=env)
    assert "Traceback" not in proc.stderr, proc.stderr
    out = json.loads(proc.stdout)
    assert (proc.returncode, out["code"]) == (1, 5), proc.stdout
    assert "stdin is closed" in out["msg"]


def masquerade_rules(plugin: Plugin) -> list[str]:
    rules = plugin.box.run("iptables", "-t", "nat", "-S").stdout.splitlines()
    return [r for r in rules if SUBNET in r]


def test_a_del_killed_while_it_drops_its_nat_rules_is_finished_by_the_next_del(
        plugin: Plugin, make_netns: Callable[[], str], tmp_path: Path) -> None:
    ns = make_netns()
    conf = network(ipMasq=True)
    plugin.add(ns, conf)
    assert masquerade_rules(plugin)
    fifo = tmp_path / "pause"
    os.mkfifo(fifo)
    env = {"NETSETTER_BACKEND": plugin.backend, "CNI_COMMAND": "DEL", "CNI_CONTAINERID": plugin.cid("ctr1"),
           "CNI_NETNS": ns, "CNI_IFNAME": "eth0", "NETSETTER_TEST_PAUSE_AT": f"nat-release:{fifo}"}
    proc = subprocess.Popen(["ip", "netns", "exec", plugin.box.name, "env", *(f"{k}={v}" for k, v in env.items()),
                             *PLUGIN], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(conf).encode())
    proc.stdin.close()
    try:
        with open(fifo) as f:  # the DEL paused after its owner file went out of sight
            assert f.readline() == "paused nat-release\n"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    assert masquerade_rules(plugin)  # what the kill left
    plugin.ok("DEL", ns, conf)
    assert masquerade_rules(plugin) == []
    plugin.ok("DEL", ns, conf)


@pytest.mark.parametrize("ifname", ["a", "d", "m", "n", "t", "help", "dev", "type", "name", "netns"])
def test_an_interface_name_that_is_an_ip_keyword_is_still_a_name(plugin: Plugin, make_netns: Callable[[], str],
                                                                 ifname: str) -> None:
    ns = make_netns()
    result = plugin.add(ns, ifname=ifname)
    assert result["interfaces"][2]["name"] == ifname
    assert links(ns)[ifname]["operstate"] in ("UP", "UNKNOWN", "LOWERLAYERDOWN")
    plugin.ok("DEL", ns, ifname=ifname)
    assert ifname not in links(ns)


def test_a_container_id_too_long_for_the_marker_is_refused_before_any_change(plugin: Plugin,
                                                                            make_netns: Callable[[], str]) -> None:
    """It failed late (code 100, at the mark); DEL of one, which can have made nothing, failed too (code 5)."""
    ns = make_netns()
    host_before = links(plugin.box.path)
    longest = 254 - len("ns-proc:cni::eth0")
    got = plugin.call("ADD", netns=ns, cid="x" * (longest + 1 - len(plugin.cid("")) - 9))
    error_ok(got, 4)
    assert f"at most {longest}" in got.out["msg"]  # type: ignore[index]
    assert links(plugin.box.path) == host_before and set(links(ns)) == {"lo"}
    for length in (longest + 1, 5000):
        assert plugin.call("DEL", netns=ns, cid="x" * length).status == 0
    ok = plugin.add(ns, cid="y" * (longest - 9))  # the longest that fits (cid() adds 9: "-" and 8 of the sandbox)
    assert ok["interfaces"][2]["name"] == "eth0"
    plugin.ok("DEL", ns, cid="y" * (longest - 9))


def test_gc_of_one_network_leaves_another_networks_attachments_on_the_same_bridge(
        plugin: Plugin, make_netns: Callable[[], str]) -> None:
    """Two networks on one bridge, each its range: GC of the first, listing its own attachment,
    deleted the second network's container link (its marker names no network)."""
    first = network(cniVersion="1.1.0", name="neta", ipam={"subnet": "10.123.1.0/24"})
    second = network(cniVersion="1.1.0", name="netb", ipam={"subnet": "10.123.2.0/24"})
    ns_a, ns_b = make_netns(), make_netns()
    plugin.add(ns_a, first, cid="a")
    plugin.add(ns_b, second, cid="b")
    plugin.ok("GC", "", {**first, "cni.dev/valid-attachments": [{"containerID": plugin.cid("a"), "ifname": "eth0"}]},
              cid="", ifname="")
    assert "eth0" in links(ns_a) and "eth0" in links(ns_b)
    plugin.ok("GC", "", {**first, "cni.dev/valid-attachments": []}, cid="", ifname="")
    assert "eth0" not in links(ns_a) and "eth0" in links(ns_b)  # the first's own still goes
    plugin.ok("DEL", ns_b, second, cid="b")
