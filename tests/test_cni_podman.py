"""A real engine end to end: Debian 12's podman, with its CNI network backend and
crun, runs our busybox image on a network whose conflist uses netsetter-cni.

The engine runs inside a sandbox netns (the sandbox plays the host) and a
private mount namespace, with everything it writes pointed at a temporary
directory; nothing under /etc, /var/lib or /run/crun changes. One mount
namespace serves every podman command of a test: a holder process keeps it,
and each command enters it with nsenter. It must be the same one, because
podman bind-mounts each container's netns at /run/netns/netns-<uuid> there;
a later `podman rm` in another namespace could not open it and would skip
the network teardown (no DEL at all).

    CONTAINERS_CONF          cgroups = "disabled" (the machine's cgroups are not ours to write),
                             default_ulimits (the VM lacks CAP_SYS_RESOURCE for podman's defaults),
                             tmp_dir, volume_path, the CNI config and plugin dirs: the temporary dir
    CONTAINERS_STORAGE_CONF  vfs storage, graphroot and runroot in the temporary dir
    a crun wrapper           crun --root in the temporary dir, for podman and for the cleanup
                             process conmon starts (which gets no --runtime-flag)
    the mount namespace      /sys/fs/cgroup/unified hidden (crun refuses the hybrid layout), the
                             cgroup mounts read-only, and /var/lib bound to the temporary dir
                             (podman 4.3 keeps its blob cache and libcni its result cache there)

Facts found on the way: with --log-level=debug the cleanup process podman
leaves to conmon fails, and `podman run` waits 20 s for it; a static_dir
other than the graphroot's makes that cleanup read another database.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Callable, Iterator

import pytest

from netsetter.host import state_dir
from nskit.netns import cookie as netns_cookie

from .sandbox import ROOT, Sandbox

pytestmark = [pytest.mark.podman, pytest.mark.slow,  # a podman container per test
              # one worker: the fixture judges podman's netns files in /run/netns, which are the machine's
              pytest.mark.xdist_group("podman"),
              pytest.mark.skipif(not (shutil.which("podman") and shutil.which("crun")),
                                 reason="podman and crun are not installed (apt-get install podman crun)")]

SUBNET = "10.125.0"
BRIDGE = "cnipod0"
IMAGE = "localhost/nsproc-busybox:test"
WATCHED = ("/var/lib/containers", "/var/lib/cni", "/run/crun", "/run/containers", "/run/libpod", "/etc/cni/net.d",
           "/etc/containers", "/run/netns")

HOLDER = """
set -e
if mountpoint -q /sys/fs/cgroup/unified; then umount /sys/fs/cgroup/unified; fi
for m in /sys/fs/cgroup/*; do if mountpoint -q "$m"; then mount -o remount,bind,ro "$m"; fi; done
if mountpoint -q /sys/fs/cgroup; then mount -o remount,bind,ro /sys/fs/cgroup; fi
mount --bind "$1" /var/lib
echo ready
exec sleep infinity
"""  # the first process of the private mount namespace: prepares it, then keeps it


class Podman:
    """podman confined to a sandbox netns, a private mount namespace and a temporary directory."""

    def __init__(self, box: Sandbox, top: Path) -> None:
        self.box, self.top = box, top
        for sub in ("net.d", "cni-bin", "storage", "run", "tmp", "volumes", "varlib", "crun"):
            (top / sub).mkdir()
        (top / "containers.conf").write_text(f"""[containers]
cgroups = "disabled"
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "crun"
tmp_dir = "{top}/tmp"
volume_path = "{top}/volumes"
image_copy_tmp_dir = "{top}/tmp"
[engine.runtimes]
crun = ["{top}/crun-wrapper"]
[network]
network_backend = "cni"
cni_plugin_dirs = ["{top}/cni-bin"]
network_config_dir = "{top}/net.d"
""")
        (top / "storage.conf").write_text(f"""[storage]
driver = "vfs"
graphroot = "{top}/storage"
runroot = "{top}/run"
""")
        crun = top / "crun-wrapper"
        crun.write_text(f"#!/bin/sh\nexec {shutil.which('crun')} --root={top / 'crun'} \"$@\"\n")
        crun.chmod(0o755)
        self._install_plugin(top / "cni-bin" / "netsetter-cni")
        self.holder = subprocess.Popen(
            ["nsenter", f"--net={box.path}", "unshare", "--mount", "--propagation", "private",
             "sh", "-c", HOLDER, "holder", str(top / "varlib")],
            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, start_new_session=True)
        assert self.holder.stdout is not None
        if self.holder.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the mount namespace for podman could not be prepared ({self.holder.wait()})")

    def close(self) -> None:
        """Remove the containers, then end every process left in the mount namespace (conmon)."""
        self("rm", "--all", "--force", "--time", "0")
        mnt = os.stat(f"/proc/{self.holder.pid}/ns/mnt").st_ino
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                if int(pid) != self.holder.pid and os.stat(f"/proc/{pid}/ns/mnt").st_ino == mnt:
                    os.kill(int(pid), 9)
            except OSError:
                pass
        self.holder.kill()
        self.holder.wait()
        assert self.holder.stdout is not None
        self.holder.stdout.close()

    def calls(self) -> str:
        return self.log.read_text() if self.log.exists() else "(no call)"

    def _install_plugin(self, target: Path) -> None:
        """The installed console script if there is one, else the same lines pip would write;
        behind a shell wrapper that logs each call and the plugin's stderr to plugin.log."""
        installed = Path(sys.executable).parent / "netsetter-cni"
        real = target.with_name("netsetter-cni.real")
        if installed.exists():
            real.symlink_to(installed)
        else:
            real.write_text(f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(ROOT)!r})\n"
                            "from netsetter_cni.main import main\nsys.exit(main())\n")
            real.chmod(0o755)
        self.log = self.top / "plugin.log"
        target.write_text(f"""#!/bin/sh
echo "$CNI_COMMAND netns=$CNI_NETNS id=$CNI_CONTAINERID args=$CNI_ARGS" >> {self.log}
exec {real} 2>> {self.log}
""")
        target.chmod(0o755)

    def network(self, name: str, **plugin: object) -> None:
        conf = {"cniVersion": "1.0.0", "name": name, "plugins": [{
            "type": "netsetter-cni", "bridge": BRIDGE, "isGateway": True, "isDefaultGateway": True,
            "ipMasq": True, "ipam": {"subnet": f"{SUBNET}.0/24", "rangeStart": f"{SUBNET}.10",
                                     "rangeEnd": f"{SUBNET}.50"}, **plugin}]}
        (self.top / "net.d" / f"{name}.conflist").write_text(json.dumps(conf))

    def __call__(self, *args: str, env: dict[str, str] | None = None, timeout: float = 120,
                 ) -> subprocess.CompletedProcess:
        environ = {**os.environ, "CONTAINERS_CONF": str(self.top / "containers.conf"),
                   "CONTAINERS_STORAGE_CONF": str(self.top / "storage.conf"), **(env or {})}
        argv = ["nsenter", f"--target={self.holder.pid}", "--mount", "--net", "podman", *args]
        return subprocess.run(argv, env=environ, capture_output=True, text=True, timeout=timeout)


def busybox_tarball(top: Path) -> Path:
    """runner's built-in root filesystem, as a tarball for `podman import`."""
    from runner import busybox

    root = top / "rootfs"
    root.mkdir()
    busybox.build(root, busybox.find())
    tarball = top / "busybox.tar"
    with tarfile.open(tarball, "w") as tar:
        tar.add(root, arcname=".")
    shutil.rmtree(root)
    return tarball


@pytest.fixture
def podman(sandbox: Callable[[], Sandbox]) -> Iterator[Podman]:
    before = {path: _listing(path) for path in WATCHED}
    top = Path(tempfile.mkdtemp(prefix="nsp-podman-"))
    try:
        engine = Podman(sandbox(), top)
        try:
            imported = engine("import", str(busybox_tarball(top)), IMAGE)
            assert imported.returncode == 0, imported.stderr
            yield engine
        finally:
            engine.close()
    finally:
        shutil.rmtree(top, ignore_errors=True)
        stale = [n for n in os.listdir("/run/netns") if n.startswith("netns-") and n not in (before["/run/netns"] or [])
                 and not os.path.ismount(f"/run/netns/{n}")]
        for name in stale:  # podman's netns files, left only if it could not tear down
            os.unlink(f"/run/netns/{name}")
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


def test_podman_run_shows_the_leased_address_and_leaves_nothing(podman: Podman) -> None:
    podman.network("nsproc")
    run = podman("run", "--rm", "--network", "nsproc", IMAGE, "ip", "-4", "addr", "show", "eth0")
    assert run.returncode == 0, run.stderr
    assert f"inet {SUBNET}.10/24" in run.stdout
    assert leftovers(podman.box) == NOTHING, podman.calls()


def test_the_container_is_reachable_from_the_host_until_removed(podman: Podman) -> None:
    podman.network("nsproc")
    started = podman("run", "--detach", "--name", "pinged", "--network", "nsproc", IMAGE, "sleep", "60")
    assert started.returncode == 0, started.stderr
    ping = podman.box.run("ping", "-c", "1", "-W", "2", f"{SUBNET}.10")
    assert ping.returncode == 0, ping.stdout + ping.stderr
    outbound = podman("exec", "pinged", "ping", "-c", "1", "-W", "2", f"{SUBNET}.1")
    assert outbound.returncode == 0, outbound.stdout + outbound.stderr
    removed = podman("rm", "--force", "--time", "0", "pinged")
    assert removed.returncode == 0, removed.stderr
    assert leftovers(podman.box) == NOTHING, podman.calls()


def test_a_failed_add_fails_the_run_with_our_error_and_leaves_nothing(podman: Podman) -> None:
    podman.network("nsproc")
    run = podman("run", "--rm", "--network", "nsproc", IMAGE, "true",
                 env={"NETSETTER_CNI_TEST_FAIL_AT": "veth"})
    assert run.returncode != 0
    assert "failure injected by NETSETTER_CNI_TEST_FAIL_AT" in run.stderr
    assert leftovers(podman.box) == NOTHING, podman.calls()
