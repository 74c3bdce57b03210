"""What a container cannot reach, tried from inside it as an attacker would (issue 13).

A probe script, run by busybox's sh in the container, tries each way out and
prints one ``key=value`` line per attempt; the tests read those lines and
what the host shows afterwards. Each test runs runner as root in a sandbox of
its own, under both id mappings where they differ: the default (container
ids 0-65535 are host ids 1000000000-1000065535) and --map-root-to-caller
(container root is the host's root, the article's mapping).
"""

from __future__ import annotations

import hashlib
import os
import shlex
import subprocess
import time
from pathlib import Path

import pytest

from runner import idmap

from .sandbox import ROOT
from .test_runner_support import (RUNNER, Leftovers, cache_dir, popen, processes_with, records_of, wait_gone,  # noqa: F401
                                  scratch, start, token)

MAPPINGS = {"unprivileged": [], "root-to-caller": ["--map-root-to-caller"]}
mapping = pytest.mark.parametrize("options", list(MAPPINGS.values()), ids=list(MAPPINGS))

PROBE = r"""
echo "fds=$(ls /proc/self/fd | tr '\n' ' ')"
ls /proc/$$/fd > /tmp/shell-fds
echo "shell_fds=$(tr '\n' ' ' < /tmp/shell-fds)"
ls /proc/self/fd/7/ >/dev/null 2>&1 && echo "fd7=open" || echo "fd7=closed"
ls /proc/1/fd >/dev/null 2>&1 && echo "init_fds=readable" || echo "init_fds=unreadable"
for f in kernel/printk_ratelimit kernel/core_pattern kernel/hostname vm/swappiness net/ipv4/ip_forward; do
  old=$(cat /proc/sys/$f)
  { printf '%s\n' "$old" > /proc/sys/$f; } 2>/dev/null && echo "sys_write=$f" || echo "sys_refused=$f"
done
{ echo h > /proc/sysrq-trigger; } 2>/dev/null && echo "sysrq=written" || echo "sysrq=refused"
for f in kcore keys timer_list sched_debug; do
  if [ ! -e /proc/$f ]; then echo "read_$f=absent"
  elif n=$(cat /proc/$f 2>/dev/null | wc -c) && [ "$n" -gt 0 ]; then echo "read_$f=$n bytes"
  else echo "read_$f=empty"; fi
done
"""


def probe(proc: subprocess.CompletedProcess) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in proc.stdout.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            found.setdefault(key, []).append(value.strip())
    return found


def run_with_fd7(box, cache: Path, directory: Path, *args: str) -> subprocess.CompletedProcess:
    """runner started from a shell that has ``directory`` open on descriptor 7, as in the issue."""
    argv = shlex.join(["ip", "netns", "exec", box.name, "env", f"RUNNER_CACHE_DIR={cache}", *RUNNER, *args])
    return subprocess.run(["sh", "-c", f"exec 7< {shlex.quote(str(directory))}; exec {argv}"], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})


@mapping
def test_no_inherited_descriptor_and_no_way_to_the_host(sandbox, cache_dir, scratch, options):
    box = sandbox()
    secret = scratch / "host-dir"
    secret.mkdir()
    (secret / "secret").write_text("host data\n")
    proc = run_with_fd7(box, cache_dir, secret, "--no-net", *options, "--", "/bin/sh", "-c",
                        PROBE + "cat /proc/self/fd/7/secret 2>/dev/null; cd -P /proc/self/fd/7/../.. 2>/dev/null "
                                "&& echo climbed=yes || echo climbed=no")
    assert proc.returncode == 0, proc.stderr
    seen = probe(proc)
    assert seen["fds"] == ["0 1 2 3"]  # ls's own: stdin, stdout, stderr and the directory it reads
    # busybox sh keeps a copy of its stdout on 10 while a redirection of its own lasts.
    assert set(seen["shell_fds"][0].split()) <= {"0", "1", "2", "10"}, seen["shell_fds"]
    assert seen["fd7"] == ["closed"] and seen["climbed"] == ["no"]
    if not options:  # init is not dumpable: its descriptors are not the command's (but host root's)
        assert seen["init_fds"] == ["unreadable"]
    assert "host data" not in proc.stdout


def test_preserve_fds_passes_exactly_those(sandbox, cache_dir, scratch):
    box = sandbox()
    (scratch / "passed").write_text("passed on purpose\n")
    argv = shlex.join(["ip", "netns", "exec", box.name, "env", f"RUNNER_CACHE_DIR={cache_dir}", *RUNNER,
                       "--no-net", "--preserve-fds", "1", "--", "/bin/sh", "-c", "cat <&3; (ls /proc/$$/fd > /tmp/fds); cat /tmp/fds"])
    proc = subprocess.run(["sh", "-c", f"exec 3< {shlex.quote(str(scratch / 'passed'))} 4< {shlex.quote(str(scratch))}; "
                                       f"exec {argv}"],
                          capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    # 3 kept, 4 closed. The shell's descriptors, read by a subshell while the shell waits: a
    # pipeline's ends would be open in the shell for a moment, and busybox runs a plain `ls`
    # in the shell's own process (its directory would be on 4).
    assert proc.stdout.splitlines() == ["passed on purpose", "0", "1", "2", "3"]


@mapping
def test_kernel_settings_and_secrets_are_out_of_reach(sandbox, cache_dir, options):
    box = sandbox()
    before = Path("/proc/sys/kernel/printk_ratelimit").read_text()
    proc = start(box, cache_dir, "--no-net", *options, "--", "/bin/sh", "-c", PROBE)
    assert proc.returncode == 0, proc.stderr
    seen = probe(proc)
    assert "sys_write" not in seen, seen.get("sys_write")
    assert len(seen["sys_refused"]) == 5
    assert "Read-only file system" in proc.stderr or proc.stderr == ""
    assert seen["sysrq"] == ["refused"]
    for name in ("kcore", "keys", "timer_list", "sched_debug"):
        assert seen[f"read_{name}"][0] in ("absent", "empty"), (name, seen[f"read_{name}"])
    assert Path("/proc/sys/kernel/printk_ratelimit").read_text() == before


def test_unmounted_masks_still_guard_under_the_unprivileged_mapping(sandbox, cache_dir):
    # The container's root owns its mount namespace and can take the read-only
    # /proc/sys away; what is beneath belongs to the host's root, who is not it.
    # The value written is the one already there: a failure of this test changes nothing.
    box = sandbox()
    script = ("umount /proc/sys && echo unmounted; old=$(cat /proc/sys/kernel/printk_ratelimit); "
              "{ printf '%s\\n' \"$old\" > /proc/sys/kernel/printk_ratelimit; } 2>/dev/null "
              "&& echo written || echo refused")
    proc = start(box, cache_dir, "--no-net", "--", "/bin/sh", "-c", script)
    assert proc.stdout.splitlines() == ["unmounted", "refused"], proc.stderr


def tree(path: Path) -> dict[str, str]:
    """Every entry under ``path``: a file's checksum, a link's target, a directory's mode and owner."""
    found = {}
    for top, dirs, files in os.walk(path):
        for name in dirs + files:
            full = os.path.join(top, name)
            st = os.lstat(full)
            if os.path.islink(full):
                found[full] = "-> " + os.readlink(full)
            elif os.path.isfile(full):
                found[full] = hashlib.sha256(Path(full).read_bytes()).hexdigest() + f" {st.st_uid} {oct(st.st_mode)}"
            else:
                found[full] = f"dir {st.st_uid} {oct(st.st_mode)}"
    return found


@mapping
def test_each_container_has_a_writable_layer_of_its_own(sandbox, cache_dir, options):
    box = sandbox()
    first = start(box, cache_dir, "--no-net", *options, "--", "/bin/sh", "-c",
                  "echo evil > /bin/planted && rm /bin/cat && echo evil > /bin/busybox.new && "
                  "mv /bin/busybox.new /bin/ls && echo done")
    assert first.stdout == "done\n", first.stderr
    image = next(p for p in (cache_dir / "rootfs").iterdir() if p.name.startswith("busybox-")
                 and p.name.endswith(f"-u{idmap.RANGE_START}") == (options == []))
    before = tree(image)
    second = start(box, cache_dir, "--no-net", *options, "--", "/bin/sh", "-c",
                   "ls /bin/planted 2>/dev/null; ls /bin/cat; head -c 4 /bin/ls | od -c | head -1")
    assert second.returncode == 0, second.stderr
    assert "planted" not in second.stdout
    assert "/bin/cat" in second.stdout and "E   L   F" in second.stdout
    assert tree(image) == before and before  # the image: same files, same checksums
    assert list((cache_dir / "layers").iterdir()) == []  # both layers removed with their containers


def test_a_kept_layer_holds_what_the_container_wrote(sandbox, cache_dir, scratch):
    box = sandbox()
    kept = scratch / "kept"
    proc = start(box, cache_dir, "--no-net", "--keep-layer", str(kept), "--", "/bin/sh", "-c",
                 "echo mine > /root/note; id -u")
    assert proc.returncode == 0, proc.stderr
    note = kept / "upper" / "root" / "note"
    assert note.read_text() == "mine\n"
    # Started by root with the defaults: the container's file is not host root's.
    assert (note.stat().st_uid, note.stat().st_gid) == (idmap.RANGE_START, idmap.RANGE_START)
    again = start(box, cache_dir, "--no-net", "--keep-layer", str(kept), "--", "/bin/cat", "/root/note")
    assert again.stdout == "mine\n", again.stderr
    plain = start(box, cache_dir, "--no-net", "--", "/bin/cat", "/root/note")
    assert plain.returncode != 0 and plain.stdout == ""


@pytest.mark.parametrize("options, uid", [([], idmap.RANGE_START), (["--map-root-to-caller"], 0)],
                         ids=list(MAPPINGS))
def test_the_command_runs_as_which_host_uid(sandbox, cache_dir, options, uid):
    box = sandbox()
    name = token()
    proc = popen(box, cache_dir, "--no-net", "--hostname", name, *options, "--", "/bin/sh", "-c",
                 "id -u; cat /proc/self/uid_map; echo ready; exec sleep 60")
    try:
        lines = [proc.stdout.readline().split() for _ in range(3)]
        assert lines[0] == ["0"] and lines[2] == ["ready"]
        assert lines[1] == (["0", str(idmap.RANGE_START), str(idmap.RANGE_SIZE)] if not options else ["0", "0", "1"])
        # runner -> child -> init -> the command (`ip netns exec` execs runner: proc.pid is runner's)
        sleeper = proc.pid
        for _ in range(3):
            sleeper = int(Path(f"/proc/{sleeper}/task/{sleeper}/children").read_text().split()[0])
        for _ in range(100):  # the shell execs sleep a moment after it said ready
            if Path(f"/proc/{sleeper}/cmdline").read_bytes() == b"sleep\x0060\x00":
                break
            time.sleep(0.05)
        assert Path(f"/proc/{sleeper}/cmdline").read_bytes() == b"sleep\x0060\x00"
        status = Path(f"/proc/{sleeper}/status").read_text()
        uids = next(line.split()[1:] for line in status.splitlines() if line.startswith("Uid:"))
        gids = next(line.split()[1:] for line in status.splitlines() if line.startswith("Gid:"))
        groups = next(line.split()[1:] for line in status.splitlines() if line.startswith("Groups:"))
        assert uids == [str(uid)] * 4 and gids == [str(uid)] * 4
        if not options:
            assert groups == []  # host root's supplementary groups were dropped
    finally:
        proc.kill()
        proc.communicate(timeout=30)


@pytest.mark.parametrize("args, status, message", [
    (["--rootfs", ""], 2, "invalid --rootfs '': is empty"),
    (["--timeout", "inf"], 2, "invalid --timeout 'inf': must be a finite number of seconds"),
    (["--timeout", "1e300"], 2, "invalid --timeout '1e+300': must be a finite number of seconds"),
    (["--timeout", "nan"], 2, "invalid --timeout 'nan'"),
    (["--", ""], 127, 'failed to execute "": the command name is empty'),
    (["--", "no-such-command"], 127, 'failed to execute "no-such-command": No such file or directory'),
])
def test_bad_input_is_one_line(sandbox, cache_dir, args, status, message):
    box = sandbox()
    proc = start(box, cache_dir, "--no-net", *args)
    assert proc.returncode == status
    assert proc.stderr.startswith(f"runner: error: {message}") and proc.stderr.count("\n") == 1, proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("content, args, status, message", [
    ([], [], 2, "has no /bin/sh to run"),
    ([], ["--", "/bin/true"], 127, 'failed to execute "/bin/true": not found in the root filesystem'),
    (["bin/sh"], ["--", "ls"], 127, 'failed to execute "ls": not found in the root filesystem'),
])
def test_bad_root_is_refused_before_anything_is_made_in_it(sandbox, cache_dir, scratch, content, args, status,
                                                           message):
    box = sandbox()
    root = scratch / "root"
    root.mkdir()
    for name in content:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("")
    before = sorted(str(p) for p in root.rglob("*"))
    proc = start(box, cache_dir, "--no-net", "--rootfs", str(root), *args)
    assert proc.returncode == status
    assert proc.stderr.startswith("runner: error: ") and message in proc.stderr, proc.stderr
    assert proc.stderr.count("\n") == 1
    assert sorted(str(p) for p in root.rglob("*")) == before  # no proc/, no dev/ left in it


def test_next_start_reclaims_what_a_killed_runner_left(sandbox, cache_dir):
    box = sandbox()
    name = token()
    proc = popen(box, cache_dir, "--hostname", name, "--", "/bin/sh", "-c", f"echo ready; exec sleep 60 {name}")
    try:
        assert proc.stdout.readline() == "ready\n", proc.stderr.read()
        assert len(records_of(box)) == 1
        assert len(list((cache_dir / "layers").iterdir())) == 1
        proc.kill()  # SIGKILL: runner undoes nothing
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    wait_gone(name)
    assert len(records_of(box)) == 1  # left behind, with its lease
    assert len(list((cache_dir / "layers").iterdir())) == 1
    name2 = token()
    leftovers = Leftovers(box, name2, cache_dir)
    again = start(box, cache_dir, "--hostname", name2, "--", "/bin/sh", "-c", "ip -o -4 addr show dev veth_conta")
    assert again.returncode == 0, again.stderr
    assert "10.10.10.101/24" in again.stdout  # the dead runner's lease, taken back
    assert leftovers.after() == []  # its record went too
    assert list((cache_dir / "layers").iterdir()) == []


def test_two_containers_at_once_have_layers_of_their_own(sandbox, cache_dir):
    box = sandbox()
    names = [token(), token()]
    # Each writes its name into the same file of the image, waits for the other to have done so, reads it back.
    procs = [popen(box, cache_dir, "--no-net", "--", "/bin/sh", "-c",
                   f"echo {n} > /etc/who; sleep 2; cat /etc/who") for n in names]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert [out for out, _ in outs] == [f"{n}\n" for n in names]
    assert list((cache_dir / "layers").iterdir()) == []


def test_a_cache_the_unprivileged_root_cannot_reach_is_refused_before_anything_is_made(sandbox, tmp_path):
    box = sandbox()
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    proc = start(box, closed / "cache", "--no-net", "--", "/bin/true")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "cannot pass" in proc.stderr and str(closed) in proc.stderr
    assert list(closed.iterdir()) == []
    mapped = start(box, closed / "cache", "--no-net", "--map-root-to-caller", "--", "/bin/true")
    assert mapped.returncode == 0, mapped.stderr
