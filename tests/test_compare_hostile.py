"""netsetter compare against hostile scripts: the guard stops and names the line, the jail holds.

Each script runs twice: guarded, it must be refused at its line with exit 1
before it does anything; unguarded (NETSETTER_COMPARE_UNGUARDED=1, every
command it reaches runs), the jail alone must keep it in. Either way, files
planted outside the sandbox (in /tmp, hidden from the jail, and in /var/tmp,
which it sees read-only), a process planted in namespaces of its own, the
machine's root network namespace, hostname, mounts and named namespaces
must be exactly as before, and nothing of the jail may be left running.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from .sandbox import NETSETTER
from .test_compare import ENV, leftovers, own_jail_ids  # noqa: F401 (the fixture: jail uids of each test's own)

MOUNT_POINTS = ("/", "/proc", "/sys", "/dev", "/dev/shm", "/run", "/tmp", "/var/tmp")


@dataclass
class Machine:
    mark: str  # in the name of everything a hostile script tries to make
    tmp_dir: Path
    tmp_victim: Path
    var_victim: Path
    evil: Path  # a BASH_ENV file outside the sandbox: it would remove the victims
    planted: subprocess.Popen  # unshare --net --pid, and its child:
    planted_pid: int  # a sleep, in a netns and pid namespace of its own
    before: dict

    def values(self) -> dict[str, str]:
        return {"mark": self.mark, "tmp_dir": str(self.tmp_dir), "tmp_victim": str(self.tmp_victim),
                "var_victim": str(self.var_victim), "evil": str(self.evil), "planted": str(self.planted_pid)}


def _ip_json(*args: str) -> object:
    return json.loads(subprocess.run(["ip", "-j", *args], capture_output=True, text=True, check=True).stdout)


def machine_state(mark: str, planted_pid: int) -> dict:
    """What a script that got out could change, read on the machine."""
    links = [{k: link.get(k) for k in ("ifname", "flags", "mtu", "master", "address")} for link in _ip_json("link")]
    addrs = sorted((a["ifname"], i["local"], i["prefixlen"]) for a in _ip_json("addr") for i in a["addr_info"])
    routes = sorted(json.dumps(r, sort_keys=True) for r in _ip_json("route", "show", "table", "all"))
    mounts = sorted(" ".join(line.split()[4:6]) for line in Path("/proc/self/mountinfo").read_text().splitlines()
                    if line.split()[4] in MOUNT_POINTS)
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    planted_links = subprocess.run(["nsenter", f"--net=/proc/{planted_pid}/ns/net", "ip", "-o", "link"],
                                   capture_output=True, text=True).stdout
    with open(f"/proc/{planted_pid}/stat") as stat:
        planted_start = stat.read().rsplit(")", 1)[1].split()[19]
    return {"links": links, "addrs": addrs, "routes": routes, "mounts": mounts,
            "hostname": Path("/proc/sys/kernel/hostname").read_text(),
            "ip_forward": Path("/proc/sys/net/ipv4/ip_forward").read_text(),
            "marked netns": [n for n in netns.split() if mark in n],
            "planted links": [line.split()[1] for line in planted_links.splitlines()],
            "planted start": planted_start}


@pytest.fixture
def machine(tmp_path):
    mark = f"nsph{uuid.uuid4().hex[:8]}"
    tmp_dir = tmp_path / "somewhere"
    var_dir = Path(tempfile.mkdtemp(prefix="nsp-victim-", dir="/var/tmp"))
    victims = []
    for base in (tmp_dir, var_dir):
        victim = base / "victimdir"
        victim.mkdir(parents=True)
        (victim / "file").write_text("victim\n")
        for path, mode in ((base, 0o777), (victim, 0o777), (victim / "file", 0o666)):
            path.chmod(mode)  # anyone may write them: only the jail keeps the script off
        victims.append(victim)
    evil = var_dir / "evil.sh"
    evil.write_text(f"rm -rf {victims[0]} {victims[1]}\ntouch {var_dir}/pwned-bash-env\n")
    evil.chmod(0o755)
    planted = subprocess.Popen(["unshare", "--net", "--pid", "--fork", "--kill-child", "sleep", "600"])
    children = Path(f"/proc/{planted.pid}/task/{planted.pid}/children")
    deadline = time.monotonic() + 10
    while not children.read_text().split():
        assert time.monotonic() < deadline, "the planted sleep did not start"
        time.sleep(0.02)
    planted_pid = int(children.read_text().split()[0])
    try:
        yield Machine(mark, tmp_dir, victims[0], victims[1], evil, planted, planted_pid,
                      machine_state(mark, planted_pid))
    finally:
        planted.kill()
        planted.wait()
        shutil.rmtree(var_dir, ignore_errors=True)


def assert_untouched(m: Machine) -> None:
    for victim in (m.tmp_victim, m.var_victim):
        assert sorted(os.listdir(victim)) == ["file"], victim
        assert (victim / "file").read_text() == "victim\n"
    assert sorted(os.listdir(m.tmp_dir)) == ["victimdir"]
    assert sorted(os.listdir(m.var_victim.parent)) == ["evil.sh", "victimdir"]
    assert m.planted.poll() is None
    assert machine_state(m.mark, m.planted_pid) == m.before
    assert not leftovers()


def run_compare(m: Machine, tmp_path: Path, template: str, *args: str, unguarded: bool = False,
                ) -> subprocess.CompletedProcess:
    script = tmp_path / "hostile.sh"
    script.write_text(template.format(**m.values()))
    env = {**ENV, "NETSETTER_COMPARE_UNGUARDED": "1" if unguarded else ""}
    return subprocess.run([*NETSETTER, "compare", "--script", str(script), *args], capture_output=True, text=True,
                          env=env, timeout=120)


HOSTILE = {  # name: (script, the line refused, what the refusal says)
    "redefines the guard (issue 15)": (
        "__nsp_hook() {{ return 0; }}     # redefine the guard\n"
        "touch {tmp_dir}/pwned\nrm -rf {tmp_victim} {var_victim}\necho $(touch {tmp_dir}/pwned-subst)\n",
        1, "redefines the guard's own function __nsp_hook"),
    "removes the DEBUG trap": (
        "echo start\ntrap - DEBUG\nrm -rf {tmp_victim} {var_victim}\n",
        2, "`trap` sets or removes a trap: the guard's DEBUG trap must stay"),
    "sets a trap of its own": (
        "trap 'rm -rf {var_victim}' EXIT\necho done\n",
        1, "`trap` sets or removes a trap"),
    "eval": (
        "v='rm -rf {var_victim}'\neval \"$v\"\n",
        2, "`eval` runs a string as commands"),
    "BASH_ENV": (
        "export BASH_ENV={evil}\nbash -c true\n",
        1, "sets BASH_ENV"),  # refused at the export already (h-attack); `bash` would be, at line 2
    "arithmetic injection": (
        "printf -v d '\\x24'\nx=\"a[${{d}}(rm -rf {var_victim})]\"\n[[ $x -eq 1 ]]\n",
        3, "runs in a subshell"),
    "exec of another program": (
        "exec /bin/rm -rf {var_victim} {tmp_victim}\n",
        1, "`exec` replaces the shell"),
    "enable -f": (
        "enable -f /usr/lib/bash/rm rm\nrm -rf {var_victim}\n",
        1, "`enable` loads or switches off shell builtins"),
    "nsenter -t 1": (
        "nsenter -t 1 -m -n -p rm -rf {var_victim}\n"
        "nsenter -t {planted} -n ip link add {mark} type dummy\n",
        1, "`nsenter` enters other namespaces"),
    "writes to /proc/sys": (
        "echo 1 > /proc/sys/net/ipv4/ip_forward\necho {mark} > /proc/sys/kernel/hostname\n",
        1, "its words cannot be expanded safely"),
    "kills a host process": (
        "kill -9 {planted}\nkill -9 -1\n",
        1, "`kill` signals processes"),
    "adds a named netns": (
        "ip netns add {mark}\nip link add {mark} type bridge\n",
        1, "ip netns add changes named namespaces outside the sandbox"),
    "a subshell": (
        "echo start\n( rm -rf {var_victim} )\n",
        2, "runs in a subshell"),
    "switches subshell tracing off": (
        "set +T\n( rm -rf {var_victim} )\n",
        1, "set +T: the guard relies on that shell option"),
    "shadows a builtin": (
        "read() {{ :; }}\nrm -rf {var_victim}\n",
        1, "defines the shell function read"),
    # found by h-attack: the guard judged a command by its basename and let any variable be set
    "a program by its path, named ip": (
        "x={tmp_dir}/ip\n$x link show\n",
        2, "runs a program by its path"),
    "PATH": (
        "PATH={tmp_dir}\nip link show\n",
        1, "sets PATH, which decides what the commands the guard lets run really run"),
    "LD_PRELOAD": (
        "LD_PRELOAD={evil} ip link show\n",
        1, "sets LD_PRELOAD"),
    "a name reference": (
        "declare -n r=PATH\nr={tmp_dir}\nip link show\n",
        1, "`declare -n` makes a name reference"),
    "printf -v": (
        "printf -v PATH %s {tmp_dir}\nip link show\n",
        1, "sets PATH"),
    "set -k": (
        "set -k\nip link show LD_PRELOAD={evil}\n",
        1, "set -k: the guard relies on that shell option"),
}


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_script_is_refused_at_its_line(machine, tmp_path, name):
    template, line, reason = HOSTILE[name]
    proc = run_compare(machine, tmp_path, template, "--backend", "all", "--json")
    assert proc.returncode == 1, proc.stderr
    result = json.loads(proc.stdout)
    assert result["verdict"] == "refused"
    assert result["refused"]["line"] == line
    assert result["refused"]["reason"].startswith(reason), result["refused"]
    assert result["backends"] == {}
    assert_untouched(machine)


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_script_is_contained_without_the_guard(machine, tmp_path, name):
    template, _, _ = HOSTILE[name]
    proc = run_compare(machine, tmp_path, template, "--backend", "ip", unguarded=True)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert_untouched(machine)


def test_the_issue_script_is_refused_in_plain_words(machine, tmp_path):
    template = HOSTILE["redefines the guard (issue 15)"][0]
    proc = run_compare(machine, tmp_path, template)
    assert proc.returncode == 1
    assert proc.stdout.splitlines()[-1] == (
        "refused: line 1 `__nsp_hook() { return 0; }     # redefine the guard`: redefines the guard's own "
        "function __nsp_hook; nothing of the script ran, and the port was not run")
    assert_untouched(machine)


def test_a_fork_bomb_is_refused_and_without_the_guard_ends_at_the_time_limit(machine, tmp_path):
    bomb = ":(){{ :|:& }};:\nsleep 100\n"
    proc = run_compare(machine, tmp_path, bomb)
    assert proc.returncode == 1
    assert proc.stdout.splitlines()[-1].startswith("refused: line 1 `:(){ :|:& };:`: defines the shell function :")
    started = time.monotonic()
    proc = run_compare(machine, tmp_path, bomb, "--backend", "ip", "--time-limit", "3", unguarded=True)
    took = time.monotonic() - started
    assert proc.returncode == 1
    assert proc.stderr.strip() == ("netsetter: error: the script ran past its time limit of 3 s: its sandbox was "
                                   "killed (give more with --time-limit)")
    assert 3 <= took < 15, took
    assert_untouched(machine)


def test_the_jails_root_owns_its_namespaces(machine, tmp_path):
    """Unguarded, what the guard refuses works in the jail, and stays there."""
    script = ("ip link add {mark}b type bridge\nip link add {mark}v type veth peer name {mark}w\n"
              "ip link set {mark}w netns $1\nip netns add {mark}\nip netns exec {mark} ip link set lo up\n"
              "ip link set {mark}v netns {mark}\nln -s /proc/$1/ns/net /var/run/netns/$1\n"
              "ip netns exec $1 ip link set {mark}w up\nmount -t tmpfs none /mnt\ntouch /mnt/x /tmp/x\n")
    proc = run_compare(machine, tmp_path, script, "--backend", "ip", "--json", unguarded=True)
    assert proc.returncode == 1, proc.stderr
    commands = json.loads(proc.stdout)["commands"]
    assert [c["status"] for c in commands] == [0] * len(script.splitlines()), commands
    final = commands[-1]["after"]
    assert f"{machine.mark}b" in final["host"]["links"] and f"{machine.mark}w" in final["container"]["links"]
    assert final["netns_entry"] is True
    assert_untouched(machine)


def test_a_killed_compare_leaves_no_jail_behind(tmp_path):
    script = tmp_path / "hangs.sh"
    script.write_text("#!/bin/bash\necho started\nip monitor link\n")
    proc = subprocess.Popen([*NETSETTER, "compare", "--script", str(script), "--backend", "ip"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=ENV)
    deadline = time.monotonic() + 20
    while not leftovers("ip monitor link"):
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "the script never started"
        time.sleep(0.05)
    assert leftovers()  # the jail runs
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    deadline = time.monotonic() + 5
    while leftovers():  # the kernel kills the jail: no handler of compare's runs after SIGKILL
        assert time.monotonic() < deadline, leftovers()
        time.sleep(0.05)
    assert not leftovers("ip monitor link")
