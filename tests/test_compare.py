"""netsetter compare and --dry-run, against the original script and altered copies of it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid

import pytest

from backends import NAMES
from netsetter.compare.jail import JAIL_IDS, JAIL_IDS_ENV, jail_ids

from .sandbox import NETSETTER, ROOT

ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
BLOCK = 1 << 16  # jail uids of one test


@pytest.fixture(autouse=True)
def own_jail_ids():
    """Each test's jails take their uids from a block of their own (NETSETTER_JAIL_IDS), so
    that leftovers() sees this test's jails and not those of a test beside it (-n) or of
    another run on the machine."""
    block = uuid.uuid4().int % (len(JAIL_IDS) // BLOCK)
    first = JAIL_IDS.start + block * BLOCK
    ENV[JAIL_IDS_ENV] = f"{first}-{first + BLOCK - 1}"
    yield
    del ENV[JAIL_IDS_ENV]


def compare(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*NETSETTER, "compare", *args], capture_output=True, text=True, env=ENV, timeout=120)


def leftovers(running: str = "") -> list[str]:
    """Processes of this test's jails still alive (zombies, already dead, aside): compare makes
    nothing on the machine but its jails (their namespaces go with their last process), and
    kills every one it made. A jail's processes all have its uid, which no process in it can
    change on the machine. With ``running``, only those whose command line holds it."""
    ids = jail_ids(ENV)
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/status") as status:
                fields = dict(line.split(":", 1) for line in status if ":" in line)
            uid, state = int(fields["Uid"].split()[0]), fields["State"].split()[0]
        except (OSError, KeyError, ValueError):
            continue
        if uid in ids and state != "Z" and (not running or running in _command_line(pid)):
            found.append(f"{pid} (uid {uid})")
    return found


def _command_line(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


@pytest.fixture
def altered(tmp_path, original_script):
    """A copy of the original script with one change."""
    def make(edit) -> str:
        path = tmp_path / "netsetter-altered.sh"
        path.write_text(edit(original_script.read_text()))
        return str(path)
    return make


def test_original_script_is_the_same_as_every_backend(original_script):
    proc = compare("--script", str(original_script), "--backend", "all", "--json")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    result = json.loads(proc.stdout)
    assert result["verdict"] == "same" and result["script_status"] == 0
    assert set(result["backends"]) == set(NAMES)
    rows = result["rows"]
    commands = [r["command"] for r in rows if r["command"]]
    # one row per command bash ran: 2 echos, 7 assignments, 11 ip lines, NETNS=, 2 tests, ln, echo, rm
    assert len(commands) == 26
    assert commands[9]["text"] == "ip link del $bridge_nic" and commands[9]["status"] == 1
    assert "Cannot find device" in commands[9]["output"]
    assert commands[0]["output"].startswith("usage:")
    for backend in NAMES:
        assert {r["status"][backend] for r in rows} <= {"same", "deliberate"}, backend
        assert len(result["backends"][backend]["steps"]) == 14
    deliberate = [r["step"] for r in rows if r["deliberate"]]
    assert deliberate == ["bridge-check", "netns-expose", "container-lo-up"]
    # every snapshot is in the JSON: the script's after each command, the port's after each step
    assert all(c["after"]["container"] is not None for c in commands)
    final = result["backends"]["ip"]["steps"][-1]["after"]
    assert "default via 10.10.10.100 dev veth_conta" in " ".join(final["container"]["routes"]) or \
        any(r.startswith("0.0.0.0/0 via 10.10.10.100") or r.startswith("default via 10.10.10.100")
            for r in final["container"]["routes"])
    assert not leftovers()


def test_plain_table_has_one_row_per_command(original_script):
    proc = compare("--script", str(original_script), "--backend", "ip")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[-1].startswith("same: the port (ip) ends every aligned command in the script's state")
    assert any("ip link del $bridge_nic" in line and "bridge-check (deliberate)" in line and "ip: same" in line
               for line in lines)
    assert any("(not in the script)" in line and "container-lo-up (deliberate)" in line for line in lines)


@pytest.mark.parametrize("backend", NAMES)
def test_another_container_address_is_found_at_its_step(altered, backend):
    script = altered(lambda s: s.replace("veth_container_ip='10.10.10.101/24'", "veth_container_ip='10.10.10.150/24'"))
    proc = compare("--script", script, "--backend", backend)
    assert proc.returncode == 1
    assert proc.stdout.splitlines()[-1] == (
        f"different ({backend}): first at line 50 `ip netns exec $NETNS ip addr add $veth_container_ip dev "
        "$veth_container`, port step 10 container-addr")
    assert "    addr missing in container: inet 10.10.10.150/24 scope global dev veth_conta" in proc.stdout
    assert "    addr extra in container: inet 10.10.10.101/24 scope global dev veth_conta" in proc.stdout
    assert not leftovers()


def test_removed_route_line_is_found_at_its_step(altered):
    script = altered(lambda s: "\n".join(line for line in s.splitlines() if "ip route add default" not in line))
    proc = compare("--script", script, "--backend", "all", "--json")
    assert proc.returncode == 1
    result = json.loads(proc.stdout)
    row = next(r for r in result["rows"] if r["step"] == "container-route")
    assert row["command"] is None
    for backend in NAMES:
        assert row["status"][backend] == "differs"
        assert row["differences"][backend] == ["step container-route has no line in the script",
                                               "route extra in container: default via 10.10.10.100 dev veth_conta"]
    assert not leftovers()


def test_extra_mtu_line_is_found_at_its_line(altered):
    script = altered(lambda s: s.replace("ip link set $veth_host master $bridge_nic",
                                         "ip link set $veth_host master $bridge_nic\nip link set $veth_host mtu 1400"))
    proc = compare("--script", script, "--backend", "ip")
    assert proc.returncode == 1
    assert "line 31 `ip link set $veth_host mtu 1400` [ip: differs]" in proc.stdout
    assert "    link veth_host in host: mtu 1400 in script, 1500 in port" in proc.stdout
    assert proc.stdout.splitlines()[-1] == "different (ip): first at line 31 `ip link set $veth_host mtu 1400`, port step —"
    assert not leftovers()


def test_script_failing_half_way_leaves_nothing(altered):
    script = altered(lambda s: s.replace("ip link set $veth_host up", "set -e\nip link set nosuchlink up"))
    proc = compare("--script", script, "--backend", "ip", "--json")
    assert proc.returncode == 1
    result = json.loads(proc.stdout)
    assert result["script_status"] == 1
    assert result["rows"][-1]["status"]["ip"] in ("differs", "carried")
    assert not leftovers()


@pytest.mark.parametrize("line,reason", [
    ("ip link set lo netns 1", "moves a link into netns 1, not the container's"),
    ("rm -rf /etc/hostname", "rm of /etc/hostname: only entries the script made under /var/run/netns may be removed"),
    ("curl http://example.com", "`curl` is not an ip, echo, mkdir, ln or rm command"),
    ("x=$(hostname)", "its words cannot be expanded safely"),
    ("ip netns add other", "ip netns add changes named namespaces outside the sandbox"),
])
def test_a_line_that_cannot_run_in_a_sandbox_stops_the_script(tmp_path, line, reason):
    script = tmp_path / "bad.sh"
    script.write_text(f"#!/bin/bash\necho before\n{line}\necho after\n")
    proc = compare("--script", str(script), "--backend", "ip")
    assert proc.returncode == 1, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == f"netsetter compare: {script} (refused)"
    assert lines[1].split() == ["2", "echo", "before", "ran,", "exit", "0"]
    assert lines[-1].startswith(f"refused: line 3 `{line}`: {reason}")
    assert lines[-1].endswith("the script was stopped there, and the port was not run")
    assert "after" not in proc.stdout
    assert os.path.exists("/etc/hostname")
    assert not leftovers()


def test_a_refused_script_in_json(tmp_path):
    script = tmp_path / "bad.sh"
    script.write_text("echo before\ntrap - DEBUG\necho after\n")
    proc = compare("--script", str(script), "--backend", "all", "--json")
    assert proc.returncode == 1
    result = json.loads(proc.stdout)
    assert result["verdict"] == "refused"
    assert result["refused"] == {"line": 2, "text": "trap - DEBUG",
                                 "reason": "`trap` sets or removes a trap: the guard's DEBUG trap must stay"}
    assert [c["text"] for c in result["commands"]] == ["echo before", "trap - DEBUG"]
    assert result["commands"][0]["output"] == "before" and result["commands"][1]["refused"]
    assert result["backends"] == {} and result["rows"] == []


@pytest.mark.parametrize("sig,status,word", [(signal.SIGINT, 130, "interrupted"),
                                             (signal.SIGTERM, 143, "terminated")])
def test_interrupted_compare_removes_its_sandboxes(tmp_path, sig, status, word):
    script = tmp_path / "hangs.sh"
    script.write_text("#!/bin/bash\necho started\nip monitor link\n")  # runs until stopped
    proc = subprocess.Popen([*NETSETTER, "compare", "--script", str(script), "--backend", "ip"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    deadline = time.monotonic() + 20
    while not leftovers("ip monitor link"):
        assert time.monotonic() < deadline, "the script never started"
        time.sleep(0.05)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == status, err
    assert err.strip() == f"netsetter: {word}"
    assert not leftovers()
    assert not leftovers("ip monitor link")


def test_dry_run_changes_nothing_and_runs_as_the_port_does(sandbox):
    ref_box, dry_box = sandbox(), sandbox()
    ref_c, dry_c = ref_box.container(), dry_box.container()
    before = dry_box.snapshot(), dry_c.snapshot()
    dry = dry_box.netsetter(str(dry_c.pid), "--dry-run", "--container-addr", "10.10.10.123/24")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith("#!/usr/bin/env bash\n")
    assert (dry_box.snapshot(), dry_c.snapshot()) == before
    assert "# 13/14 container-route: add the default route via the bridge" in dry.stdout
    ran = dry_box.run("bash", "-s", stdin=dry.stdout)
    assert ran.returncode == 0, ran.stderr
    port = ref_box.netsetter(str(ref_c.pid), "--container-addr", "10.10.10.123/24")
    assert port.returncode == 0, port.stderr
    assert dry_box.snapshot() == ref_box.snapshot()
    assert dry_c.snapshot() == ref_c.snapshot()
    assert "inet 10.10.10.123/24 scope global dev veth_conta" in dry_c.snapshot().addrs
    assert not os.path.lexists(f"/var/run/netns/{dry_c.pid}")
    # and lo, which the snapshots set aside, is up on both sides
    for c in (dry_c, ref_c):
        assert "UP" in json.loads(c.run("ip", "-j", "link", "show", "lo").stdout)[0]["flags"]


def test_dry_run_refuses_bad_input():
    proc = subprocess.run([*NETSETTER, "1", "--dry-run", "--bridge-mac", "ff:ff:ff:ff:ff:ff"],
                          capture_output=True, text=True, env=ENV)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip() == ("netsetter: error: invalid bridge MAC 'ff:ff:ff:ff:ff:ff': is a multicast "
                                   "address; a link needs a unicast MAC (the lowest bit of the first byte must be 0)")
