"""Bad input and unfit targets: one line naming the value, an exit status, no change."""

from __future__ import annotations

import pytest

from backends import NAMES

PID_MAX = int(open("/proc/sys/kernel/pid_max").read())

# (arguments after the pid, or None for "use the container's pid"), exit status, words in the message
BAD_OPTIONS = [
    (["--bridge", ""], 2, "bridge name '': is empty"),
    (["--veth-host", "x" * 16], 2, "16 bytes long"),
    (["--veth-container", "a/b"], 2, "'a/b': contains a '/'"),
    (["--bridge", "br 0"], 2, "white space"),
    (["--veth-host", "veth:0"], 2, "contains a ':'"),
    (["--veth-host", "brg-demo"], 2, "is also the bridge name"),
    (["--container-addr", "10.10.10.300/24"], 2, "'10.10.10.300/24'"),
    (["--bridge-addr", "10.10.10.100/33"], 2, "prefix length outside 0-32"),
    (["--container-addr", "fd00::5/64"], 2, "IPv6 is not supported yet"),
    (["--container-addr", "10.10.11.101/24"], 2, "outside the bridge's subnet 10.10.10.0/24"),
    (["--container-addr", "10.10.10.101"], 2, "needs a prefix length"),
    (["--gateway", "10.10.10.101"], 2, "equals the gateway"),
    (["--gateway", "10.10.20.1"], 2, "'10.10.20.1': is outside the container's subnet"),
    (["--bridge-mac", "01:00:5e:00:00:01"], 2, "is a multicast address"),
    (["--bridge-mac", "12:34:56:a1:b2"], 2, "is not a MAC address"),
    (["--backend", "ipx"], 2, "choose one of: ip, netlink"),
    # issue 14: addresses no host may have, prefixes with no room for hosts, reserved names
    (["--bridge-addr", "127.0.0.1/8", "--container-addr", "127.0.0.2/8"], 2, "is a loopback address"),
    (["--bridge-addr", "240.0.0.1/24", "--container-addr", "240.0.0.2/24"], 2, "is a class E address"),
    (["--bridge-addr", "224.0.0.1/24", "--container-addr", "224.0.0.2/24"], 2, "is a multicast address"),
    (["--bridge-addr", "0.1.2.3/24", "--container-addr", "0.1.2.4/24"], 2, "is in 0.0.0.0/8"),
    (["--bridge-addr", "10.0.0.1/0"], 2, "has prefix length /0"),
    (["--bridge-addr", "10.10.10.100/31"], 2, "has prefix length /31"),
    (["--bridge-addr", "10.10.10.100/32"], 2, "has prefix length /32"),
    (["--container-addr", "10.10.10.255/24"], 2, "is the network or broadcast address"),
    (["--container-addr", "10.10.10.0/24"], 2, "is the network or broadcast address"),
    (["--gateway", "10.10.10.0"], 2, "'10.10.10.0': is the network or broadcast address"),
    (["--gateway", "10.10.10.255"], 2, "'10.10.10.255': is the network or broadcast address"),
    (["--gateway", "224.0.0.1"], 2, "'224.0.0.1': is a multicast address"),
    (["--gateway", "127.0.0.1"], 2, "'127.0.0.1': is a loopback address"),
    (["--bridge", "all"], 2, "invalid bridge name 'all': is reserved"),
    (["--bridge", "default"], 2, "invalid bridge name 'default': is reserved"),
    (["--bridge", "."], 2, "the kernel refuses it"),
    (["--veth-host", ".."], 2, "the kernel refuses it"),
    (["--veth-host", "vh%d"], 2, "contains a '%', which the kernel expands"),
    (["--bridge", "br%d"], 2, "contains a '%'"),
    (["--bridg", "x"], 2, "no such option: --bridg"),
]

BAD_PIDS = [
    ("0", 2, "invalid pid '0': must be a positive process id"),
    ("-1", 2, "invalid pid '-1': must be a positive process id"),
    ("abc", 2, "invalid pid 'abc': is not a number"),
    ("\u00b2", 2, "is not a number (ASCII digits 0-9)"),  # superscript two: str.isdigit() says yes
    ("\u0661\u0662", 2, "is not a number (ASCII digits 0-9)"),  # Arabic-Indic 12: int() takes it
    ("-\u0661", 2, "is not a number"),
    (str(PID_MAX + 1), 1, f"no process with pid {PID_MAX + 1}"),
]


def assert_refused(box, container, proc, status, words):
    before_host, before_inside = box.snapshot(), container.snapshot()
    assert proc.returncode == status, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("netsetter: error: ") and words in lines[0], lines[0]
    assert "Traceback" not in proc.stderr + proc.stdout
    assert box.snapshot() == before_host and not box.snapshot().links
    assert container.snapshot() == before_inside
    from netsetter.compare.snapshot import netns_entry_exists

    assert not netns_entry_exists(container.pid)


@pytest.mark.parametrize("args,status,words", BAD_OPTIONS, ids=[" ".join(a) for a, _, _ in BAD_OPTIONS])
def test_bad_option_is_refused(sandbox, args, status, words):
    box = sandbox()
    c = box.container()
    assert_refused(box, c, box.netsetter(str(c.pid), *args), status, words)


@pytest.mark.parametrize("pid,status,words", BAD_PIDS, ids=[p.encode("unicode_escape").decode() for p, _, _ in BAD_PIDS])
def test_bad_pid_is_refused(sandbox, pid, status, words):
    box = sandbox()
    c = box.container()
    assert_refused(box, c, box.netsetter(pid), status, words)


def test_own_pid_is_refused(sandbox):
    box = sandbox()
    c = box.container()
    # `exec` keeps the shell's pid: netsetter is asked to configure itself.
    proc = box.run("sh", "-c", 'exec "$0" -m netsetter $$', __import__("sys").executable)
    assert_refused(box, c, proc, 1, "is netsetter itself")


def test_pid_in_the_callers_netns_is_refused(sandbox):
    box = sandbox()
    c = box.container()
    neighbour = box.run("sh", "-c", "sleep 30 >/dev/null 2>&1 & echo $!")
    pid = neighbour.stdout.strip()
    try:
        proc = box.netsetter(pid)
        assert_refused(box, c, proc, 1, "shares netsetter's network namespace")
        assert "default route on this host" in proc.stderr
    finally:
        __import__("os").kill(int(pid), 9)


def test_unprivileged_user_is_refused(sandbox):
    box = sandbox()
    c = box.container()
    proc = box.netsetter(str(c.pid), user=65534)
    assert_refused(box, c, proc, 1, "needs CAP_NET_ADMIN")


@pytest.mark.parametrize("backend", NAMES)
def test_bridge_name_taken_by_another_kind_of_link(sandbox, backend):
    box = sandbox()
    c = box.container()
    box.ip("link", "add", "brg-demo", "type", "veth", "peer", "name", "other0")
    before = box.snapshot()
    proc = box.netsetter(str(c.pid), "--backend", backend)
    assert proc.returncode == 1
    assert proc.stderr.strip() == ('netsetter: error: step \'bridge-check\' failed: failed to reuse bridge '
                                   '"brg-demo": a link of that name exists and is a veth device, not a '
                                   'bridge; remove it or choose another --bridge')
    assert box.snapshot() == before


def test_ip_backend_without_ip_on_path_says_why(sandbox, tmp_path):
    box = sandbox()
    c = box.container()
    proc = box.netsetter(str(c.pid), "--backend", "ip", env={"PATH": str(tmp_path)})
    assert proc.returncode == 1
    assert proc.stderr.strip() == ("netsetter: error: the ip backend cannot run: ip not found on PATH "
                                   "(install iproute2)")
