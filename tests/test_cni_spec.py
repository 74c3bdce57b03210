"""The CNI plugin against the spec, on the real kernel.

Every test runs the plugin as a runtime does (a process, CNI_* in its
environment, the configuration on stdin) with `ip netns exec SANDBOX`, so the
sandbox plays the host; containers are network namespaces made for the test.
ADD, DEL, CHECK and VERSION, every error code the plugin can produce, DEL's
idempotence, rollback after a failure at each step, both backends.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from backends import NAMES
from netsetter.host import state_dir
from nskit.netns import cookie as netns_cookie, same_netns

from .sandbox import ROOT, Sandbox


PLUGIN = [sys.executable, "-m", "netsetter_cni.main"]
BACKENDS = list(NAMES)
BRIDGE = "cnitest0"
SUBNET = "10.123.0"


def network(**changes: Any) -> dict[str, Any]:
    """The test network: a /24 with a gateway bridge, addresses from .10 to .20."""
    conf: dict[str, Any] = {
        "cniVersion": "1.0.0", "name": "testnet", "type": "netsetter-cni", "bridge": BRIDGE,
        "isGateway": True, "isDefaultGateway": True, "mtu": 1400,
        "ipam": {"subnet": f"{SUBNET}.0/24", "rangeStart": f"{SUBNET}.10", "rangeEnd": f"{SUBNET}.20",
                 "routes": [{"dst": "10.124.0.0/16"}]},
        "dns": {"nameservers": [f"{SUBNET}.1"]},
    }
    conf.update(changes)
    return {k: v for k, v in conf.items() if v is not None}


@dataclass
class Outcome:
    status: int
    out: dict[str, Any] | None
    stdout: str
    stderr: str

    @property
    def code(self) -> int | None:
        return self.out.get("code") if self.out else None


class Plugin:
    """The plugin, run in a sandbox host with one backend."""

    def __init__(self, box: Sandbox, backend: str) -> None:
        self.box, self.backend = box, backend

    def cid(self, cid: str) -> str:
        """The container id as the plugin gets it: the test's, with the sandbox's suffix, since
        the plugin names the host end of the veth pair (and its marker) after it."""
        return f"{cid}-{self.box.name[-8:]}" if cid else cid

    def call(self, command: str | None, conf: dict[str, Any] | str | None = None, *, netns: str = "",
             cid: str = "ctr1", ifname: str = "eth0", cni_args: str = "", **env: str) -> Outcome:
        variables = {"NETSETTER_BACKEND": self.backend, "CNI_CONTAINERID": self.cid(cid), "CNI_NETNS": netns,
                     "CNI_IFNAME": ifname, "CNI_PATH": "/usr/lib/cni", **env}
        if command is not None:
            variables["CNI_COMMAND"] = command
        if cni_args:
            variables["CNI_ARGS"] = cni_args
        stdin = conf if isinstance(conf, str) else json.dumps(conf if conf is not None else network())
        proc = self.box.run(*PLUGIN, env=variables, stdin=stdin)
        try:
            out = json.loads(proc.stdout) if proc.stdout.strip() else None
        except ValueError:
            out = None
        return Outcome(proc.returncode, out, proc.stdout, proc.stderr)

    def add(self, netns: str, conf: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
        got = self.call("ADD", conf, netns=netns, **kw)
        assert got.status == 0, got
        assert got.out is not None
        return got.out

    def ok(self, command: str, netns: str, conf: dict[str, Any] | None = None, **kw: Any) -> None:
        got = self.call(command, conf, netns=netns, **kw)
        assert (got.status, got.stdout) == (0, ""), got


# --- fixtures and helpers ------------------------------------------------------------

@pytest.fixture
def make_netns() -> Iterator[Callable[[], str]]:
    """Container network namespaces, named under /var/run/netns as podman names its own."""
    made: list[str] = []

    def make() -> str:
        name = f"nsp-cni-{uuid.uuid4().hex[:8]}"
        subprocess.run(["ip", "netns", "add", name], check=True)
        made.append(name)
        return f"/var/run/netns/{name}"

    yield make
    for name in made:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


@pytest.fixture(params=BACKENDS)
def plugin(request: pytest.FixtureRequest, sandbox: Callable[[], Sandbox]) -> Plugin:
    return Plugin(sandbox(), request.param)


def ip_json(netns: str, *args: str) -> list[dict[str, Any]]:
    argv = ["ip", "-j", *args] if netns == "" else ["ip", "-n", os.path.basename(netns), "-j", *args]
    return json.loads(subprocess.run(argv, capture_output=True, text=True, check=True).stdout or "[]")


def links(netns: str) -> dict[str, dict[str, Any]]:
    return {link["ifname"]: link for link in ip_json(netns, "-d", "addr", "show")}


def leases(box: Sandbox) -> dict[str, str]:
    folder = Path(state_dir.host_dir(netns_cookie(box.path))) / "leases" / BRIDGE
    if not folder.is_dir():
        return {}
    return {p.name: os.readlink(p) for p in folder.iterdir() if not p.name.startswith(".")}  # -> the owner


def state(box: Sandbox, *netns: str) -> dict[str, Any]:
    """What a failed ADD must leave as it found: links, addresses and routes, leases."""
    def view(ns: str) -> list[Any]:
        return sorted((link["ifname"], link.get("master"),
                       tuple(sorted(a["local"] for a in link.get("addr_info", []) if a["family"] == "inet")))
                      for link in ip_json(ns, "addr", "show"))
    return {"host": view(box.path), "routes": ip_json(box.path, "-4", "route"),
            "containers": [view(ns) for ns in netns] + [ip_json(ns, "-4", "route") for ns in netns],
            "leases": leases(box), "netns entries": naming(*netns)}


def naming(*netns: str) -> list[str]:
    """The entries of /var/run/netns that name one of these namespaces, besides their own path
    (other tests' entries, even the plugin's of other checkouts, are not looked at)."""
    return sorted(entry for n in os.listdir("/var/run/netns") if (entry := f"/var/run/netns/{n}") not in netns
                  and any(same_netns(entry, ns) for ns in netns))


def error_ok(got: Outcome, code: int, version: str = "1.0.0") -> None:
    """An error result as the spec has it: non-zero exit, JSON on stdout with code and msg."""
    assert got.status == 1, got
    assert got.out is not None and set(got.out) <= {"cniVersion", "code", "msg", "details"}, got
    assert (got.out["cniVersion"], got.out["code"]) == (version, code), got
    assert got.out["msg"], got
    assert "Traceback" not in got.stderr, got.stderr


# --- VERSION ----------------------------------------------------------------------------

def test_version_needs_nothing_but_the_command(sandbox: Callable[[], Sandbox]) -> None:
    proc = sandbox().run(*PLUGIN, env={"CNI_COMMAND": "VERSION"}, stdin="")
    assert (proc.returncode, proc.stderr) == (0, "")
    assert json.loads(proc.stdout) == {"cniVersion": "1.1.0",
                                       "supportedVersions": ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]}


HEAVY = ("pyroute2", "sh", "typer", "rich", "asyncio", "backends", "netsetter_cni.commands")


def imported_modules(env: dict[str, str]) -> set[str]:
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c",
                           "import sys; from netsetter_cni.main import main; sys.exit(main())"],
                          env={**os.environ, "PYTHONPATH": str(ROOT), **env}, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)
    return {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}


def test_version_imports_nothing_heavy() -> None:
    names = imported_modules({"CNI_COMMAND": "VERSION"})
    assert "netsetter_cni.main" in names
    assert not {n for n in names if n.split(".")[0] in HEAVY or n in HEAVY}


def test_argument_parsing_imports_nothing_heavy() -> None:
    names = imported_modules({"CNI_COMMAND": "ADD", "CNI_NETNS": "/run/netns/x", "CNI_IFNAME": "eth0"})
    assert "netsetter_cni.args" in names
    assert not {n for n in names if n.split(".")[0] in HEAVY or n in HEAVY}


def test_installed_front_answers_version_itself_and_runs_this_plugin(sandbox: Callable[[], Sandbox]) -> None:
    # What a runtime execs: the installed front, here through a symlink as in /opt/cni/bin.
    script = Path(sys.executable).parent / "netsetter-cni"
    assert script.exists(), "netsetter-cni is not installed in this environment (./dev.sh test installs it)"
    shebang = script.read_text().splitlines()[0]
    assert shebang == "#!/bin/sh", shebang
    box = sandbox()
    link = Path(f"/tmp/nsp-cni-front-{uuid.uuid4().hex[:8]}")
    link.symlink_to(script)
    try:
        version = box.run(str(link), env={"CNI_COMMAND": "VERSION", "PATH": "/nonexistent"}, stdin="")
        assert (version.returncode, version.stderr) == (0, "")
        from netsetter_cni.version import version_result
        assert json.loads(version.stdout) == json.loads(version_result())
        bad = box.run(str(link), env={"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c1", "CNI_IFNAME": "eth0",
                                      "CNI_NETNS": "/var/run/netns/nsp-cni-absent"}, stdin=json.dumps(network()))
        assert bad.returncode == 1 and json.loads(bad.stdout)["code"] == 3, bad  # the plugin ran, from this tree
    finally:
        link.unlink()


# --- ADD ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("cni_version", ["1.0.0", "0.4.0", "0.3.1"])
def test_add_result_and_kernel_agree(plugin: Plugin, make_netns: Callable[[], str], cni_version: str) -> None:
    ns = make_netns()
    out = plugin.add(ns, network(cniVersion=cni_version))
    assert out["cniVersion"] == cni_version
    bridge, host, container = out["interfaces"]
    assert (bridge["name"], container["name"], container["sandbox"]) == (BRIDGE, "eth0", ns)
    assert "sandbox" not in bridge and "sandbox" not in host
    expected_ip = {"address": f"{SUBNET}.10/24", "gateway": f"{SUBNET}.1", "interface": 2}
    if cni_version != "1.0.0":
        expected_ip["version"] = "4"
    assert out["ips"] == [expected_ip]
    assert out["routes"] == [{"dst": "10.124.0.0/16"}, {"dst": "0.0.0.0/0", "gw": f"{SUBNET}.1"}]
    assert out["dns"] == {"nameservers": [f"{SUBNET}.1"]}

    on_host, inside = links(plugin.box.path), links(ns)
    assert on_host[BRIDGE]["address"] == bridge["mac"]
    assert f"{SUBNET}.1" in [a["local"] for a in on_host[BRIDGE]["addr_info"]]
    assert on_host[host["name"]]["master"] == BRIDGE and on_host[host["name"]]["address"] == host["mac"]
    assert inside["eth0"]["address"] == container["mac"] and inside["eth0"]["mtu"] == 1400
    assert "UP" in inside["eth0"]["flags"]
    assert [a["local"] for a in inside["eth0"]["addr_info"] if a["family"] == "inet"] == [f"{SUBNET}.10"]
    routes = {(r["dst"], r.get("gateway")) for r in ip_json(ns, "-4", "route")}
    assert {("default", f"{SUBNET}.1"), ("10.124.0.0/16", f"{SUBNET}.1")} <= routes
    assert leases(plugin.box) == {f"{SUBNET}.10": f"cni:{plugin.cid('ctr1')}:eth0"}


def test_container_is_reachable_from_the_host(plugin: Plugin, make_netns: Callable[[], str]) -> None:
    ns = make_netns()
    plugin.add(ns)
    ping = plugin.box.run("ping", "-c", "1", "-W", "2", f"{SUBNET}.10")
    assert ping.returncode == 0, ping.stdout + ping.stderr
    back = subprocess.run(["ip", "netns", "exec", os.path.basename(ns), "ping", "-c", "1", "-W", "2",
                           f"{SUBNET}.1"], capture_output=True, text=True)
    assert back.returncode == 0, back.stdout + back.stderr


def test_containers_share_the_bridge_and_get_their_own_addresses(plugin: Plugin,
                                                                 make_netns: Callable[[], str]) -> None:
    first, second = make_netns(), make_netns()
    a = plugin.add(first, cid="one")
    b = plugin.add(second, cid="two")
    assert [a["ips"][0]["address"], b["ips"][0]["address"]] == [f"{SUBNET}.10/24", f"{SUBNET}.11/24"]
    assert a["interfaces"][0]["mac"] == b["interfaces"][0]["mac"]  # the bridge keeps its own MAC
    ping = subprocess.run(["ip", "netns", "exec", os.path.basename(first), "ping", "-c", "1", "-W", "2",
                           f"{SUBNET}.11"], capture_output=True, text=True)
    assert ping.returncode == 0, ping.stdout


def test_proc_pid_netns_is_used_without_a_name(plugin: Plugin) -> None:
    """containerd passes /proc/PID/ns/net: reached by an fd, never named under /var/run/netns."""
    container = plugin.box.container()
    path = f"/proc/{container.pid}/ns/net"
    out = plugin.add(path)
    assert out["interfaces"][2]["sandbox"] == path
    assert f"{SUBNET}.10/24" in container.run("ip", "-4", "-o", "addr", "show", "eth0").stdout
    assert naming(path) == []
    container.stop()  # the netns goes, and the veth pair with it
    plugin.ok("DEL", "")  # containerd's DEL after the task exited: no netns at all
    assert leases(plugin.box) == {}


def test_cni_args_ip_picks_the_address(plugin: Plugin, make_netns: Callable[[], str]) -> None:
    out = plugin.add(make_netns(), cni_args=f"IgnoreUnknown=1;K8S_POD_NAME=web;IP={SUBNET}.15")
    assert out["ips"][0]["address"] == f"{SUBNET}.15/24"
    taken = plugin.call("ADD", netns=make_netns(), cid="other", cni_args=f"IP={SUBNET}.15")
    error_ok(taken, 101)
    assert f"leased to cni:{plugin.cid('ctr1')}:eth0" in taken.out["msg"]  # type: ignore[index]


def test_concurrent_adds_never_share_an_address(sandbox: Callable[[], Sandbox],
                                                make_netns: Callable[[], str]) -> None:
    plugin = Plugin(sandbox(), "netlink")
    spaces = [make_netns() for _ in range(6)]
    with ThreadPoolExecutor(len(spaces)) as pool:
        outs = list(pool.map(lambda i: plugin.call("ADD", netns=spaces[i], cid=f"c{i}"), range(len(spaces))))
    assert all(o.status == 0 for o in outs), outs
    addresses = {o.out["ips"][0]["address"] for o in outs}  # type: ignore[index]
    assert len(addresses) == len(spaces)
    assert len(leases(plugin.box)) == len(spaces)


def test_ip_masq_masquerades_the_subnet_until_del(sandbox: Callable[[], Sandbox],
                                                  make_netns: Callable[[], str]) -> None:
    plugin = Plugin(sandbox(), "ip")
    ns, conf = make_netns(), network(ipMasq=True)
    out = plugin.add(ns, conf)
    rules = plugin.box.run("iptables", "-t", "nat", "-S").stdout
    assert f"-s {SUBNET}.0/24 ! -o {BRIDGE} -j MASQUERADE" in rules
    assert plugin.box.run("cat", "/proc/sys/net/ipv4/ip_forward").stdout.strip() == "1"
    plugin.ok("CHECK", ns, {**conf, "prevResult": out})
    plugin.ok("DEL", ns, {**conf, "prevResult": out})
    assert "MASQUERADE" not in plugin.box.run("iptables", "-t", "nat", "-S").stdout
    assert plugin.box.run("cat", "/proc/sys/net/ipv4/ip_forward").stdout.strip() == "0"


def test_without_ipam_the_container_gets_a_link_only(plugin: Plugin, make_netns: Callable[[], str]) -> None:
    ns = make_netns()
    out = plugin.add(ns, network(ipam=None, isDefaultGateway=None))
    assert "ips" not in out and "routes" not in out
    assert "UP" in links(ns)["eth0"]["flags"]


# --- DEL ---------------------------------------------------------------------------------------

def test_del_removes_everything_and_is_idempotent(plugin: Plugin, make_netns: Callable[[], str]) -> None:
    ns = make_netns()
    out = plugin.add(ns)
    host_end = out["interfaces"][1]["name"]
    conf = {**network(), "prevResult": out}
    plugin.ok("DEL", ns, conf)
    assert host_end not in links(plugin.box.path) and "eth0" not in links(ns)
    assert BRIDGE in links(plugin.box.path)  # the bridge stays for the other containers
    assert leases(plugin.box) == {}
    plugin.ok("DEL", ns, conf)  # again
    plugin.ok("DEL", "", conf)  # without a netns
    plugin.ok("DEL", "/var/run/netns/nsp-cni-never-made", conf)  # a netns that does not exist
    plugin.ok("DEL", ns, network(), cid="never-added")  # nothing was ever added


def test_del_after_the_netns_is_gone_releases_the_lease(plugin: Plugin, make_netns: Callable[[], str]) -> None:
    ns = make_netns()
    out = plugin.add(ns)
    subprocess.run(["ip", "netns", "del", os.path.basename(ns)], check=True)
    plugin.ok("DEL", ns)
    assert leases(plugin.box) == {}
    assert out["interfaces"][1]["name"] not in links(plugin.box.path)


def test_del_leaves_a_foreign_link_of_that_name(plugin: Plugin, make_netns: Callable[[], str]) -> None:
    ns = make_netns()
    subprocess.run(["ip", "-n", os.path.basename(ns), "link", "add", "eth0", "type", "bridge"], check=True)
    plugin.ok("DEL", ns)
    assert "eth0" in links(ns)


def test_add_marks_both_ends_as_the_attachments(plugin: Plugin, make_netns: Callable[[], str]) -> None:
    ns = make_netns()
    out = plugin.add(ns, cid="marked")
    host = out["interfaces"][1]["name"]
    assert links(plugin.box.path)[host].get("ifalias") == f"ns-proc:cni:{plugin.cid('marked')}:eth0"
    assert links(ns)["eth0"].get("ifalias") == f"ns-proc:cni:{plugin.cid('marked')}:eth0"


def test_del_of_an_attachment_never_added_leaves_a_foreign_veth(plugin: Plugin,
                                                              make_netns: Callable[[], str]) -> None:
    """A veth named CNI_IFNAME that this attachment did not make (no marker): left, and DEL succeeds."""
    ns = make_netns()
    subprocess.run(["ip", "-n", os.path.basename(ns), "link", "add", "eth0", "type", "veth", "peer", "name", "other0"],
                   check=True)
    plugin.ok("DEL", ns)
    assert {"eth0", "other0"} <= set(links(ns))


def test_del_of_another_attachment_leaves_this_ones_link(plugin: Plugin, make_netns: Callable[[], str]) -> None:
    ns = make_netns()
    plugin.add(ns, cid="one")
    plugin.ok("DEL", ns, cid="two")  # same netns and CNI_IFNAME, another container id: not its eth0
    assert links(ns)["eth0"].get("ifalias") == f"ns-proc:cni:{plugin.cid('one')}:eth0"
    assert list(leases(plugin.box).values()) == [f"cni:{plugin.cid('one')}:eth0"]
    plugin.ok("DEL", ns, cid="one")
    assert "eth0" not in links(ns)
    assert leases(plugin.box) == {}


def test_no_netns_entry_is_made_while_add_runs(plugin: Plugin, tmp_path: Path) -> None:
    """The container's netns is reached through an fd: nothing under /var/run/netns names it, even mid-ADD."""
    container = plugin.box.container()
    path = f"/proc/{container.pid}/ns/net"
    with paused_add(plugin, path, tmp_path, "veth") as proc:
        named = naming(path)
        proc.kill()
        proc.wait()
    assert named == []


@contextmanager
def paused_add(plugin: Plugin, netns: str, tmp_path: Path, point: str, **env: str) -> Iterator[subprocess.Popen[bytes]]:
    """An ADD process paused at ``point`` (the fault hook's FIFO); the block may kill it."""
    fifo = tmp_path / f"pause-{point}"
    os.mkfifo(fifo)
    variables = {"NETSETTER_BACKEND": plugin.backend, "CNI_COMMAND": "ADD", "CNI_CONTAINERID": plugin.cid("ctr1"),
                 "CNI_NETNS": netns, "CNI_IFNAME": "eth0", "NETSETTER_CNI_TEST_PAUSE_AT": f"{point}:{fifo}", **env}
    proc = subprocess.Popen(["ip", "netns", "exec", plugin.box.name, "env",
                             *(f"{k}={v}" for k, v in variables.items()), *PLUGIN],
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(network()).encode())
    proc.stdin.close()
    heard: list[str] = []

    def listen() -> None:
        with open(fifo) as f:
            heard.append(f.readline())

    with ThreadPoolExecutor(1) as pool:
        done = pool.submit(listen)
        try:
            done.result(timeout=60)
        except BaseException:
            proc.kill()
            with open(fifo, "w"):  # free the listener
                pass
            raise
    try:
        assert heard == [f"paused {point}\n"], (heard, proc.poll())
        yield proc
    finally:
        if proc.poll() is None:  # let it go on (non-blocking: a killed one reads no more)
            try:
                fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                pass
            else:
                os.write(fd, b"go\n")
                os.close(fd)
        proc.wait(timeout=60)


@pytest.mark.parametrize("point", ["bridge", "lease", "gateway", "pair", "veth", "container"])
def test_sigkill_mid_add_then_del_leaves_nothing(plugin: Plugin, make_netns: Callable[[], str], tmp_path: Path,
                                                 point: str) -> None:
    """Killed at any stage, the ADD leaves no netns entry; a DEL then removes its links and its lease
    ("pair": the veth pair is made but not yet marked; DEL proves it the attachment's by its peer)."""
    ns = make_netns()
    before = state(plugin.box, ns)
    with paused_add(plugin, ns, tmp_path, point) as proc:
        proc.kill()
        proc.wait()
    assert state(plugin.box, ns)["netns entries"] == []
    plugin.ok("DEL", ns)
    after = state(plugin.box, ns)
    after["host"] = [link for link in after["host"] if link[0] != BRIDGE]  # the network's bridge stays, as DEL keeps it
    before["host"] = [link for link in before["host"] if link[0] != BRIDGE]
    after["routes"] = [r for r in after["routes"] if r.get("dev") != BRIDGE]
    assert after == before


# --- CHECK -------------------------------------------------------------------------------------

def test_check_passes_right_after_add(plugin: Plugin, make_netns: Callable[[], str]) -> None:
    ns = make_netns()
    out = plugin.add(ns)
    plugin.ok("CHECK", ns, {**network(), "prevResult": out})


def _del_route(ns: str, out: dict[str, Any], box: Sandbox) -> None:
    subprocess.run(["ip", "-n", os.path.basename(ns), "route", "del", "10.124.0.0/16"], check=True)


def _del_addr(ns: str, out: dict[str, Any], box: Sandbox) -> None:
    subprocess.run(["ip", "-n", os.path.basename(ns), "addr", "del", f"{SUBNET}.10/24", "dev", "eth0"], check=True)


def _nomaster(ns: str, out: dict[str, Any], box: Sandbox) -> None:
    box.ip("link", "set", out["interfaces"][1]["name"], "nomaster")


def _gateway_gone(ns: str, out: dict[str, Any], box: Sandbox) -> None:
    box.ip("addr", "del", f"{SUBNET}.1/24", "dev", BRIDGE)


def _lease_gone(ns: str, out: dict[str, Any], box: Sandbox) -> None:
    Path(state_dir.host_dir(netns_cookie(box.path)), "leases", BRIDGE, f"{SUBNET}.10").unlink()


def _wrong_mac(ns: str, out: dict[str, Any], box: Sandbox) -> None:
    out["interfaces"][2]["mac"] = "02:00:00:00:00:99"


def _container_end_gone(ns: str, out: dict[str, Any], box: Sandbox) -> None:
    subprocess.run(["ip", "-n", os.path.basename(ns), "link", "del", "eth0"], check=True)


@pytest.mark.parametrize("breakage, named", [
    (_del_route, 'route "10.124.0.0/16"'), (_del_addr, 'address "10.123.0.10/24"'),
    (_nomaster, "host end"), (_gateway_gone, 'bridge "cnitest0"'), (_lease_gone, "not leased"),
    (_wrong_mac, 'interface "eth0"'), (_container_end_gone, 'interface "eth0"'),
])
def test_check_finds_what_changed(plugin: Plugin, make_netns: Callable[[], str],
                                  breakage: Callable[[str, dict[str, Any], Sandbox], None], named: str) -> None:
    ns = make_netns()
    out = plugin.add(ns)
    breakage(ns, out, plugin.box)
    got = plugin.call("CHECK", {**network(), "prevResult": out}, netns=ns)
    error_ok(got, 102)
    assert got.out["msg"].startswith("failed to check ") and named in got.out["msg"], got.out  # type: ignore[index]


def test_check_refusals(plugin: Plugin, make_netns: Callable[[], str]) -> None:
    ns = make_netns()
    out = plugin.add(ns)
    error_ok(plugin.call("CHECK", {**network(cniVersion="0.3.1"), "prevResult": out}, netns=ns), 1, "0.3.1")
    error_ok(plugin.call("CHECK", network(), netns=ns), 7)
    error_ok(plugin.call("CHECK", {**network(), "prevResult": out}, netns="/var/run/netns/nsp-cni-gone"), 3)


# --- every error code -----------------------------------------------------------------------

def _bridge_name_taken(p: Plugin, ns: str) -> Outcome:
    p.box.ip("link", "add", BRIDGE, "type", "veth", "peer", "name", "cnipeer0")
    return p.call("ADD", netns=ns)


def _interface_exists(p: Plugin, ns: str) -> Outcome:
    subprocess.run(["ip", "-n", os.path.basename(ns), "link", "add", "eth0", "type", "bridge"], check=True)
    return p.call("ADD", netns=ns)


ERRORS: list[tuple[str, int, Callable[[Plugin, str], Outcome]]] = [
    ("incompatible version", 1, lambda p, ns: p.call("ADD", network(cniVersion="0.1.0"), netns=ns)),
    ("vlan", 2, lambda p, ns: p.call("ADD", network(vlan=100), netns=ns)),
    ("two ranges for the own allocator", 2,
     lambda p, ns: p.call("ADD", network(ipam={"ranges": [[{"subnet": "10.1.0.0/24"}], [{"subnet": "10.2.0.0/24"}]]}),
                          netns=ns)),
    ("IPAM plugin missing from CNI_PATH", 7,
     lambda p, ns: p.call("ADD", network(ipam={"type": "nsp-no-such-ipam"}), netns=ns)),
    ("netns does not exist", 3, lambda p, ns: p.call("ADD", netns="/var/run/netns/nsp-cni-absent")),
    ("no CNI_COMMAND", 4, lambda p, ns: p.call(None, netns=ns)),
    ("unknown CNI_COMMAND", 4, lambda p, ns: p.call("REPAIR", netns=ns)),
    ("GC of a 1.0.0 network", 1, lambda p, ns: p.call("GC", network())),
    ("bad CNI_CONTAINERID", 4, lambda p, ns: p.call("ADD", netns=ns, cid="-x")),
    ("no CNI_NETNS for ADD", 4, lambda p, ns: p.call("ADD", netns="")),
    ("CNI_IFNAME too long", 4, lambda p, ns: p.call("ADD", netns=ns, ifname="e" * 16)),
    ("unknown CNI_ARGS key", 4, lambda p, ns: p.call("ADD", netns=ns, cni_args="K8S_POD_NAME=web")),
    ("CNI_NETNS is the host's own", 4, lambda p, ns: p.call("ADD", netns=p.box.path)),
    ("DEL in the host's own netns", 4, lambda p, ns: p.call("DEL", netns=p.box.path)),
    ("unknown NETSETTER_BACKEND", 4, lambda p, ns: p.call("ADD", netns=ns, NETSETTER_BACKEND="bogus")),
    ("stdin unreadable", 5, lambda p, ns: _stdin_unreadable(p, ns)),
    ("stdin empty", 6, lambda p, ns: p.call("ADD", "", netns=ns)),
    ("stdin not JSON", 6, lambda p, ns: p.call("ADD", "{not json", netns=ns)),
    ("stdin a JSON list", 6, lambda p, ns: p.call("ADD", "[1, 2]", netns=ns)),
    ("stdin nested 65 deep", 6, lambda p, ns: p.call("ADD", '{"a":' * 65 + "1" + "}" * 65, netns=ns)),
    ("stdin nested 100000 deep", 6, lambda p, ns: p.call("ADD", "[" * 100_000, netns=ns)),
    ("stdin over 1 MiB", 6, lambda p, ns: p.call("ADD", json.dumps({**network(), "pad": "x" * (1 << 20)}),
                                                  netns=ns)),
    ("no name", 7, lambda p, ns: p.call("ADD", network(name=None), netns=ns)),
    ("bad mtu", 7, lambda p, ns: p.call("ADD", network(mtu=20), netns=ns)),
    ("range reversed", 7, lambda p, ns: p.call("ADD", network(ipam={"subnet": "10.1.0.0/24", "rangeStart": "10.1.0.9",
                                                                   "rangeEnd": "10.1.0.3"}), netns=ns)),
    ("bridge name taken by another kind of link", 100, lambda p, ns: _bridge_name_taken(p, ns)),
    ("no address left", 101, lambda p, ns: _exhaust(p, ns)),
    ("backend cannot run", 103,
     lambda p, ns: p.call("ADD", netns=ns, NETSETTER_BACKEND="ip", PATH="/nonexistent")),
    ("interface exists in the container", 104, lambda p, ns: _interface_exists(p, ns)),
]


def _stdin_unreadable(p: Plugin, ns: str) -> Outcome:
    """stdin opened for writing only: read(2) fails with EBADF."""
    env = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c", "CNI_NETNS": ns, "CNI_IFNAME": "eth0"}
    proc = p.box.run("sh", "-c", f"exec {' '.join(PLUGIN)} 0>/dev/null", env=env)
    return Outcome(proc.returncode, json.loads(proc.stdout), proc.stdout, proc.stderr)


def _exhaust(p: Plugin, ns: str) -> Outcome:
    tiny = network(ipam={"subnet": "10.1.0.0/24", "rangeStart": "10.1.0.5", "rangeEnd": "10.1.0.5"})
    p.add(ns, tiny, cid="first")
    other = f"/proc/{p.box.container().pid}/ns/net"
    return p.call("ADD", tiny, netns=other, cid="second")


@pytest.mark.parametrize("case, code, provoke", ERRORS, ids=[e[0] for e in ERRORS])
def test_every_error_code_is_the_specs_error_result(sandbox: Callable[[], Sandbox], make_netns: Callable[[], str],
                                                   case: str, code: int,
                                                   provoke: Callable[[Plugin, str], Outcome]) -> None:
    plugin = Plugin(sandbox(), "netlink")
    ns = make_netns()
    before = state(plugin.box, ns)
    got = provoke(plugin, ns)
    # in the configuration's version once it is read; before, or for a version not spoken, the latest
    error_ok(got, code, "1.1.0" if code in (1, 5, 6) and "GC" not in case or "CNI_COMMAND" in case else "1.0.0")
    if code not in (100, 101, 104):  # those set something up on purpose first
        assert state(plugin.box, ns) == before


# --- rollback ----------------------------------------------------------------------------------

STEPS = ["start", "bridge", "lease", "gateway", "pair", "veth", "container", "masquerade"]


@pytest.mark.parametrize("step", STEPS)
def test_a_failed_add_leaves_the_host_as_it_was(plugin: Plugin, make_netns: Callable[[], str], step: str) -> None:
    ns = make_netns()
    before = state(plugin.box, ns)
    nat_before = plugin.box.run("iptables", "-t", "nat", "-S").stdout
    got = plugin.call("ADD", network(ipMasq=True), netns=ns, NETSETTER_CNI_TEST_FAIL_AT=step)
    error_ok(got, 100)
    assert got.out["details"] == "what was made was undone"  # type: ignore[index]
    assert state(plugin.box, ns) == before
    assert plugin.box.run("iptables", "-t", "nat", "-S").stdout == nat_before


def test_a_failed_add_keeps_the_bridge_other_containers_use(plugin: Plugin, make_netns: Callable[[], str]) -> None:
    first, second = make_netns(), make_netns()
    plugin.add(first, cid="one")
    before = state(plugin.box, first, second)
    error_ok(plugin.call("ADD", netns=second, cid="two", NETSETTER_CNI_TEST_FAIL_AT="container"), 100)
    assert state(plugin.box, first, second) == before
    ping = plugin.box.run("ping", "-c", "1", "-W", "2", f"{SUBNET}.10")
    assert ping.returncode == 0
