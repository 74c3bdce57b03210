"""Issue 14: state and targets netsetter can trust.

Never the machine's own network namespace; never someone else's /var/run/netns
entry; state keyed by the netns cookie, private and not following symlinks;
links that say who made them, so that a run killed at any point is recovered.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest

from backends import NAMES

# Should a refusal ever regress, the first step fails before it changes anything: the
# machine's own namespace is never at risk because of a test.
SAFETY_NET = {"NETSETTER_TEST_FAIL_AT": "bridge-check"}


def one_line_error(proc, status, words):
    assert proc.returncode == status, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("netsetter: error: "), proc.stderr
    assert words in lines[0], lines[0]
    assert "Traceback" not in proc.stderr + proc.stdout


def initial_links() -> list[str]:
    return subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout.split("\n")


@pytest.mark.parametrize("backend", NAMES)
@pytest.mark.parametrize("who", ["pid 1", "a process of the initial netns"])
def test_a_target_in_the_initial_netns_is_refused_from_a_sandbox(sandbox, backend, who):
    box = sandbox()
    before_box, before_machine = box.snapshot(), initial_links()
    pid = "1" if who == "pid 1" else str(os.getpid())  # pytest runs in the machine's own netns
    proc = box.netsetter(pid, "--backend", backend, env=SAFETY_NET)
    one_line_error(proc, 2, "the machine's initial network namespace")
    assert f"pid {pid} " in proc.stderr
    assert box.snapshot() == before_box
    assert initial_links() == before_machine
    assert not os.path.lexists(f"/var/run/netns/{pid}")


@pytest.mark.parametrize("backend", NAMES)
def test_a_symlink_under_var_run_netns_to_another_container_is_refused(sandbox, backend):
    box = sandbox()
    victim, target = box.container(), box.container()
    entry = f"/var/run/netns/{target.pid}"
    os.symlink(f"/proc/{victim.pid}/ns/net", entry)
    try:
        before_box, before_victim, before_target = box.snapshot(), victim.snapshot(), target.snapshot()
        proc = box.netsetter(str(target.pid), "--backend", backend)
        one_line_error(proc, 1, f"{entry} is a symlink to /proc/{victim.pid}/ns/net")
        assert box.snapshot() == before_box
        assert victim.snapshot() == before_victim and target.snapshot() == before_target
        assert os.readlink(entry) == f"/proc/{victim.pid}/ns/net"  # untouched
        # down neither follows nor removes it
        down = box.netsetter("down", str(target.pid), "--backend", backend)
        assert down.returncode == 0, down.stderr
        assert os.readlink(entry) == f"/proc/{victim.pid}/ns/net"
        assert victim.snapshot() == before_victim
    finally:
        os.unlink(entry)


def test_a_named_netns_under_the_pid_is_refused_and_kept(sandbox):
    box = sandbox()
    target = box.container()
    name = str(target.pid)
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        proc = box.netsetter(name)
        one_line_error(proc, 1, "is a named network namespace")
        assert subprocess.run(["ip", "netns", "exec", name, "true"]).returncode == 0
    finally:
        subprocess.run(["ip", "netns", "del", name], check=True)


@pytest.mark.parametrize("backend", NAMES)
def test_a_stale_entry_of_our_own_for_the_same_pid_is_replaced(sandbox, backend):
    box = sandbox()
    c = box.container()
    entry = f"/var/run/netns/{c.pid}"
    os.symlink(f"/proc/{c.pid}/ns/net", entry)  # as a run killed mid-way leaves it
    proc = box.netsetter(str(c.pid), "--backend", backend)
    assert proc.returncode == 0, proc.stderr
    assert not os.path.lexists(entry)
    assert "10.10.10.101/24" in c.run("ip", "-o", "addr").stdout


CNI_CONF = {"cniVersion": "1.0.0", "name": "trust", "type": "netsetter-cni", "bridge": "cni-trust0",
            "isGateway": True, "ipam": {"subnet": "10.123.0.0/24", "rangeStart": "10.123.0.10",
                                        "rangeEnd": "10.123.0.20"}}


def cni(box, command, netns, backend="ip", cid="ctr1", ifname="eth0", conf=None, stdin=None):
    import json

    # the sandbox's suffix: the plugin names the host veth (and its marker) after the id
    env = {"NETSETTER_BACKEND": backend, "CNI_COMMAND": command, "CNI_CONTAINERID": f"{cid}-{box.name[-8:]}",
           "CNI_NETNS": netns, "CNI_IFNAME": ifname, "CNI_PATH": "/usr/lib/cni"}
    return box.run(sys.executable, "-m", "netsetter_cni.main", env=env,
                   stdin=stdin if stdin is not None else json.dumps(conf or CNI_CONF))


@pytest.mark.parametrize("backend", NAMES)
@pytest.mark.parametrize("netns", ["/proc/1/ns/net", "/proc/2/ns/net", "pytest's"])
def test_cni_refuses_the_initial_netns(sandbox, backend, netns):
    import json

    box = sandbox()
    netns = f"/proc/{os.getpid()}/ns/net" if netns == "pytest's" else netns
    before_box, before_machine = box.snapshot(), initial_links()
    proc = cni(box, "ADD", netns, backend)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    out = json.loads(proc.stdout)
    assert out["code"] == 4 and "the machine's initial network namespace" in out["msg"], out
    assert "Traceback" not in proc.stderr
    assert box.snapshot() == before_box and initial_links() == before_machine


# --- state that cannot be inherited, and cannot be steered ---------------------------------

def state_folder(box) -> str:
    from netsetter.host import state_dir
    from nskit.netns import cookie

    return state_dir.host_dir(cookie(box.path))


def ls(box) -> dict:
    import json

    proc = box.netsetter("ls", "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def aged(folder: str) -> None:
    """As if the folder had been left a minute ago: gc leaves alone the folders changed while it looks."""
    then = time.time() - 60
    os.utime(folder, (then, then))


def test_a_gc_leaves_a_folder_made_while_it_looks(sandbox):
    from netsetter.host.gc import gone_folders

    box = sandbox()
    c = box.container()
    assert box.netsetter(str(c.pid)).returncode == 0
    folder = state_folder(box)
    subprocess.run(["ip", "netns", "del", box.name], check=True)
    try:
        assert folder in [path for path, _ in gone_folders(grace=0)]
        assert folder not in [path for path, _ in gone_folders(grace=3600)]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        subprocess.run(["ip", "netns", "add", box.name], capture_output=True)  # for the fixture's close


@pytest.mark.serial
def test_a_fresh_sandbox_never_inherits_a_dead_namespaces_state(sandbox):
    """The kernel hands a freed netns inode to the next netns; the cookie is never reused."""
    from netsetter.host.gc import gone_folders

    name = f"nsp-h14dead-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    container = subprocess.Popen(["unshare", "--net", "sleep", "60"])
    try:
        dead_inode = os.stat(f"/var/run/netns/{name}").st_ino
        run = subprocess.run(["ip", "netns", "exec", name, sys.executable, "-m", "netsetter", "up",
                              str(container.pid)], capture_output=True, text=True,
                             env={**os.environ, "PYTHONPATH": os.getcwd()})
        assert run.returncode == 0, run.stderr
        from netsetter.host import state_dir
        from nskit.netns import cookie

        dead_folder = state_dir.host_dir(cookie(f"/var/run/netns/{name}"))
        assert os.path.isdir(os.path.join(dead_folder, "containers"))
    finally:
        container.kill()
        container.wait()
        subprocess.run(["ip", "netns", "del", name], check=True)  # its state is left behind, as a crash would
    box = sandbox()
    # The kernel hands a freed inode to a later netns, soon or late (namespaces are freed by a
    # work queue, and other processes make namespaces too): plant what that looks like, the
    # dead namespace's folder naming the inode the fresh sandbox has.
    import json

    dead_inode = os.stat(box.path).st_ino
    meta = os.path.join(dead_folder, "netns")
    with open(meta) as f:
        data = json.load(f)
    data["inode"] = dead_inode
    with open(meta, "w") as f:
        json.dump(data, f)
    aged(dead_folder)
    view = ls(box)
    assert view["records_without_link"] == [] and view["bridges"] == [] and view["nat"] == []
    assert state_folder(box) != dead_folder
    assert any(path == dead_folder for path, _ in gone_folders(grace=0))
    gc = box.netsetter("gc")
    assert gc.returncode == 0, gc.stderr
    assert f"removed {dead_folder}: its namespace is gone: net:[{dead_inode}] is another namespace now" \
        in gc.stdout, gc.stdout
    assert not os.path.exists(dead_folder)
    assert not any(path == dead_folder for path, _ in gone_folders(grace=0))


@pytest.mark.serial
def test_gc_removes_every_folder_of_a_namespace_that_no_longer_exists(sandbox):
    from netsetter.host.gc import gone_folders

    box = sandbox()
    c = box.container()
    assert box.netsetter(str(c.pid)).returncode == 0
    folder = state_folder(box)
    subprocess.run(["ip", "netns", "del", box.name], check=True)  # no forget: as a crashed sandbox
    try:
        assert folder in [path for path, _ in gone_folders(grace=0)]
        aged(folder)
        other = sandbox()
        gc = other.netsetter("gc", "--json")
        assert gc.returncode == 0, gc.stderr
        assert any(line.startswith(f"removed {folder}: ") for line in __import__("json").loads(gc.stdout)["removed"])
        assert not os.path.exists(folder)
        assert gone_folders(grace=0) == [] or all(not p.endswith(folder) for p, _ in gone_folders(grace=0))
    finally:
        subprocess.run(["ip", "netns", "add", box.name], capture_output=True)  # for the fixture's close


@pytest.mark.serial
def test_gc_removes_records_leases_and_entries_of_processes_that_are_gone(sandbox):
    box = sandbox()
    c = box.container()
    assert box.netsetter(str(c.pid)).returncode == 0
    pid = c.pid
    entry = f"/var/run/netns/{pid}"
    c.proc.kill()
    c.proc.wait()
    os.symlink(f"/proc/{pid}/ns/net", entry)  # a dangling entry of ours, as a killed run leaves it
    try:
        gc = box.netsetter("gc")
        assert gc.returncode == 0, gc.stderr
        assert f"removed the record of pid {pid} (veth_conta" not in gc.stdout
        assert f"removed the record of pid {pid} (veth_host): its process is gone" in gc.stdout, gc.stdout
        assert f"released 10.10.10.101 on brg-demo: pid:{pid}:" in gc.stdout, gc.stdout
        assert f"removed {entry} -> /proc/{pid}/ns/net: its namespace is gone" in gc.stdout, gc.stdout
        assert not os.path.lexists(entry)
        view = ls(box)
        assert view["records_without_link"] == []
        assert box.netsetter("gc").stdout.strip() == "netsetter gc: nothing to remove"
    finally:
        if os.path.lexists(entry):
            os.unlink(entry)


@pytest.mark.parametrize("where", ["leases/brg-demo", "containers", "leases"])
def test_state_folders_that_are_symlinks_are_refused(sandbox, tmp_path, where):
    box = sandbox()
    c = box.container()
    folder = state_folder(box)
    outside = tmp_path / "outside"
    outside.mkdir()
    os.makedirs(os.path.dirname(os.path.join(folder, where)), mode=0o700, exist_ok=True)
    os.symlink(outside, os.path.join(folder, where))
    before = box.snapshot()
    proc = box.netsetter(str(c.pid))
    one_line_error(proc, 1, "is a symlink or not a directory")
    assert list(outside.iterdir()) == []  # nothing written outside /run/ns-proc
    assert box.snapshot() == before and not c.run("ip", "-o", "addr", "show", "veth_conta").stdout


def test_state_folders_are_private(sandbox):
    box = sandbox()
    c = box.container()
    assert box.netsetter(str(c.pid)).returncode == 0
    folder = state_folder(box)
    for sub in ("", "containers", "leases", "leases/brg-demo"):
        assert os.stat(os.path.join(folder, sub)).st_mode & 0o777 == 0o700, sub


def test_a_foreign_file_is_ignored_with_one_warning(sandbox):
    box = sandbox()
    c = box.container()
    folder = state_folder(box)
    for sub in ("leases/brg-demo", "containers"):
        os.makedirs(os.path.join(folder, sub), mode=0o700, exist_ok=True)
        with open(os.path.join(folder, sub, "README"), "w") as f:
            f.write("not a lease\n")
    up = box.netsetter(str(c.pid))
    assert up.returncode == 0, up.stderr
    assert "Traceback" not in up.stderr
    view = ls(box)
    assert view["bridges"][0]["ports"][0]["container"]["lease"] == "10.10.10.101"
    listing = box.netsetter("ls")
    assert listing.returncode == 0 and listing.stderr.count("ignoring 'README'") == 2, listing.stderr
    down = box.netsetter("down", str(c.pid))
    assert down.returncode == 0, down.stderr
    assert "deleted veth_host" in down.stdout and "released the lease of 10.10.10.101" in down.stdout
    assert "Traceback" not in down.stderr
    assert "veth_host" not in box.snapshot().links


def test_a_failed_run_leaves_no_lease_folder(sandbox):
    box = sandbox()
    c = box.container()
    proc = box.netsetter(str(c.pid), "--bridge", "brtry0", env={"NETSETTER_TEST_FAIL_AT": "veth-add"})
    assert proc.returncode == 1
    assert not os.path.exists(os.path.join(state_folder(box), "leases", "brtry0"))
    assert not os.listdir(os.path.join(state_folder(box), "containers"))


@pytest.mark.parametrize("backend", NAMES)
def test_cni_a_repeated_add_keeps_the_first_adds_lease(sandbox, backend):
    import json

    box = sandbox()
    one, two = box.container(), box.container()
    first = cni(box, "ADD", f"/proc/{one.pid}/ns/net", backend, cid="one")
    assert first.returncode == 0, first.stdout + first.stderr
    again = cni(box, "ADD", f"/proc/{one.pid}/ns/net", backend, cid="one")
    assert again.returncode == 1 and json.loads(again.stdout)["code"] == 104, again.stdout
    second = cni(box, "ADD", f"/proc/{two.pid}/ns/net", backend, cid="two")
    assert second.returncode == 0, second.stdout + second.stderr
    a = json.loads(first.stdout)["ips"][0]["address"]
    b = json.loads(second.stdout)["ips"][0]["address"]
    assert a != b
    assert a.split("/")[0] in one.run("ip", "-o", "addr").stdout
    assert b.split("/")[0] in two.run("ip", "-o", "addr").stdout


# --- a run killed at any point ------------------------------------------------------------

def whole_state(box, c) -> dict:
    """What `up` then `down --bridge` must give back: the sandbox's links, addresses and routes,
    the container's, its /var/run/netns entry, netsetter's records and leases."""
    folder = state_folder(box)

    def listing(sub: str) -> list[str]:
        path = os.path.join(folder, sub)
        return sorted(n for n in os.listdir(path) if not n.startswith(".")) if os.path.isdir(path) else []

    return {"host": box.snapshot(), "container": c.snapshot(), "entry": os.path.lexists(f"/var/run/netns/{c.pid}"),
            "records": listing("containers"), "leases": listing("leases/brg-demo")}


@pytest.mark.slow
@pytest.mark.parametrize("backend", NAMES)
def test_sigkill_at_20_random_points_then_rerun_and_down_leave_the_sandbox_as_before(sandbox, backend):
    import random
    import signal
    import time

    box = sandbox()
    c = box.container()
    before = whole_state(box, c)
    # How long a whole run takes here: the kill points are spread over it.
    started = time.monotonic()
    assert box.netsetter(str(c.pid), "--backend", backend).returncode == 0
    span = time.monotonic() - started
    assert box.netsetter("down", str(c.pid), "--bridge", "--backend", backend).returncode == 0
    assert whole_state(box, c) == before
    rng = random.Random(14)
    for point in range(20):
        delay = rng.uniform(0.1, 1.0) * span
        run = subprocess.Popen(["ip", "netns", "exec", box.name, sys.executable, "-m", "netsetter",
                                str(c.pid), "--backend", backend], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": os.getcwd()})
        time.sleep(delay)
        run.send_signal(signal.SIGKILL)
        run.wait()
        again = box.netsetter(str(c.pid), "--backend", backend)
        assert again.returncode == 0, f"kill {point} after {delay:.3f}s: {again.stderr}"
        assert "10.10.10.101/24" in c.run("ip", "-o", "addr", "show").stdout
        down = box.netsetter("down", str(c.pid), "--bridge", "--backend", backend)
        assert down.returncode == 0, f"kill {point} after {delay:.3f}s: {down.stderr}"
        assert whole_state(box, c) == before, f"kill {point} after {delay:.3f}s"
