"""podman confined: Debian 12's podman 4.3, with its CNI network backend and crun,
run inside a sandbox netns (the sandbox plays the host) and a private mount
namespace, with everything it writes pointed at a temporary directory; nothing
under /etc, /var/lib or /run/crun changes. tests/test_cni_podman.py runs it
with netsetter-cni; the bench's start group times `podman run --rm` with the
reference `bridge` plugin.

One mount namespace serves every podman command of an engine: a holder
process keeps it, and each command enters it with nsenter. It must be the same
one, because podman bind-mounts each container's netns at
/run/netns/netns-<uuid> there; a later `podman rm` in another namespace could
not open it and would skip the network teardown (no DEL at all).

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
import tarfile
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

IMAGE = "localhost/nsproc-busybox:test"
REFERENCE_PLUGINS = "/usr/lib/cni"  # Debian's containernetworking-plugins: bridge, host-local, ...
NETNS_DIR = "/run/netns"  # the machine's; podman makes a file here per container netns

HOLDER = """
set -e
if mountpoint -q /sys/fs/cgroup/unified; then umount /sys/fs/cgroup/unified; fi
for m in /sys/fs/cgroup/*; do if mountpoint -q "$m"; then mount -o remount,bind,ro "$m"; fi; done
if mountpoint -q /sys/fs/cgroup; then mount -o remount,bind,ro /sys/fs/cgroup; fi
mount --bind "$1" /var/lib
echo ready
exec sleep infinity
"""  # the first process of the private mount namespace: prepares it, then keeps it


def missing() -> str | None:
    """Why podman cannot run here, or None."""
    if not (shutil.which("podman") and shutil.which("crun")):
        return "podman and crun are not installed (apt-get install podman crun)"
    return None


class Podman:
    """podman confined to the netns at ``netns`` (a sandbox's path), a private mount
    namespace and the directory ``top``; CNI plugins are looked up in ``plugin_dirs``
    (``top``/cni-bin, made empty, unless given)."""

    def __init__(self, netns: str, top: Path, plugin_dirs: Sequence[str] = ()) -> None:
        self.netns, self.top = netns, top
        for sub in ("net.d", "cni-bin", "storage", "run", "tmp", "volumes", "varlib", "crun"):
            (top / sub).mkdir()
        dirs = json.dumps(list(plugin_dirs) or [str(top / "cni-bin")])
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
cni_plugin_dirs = {dirs}
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
        self.holder = subprocess.Popen(
            ["nsenter", f"--net={netns}", "unshare", "--mount", "--propagation", "private",
             "sh", "-c", HOLDER, "holder", str(top / "varlib")],
            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, start_new_session=True)
        assert self.holder.stdout is not None
        if self.holder.stdout.readline().strip() != "ready":
            self.holder.stdout.close()
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

    def network(self, name: str, plugin: dict[str, object]) -> None:
        """A conflist ``name`` of the one ``plugin`` (its name and cniVersion added)."""
        conf = {"cniVersion": "1.0.0", "name": name, "plugins": [plugin]}
        (self.top / "net.d" / f"{name}.conflist").write_text(json.dumps(conf))

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {**os.environ, "CONTAINERS_CONF": str(self.top / "containers.conf"),
                "CONTAINERS_STORAGE_CONF": str(self.top / "storage.conf"), **(extra or {})}

    def argv(self, *args: str) -> list[str]:
        """The command line of `podman ARGS` in the engine's netns and mount namespace (with :meth:`env`)."""
        return ["nsenter", f"--target={self.holder.pid}", "--mount", "--net", "podman", *args]

    def __call__(self, *args: str, env: dict[str, str] | None = None, timeout: float = 120,
                 ) -> subprocess.CompletedProcess:
        return subprocess.run(self.argv(*args), env=self.env(env), capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)

    def import_busybox(self) -> None:
        """runner's built-in root filesystem as :data:`IMAGE`."""
        imported = self("import", str(busybox_tarball(self.top)), IMAGE)
        if imported.returncode:
            raise RuntimeError(f"podman import failed: {imported.stderr.strip()}")


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


def podman_netns_files() -> set[str]:
    """podman's netns files in the machine's /run/netns."""
    try:
        return {n for n in os.listdir(NETNS_DIR) if n.startswith("netns-")}
    except FileNotFoundError:
        return set()


@contextmanager
def confined(netns: str, plugin_dirs: Sequence[str] = (), install: Callable[[Path], None] | None = None,
             ) -> Iterator[tuple[Podman, list[str]]]:
    """A :class:`Podman` on ``netns`` with :data:`IMAGE` imported, in a new temporary
    directory; afterwards the containers are removed, the engine's processes ended,
    the directory removed, and podman's netns files that it left (only if it could
    not tear down) unlinked and named in the list yielded, for the caller to judge.
    ``install(cni_bin)`` puts plugins into the engine's own plugin dir first."""
    before = podman_netns_files()
    stale: list[str] = []
    top = Path(tempfile.mkdtemp(prefix="nsp-podman-"))
    try:
        engine = Podman(netns, top, plugin_dirs)
        try:
            if install is not None:
                install(top / "cni-bin")
            engine.import_busybox()
            yield engine, stale
        finally:
            engine.close()
    finally:
        shutil.rmtree(top, ignore_errors=True)
        for name in sorted(podman_netns_files() - before):
            if not os.path.ismount(f"{NETNS_DIR}/{name}"):
                os.unlink(f"{NETNS_DIR}/{name}")
                stale.append(name)
