"""A real engine end to end: Debian 12's podman, with its CNI network backend and
crun, runs our busybox image on a network whose conflist uses netsetter-cni.

podman is confined as bench.podman sets it up (a sandbox netns playing the
host, a private mount namespace, everything it writes in a temporary
directory); the fixture checks that nothing outside that directory changed.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Callable, Iterator

import pytest

from bench.podman import IMAGE, Podman, confined, missing
from netsetter.host import state_dir
from nskit.netns import cookie as netns_cookie

from .sandbox import ROOT, Sandbox

pytestmark = [pytest.mark.podman, pytest.mark.slow,  # a podman container per test
              # One worker, the bench's: the fixture judges podman's netns files in /run/netns, which
              # are the machine's, and the bench's start group runs podman too (bench/podman.py):
              # beside it, the bench's file, unmounted but not yet unlinked, read as this test's leak.
              pytest.mark.xdist_group("bench"),
              pytest.mark.skipif(missing() is not None, reason=str(missing()))]

SUBNET = "10.125.0"
BRIDGE = "cnipod0"
WATCHED = ("/var/lib/containers", "/var/lib/cni", "/run/crun", "/run/containers", "/run/libpod", "/etc/cni/net.d",
           "/etc/containers", "/run/netns")


def install_plugin(cni_bin: Path) -> None:
    """The installed console script if there is one, else the same lines pip would write;
    behind a shell wrapper that logs each call and the plugin's stderr to plugin.log."""
    installed = Path(sys.executable).parent / "netsetter-cni"
    target = cni_bin / "netsetter-cni"
    real = target.with_name("netsetter-cni.real")
    if installed.exists():
        real.symlink_to(installed)
    else:
        real.write_text(f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(ROOT)!r})\n"
                        "from netsetter_cni.main import main\nsys.exit(main())\n")
        real.chmod(0o755)
    log = cni_bin.parent / "plugin.log"
    target.write_text(f"""#!/bin/sh
echo "$CNI_COMMAND netns=$CNI_NETNS id=$CNI_CONTAINERID args=$CNI_ARGS" >> {log}
exec {real} 2>> {log}
""")
    target.chmod(0o755)


def calls(engine: Podman) -> str:
    log = engine.top / "plugin.log"
    return log.read_text() if log.exists() else "(no call)"


def ours(engine: Podman, name: str, **plugin: object) -> None:
    """A network ``name`` of netsetter-cni on BRIDGE, leasing from SUBNET."""
    engine.network(name, {
        "type": "netsetter-cni", "bridge": BRIDGE, "isGateway": True, "isDefaultGateway": True,
        "ipMasq": True, "ipam": {"subnet": f"{SUBNET}.0/24", "rangeStart": f"{SUBNET}.10",
                                 "rangeEnd": f"{SUBNET}.50"}, **plugin})


@pytest.fixture
def box(sandbox: Callable[[], Sandbox]) -> Sandbox:
    return sandbox()


@pytest.fixture
def podman(box: Sandbox) -> Iterator[Podman]:
    before = {path: _listing(path) for path in WATCHED}
    with confined(box.path, install=install_plugin) as (engine, stale):
        yield engine
    after = {path: _listing(path) for path in WATCHED}
    assert after == before, "podman wrote outside its temporary dir"
    assert not stale, f"podman left {stale} in /run/netns"


def _listing(path: str) -> list[str] | None:
    """Names in a directory; for /run/netns only podman's (other sandboxes come and go)."""
    try:
        names = sorted(os.listdir(path))
    except FileNotFoundError:
        return None
    return [n for n in names if n.startswith("netns-")] if path == "/run/netns" else names


def leftovers(box: Sandbox) -> dict[str, object]:
    """What of ours could be left in the sandbox host: host veth ends, leases, NAT rules and owners."""
    links = json.loads(box.ip("-j", "link", "show").stdout)
    folder = Path(state_dir.host_dir(netns_cookie(box.path)))
    return {
        "veths": [link["ifname"] for link in links if link["ifname"].startswith("veth")],
        "leases": sorted(p.name for p in (folder / "leases" / BRIDGE).glob("*")),
        "nat owners": sorted(p.name for p in (folder / "nat" / "owners").glob("*")),
        "nat rules": [r for r in box.run("iptables-save").stdout.splitlines() if "NSPROC" in r],
    }


NOTHING: dict[str, object] = {"veths": [], "leases": [], "nat owners": [], "nat rules": []}


def test_podman_run_shows_the_leased_address_and_leaves_nothing(podman: Podman, box: Sandbox) -> None:
    ours(podman, "nsproc")
    run = podman("run", "--rm", "--network", "nsproc", IMAGE, "ip", "-4", "addr", "show", "eth0")
    assert run.returncode == 0, run.stderr
    assert f"inet {SUBNET}.10/24" in run.stdout
    assert leftovers(box) == NOTHING, calls(podman)


def test_the_container_is_reachable_from_the_host_until_removed(podman: Podman, box: Sandbox) -> None:
    ours(podman, "nsproc")
    started = podman("run", "--detach", "--name", "pinged", "--network", "nsproc", IMAGE, "sleep", "60")
    assert started.returncode == 0, started.stderr
    ping = box.run("ping", "-c", "1", "-W", "2", f"{SUBNET}.10")
    assert ping.returncode == 0, ping.stdout + ping.stderr
    outbound = podman("exec", "pinged", "ping", "-c", "1", "-W", "2", f"{SUBNET}.1")
    assert outbound.returncode == 0, outbound.stdout + outbound.stderr
    removed = podman("rm", "--force", "--time", "0", "pinged")
    assert removed.returncode == 0, removed.stderr
    assert leftovers(box) == NOTHING, calls(podman)


def test_a_failed_add_fails_the_run_with_our_error_and_leaves_nothing(podman: Podman, box: Sandbox) -> None:
    ours(podman, "nsproc")
    run = podman("run", "--rm", "--network", "nsproc", IMAGE, "true",
                 env={"NETSETTER_CNI_TEST_FAIL_AT": "veth"})
    assert run.returncode != 0
    assert "failure injected by NETSETTER_CNI_TEST_FAIL_AT" in run.stderr
    assert leftovers(box) == NOTHING, calls(podman)
