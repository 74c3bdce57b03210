"""The world beyond the bridge: masquerade out, published ports in (iptables).

Why iptables (Debian 12's iptables-nft) rather than a table of our own in
nftables: a packet crosses every base chain hooked at forwarding, and a drop
in any of them wins. A host with Docker sets the iptables FORWARD policy to
drop, so forwarded container traffic is only let through by rules in that
same FORWARD chain; ours jump from its top into NSPROC-FORWARD.

    filter FORWARD     -> NSPROC-FORWARD      accept from the bridge, replies to it, DNAT'd flows
    nat POSTROUTING    -> NSPROC-POSTROUTING  masquerade the subnet leaving by another link
    nat PREROUTING     -> NSPROC-PREROUTING   published ports: DNAT to the container
    nat OUTPUT         -> NSPROC-OUTPUT       the same, for the host's own clients

A routed fleet (runner.Fleet(routed=True)) is an owner too: its containers reach each
other through the host, so the bridge's traffic to itself is accepted in NSPROC-FORWARD,
forwarding is on, and ICMP redirects are off (conf/all and the bridge) while it lives.

What each container asked for is kept in a file of its owner under
/run/ns-proc/netns-<cookie>/nat/; every change rewrites that file and then
reconciles our chains with what all owners want (rules shared by owners
stay while one of them needs them). When the last owner goes, the chains and
jumps go, and forwarding (and redirects) are set back if we were the ones who changed them.
Callers hold the host's lock (:mod:`netsetter.host.lock`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import Any, Iterable

from nskit import boundary
from nskit.errors import OpError, UsageError

from .. import faults
from . import state_dir

FORWARD_SYSCTL = "/proc/sys/net/ipv4/ip_forward"
REDIRECTS_SYSCTL = "/proc/sys/net/ipv4/conf/{}/send_redirects"
CHAINS = {("filter", "NSPROC-FORWARD"): "FORWARD", ("nat", "NSPROC-POSTROUTING"): "POSTROUTING",
          ("nat", "NSPROC-PREROUTING"): "PREROUTING", ("nat", "NSPROC-OUTPUT"): "OUTPUT"}

Rule = tuple[str, str, str]  # table, chain, the rule as `iptables -S` prints it (after -A CHAIN)


@dataclass(frozen=True)
class PortMap:
    host_port: int
    container_port: int
    proto: str = "tcp"

    @classmethod
    def parse(cls, text: str) -> "PortMap":
        """HOSTPORT:CONTAINERPORT, as in `runner start -p 8080:80`."""
        host, sep, container = text.partition(":")
        if not sep or not host.isdigit() or not container.isdigit():
            raise UsageError("published port", text, "must have the form HOSTPORT:CONTAINERPORT, as in 8080:80")
        for port in (int(host), int(container)):
            if not 1 <= port <= 65535:
                raise UsageError("published port", text, f"port {port} is outside 1-65535")
        return cls(int(host), int(container))

    def __str__(self) -> str:
        return f"{self.host_port}:{self.container_port}/{self.proto}"


# --- what owners want --------------------------------------------------------------

def _owner_name(owner: str) -> str:
    return owner.replace("/", "_") + ".json"


def _folder(create: bool = True) -> int | None:
    return state_dir.open_dir("nat", "owners", create=create)


def _load(folder: int, name: str) -> dict[str, Any] | None:
    text = state_dir.read_file(folder, name)
    try:
        data = json.loads(text) if text is not None else None
    except ValueError:
        data = None
    if not isinstance(data, dict) or not {"owner", "masquerade", "publish"} <= set(data):
        return None
    return data


def _owners() -> list[dict[str, Any]]:
    folder = _folder(create=False)
    if folder is None:
        return []
    wanted = []
    for name in sorted(os.listdir(folder)):
        if name.startswith("."):
            continue
        data = _load(folder, name) if name.endswith(".json") else None
        if data is None:
            state_dir.foreign(f"{state_dir.host_dir()}/nat/owners", name, "not a NAT owner file of netsetter")
            continue
        wanted.append(data)
    return wanted


def owners() -> list[str]:
    """Who holds NAT rules here (for `netsetter gc`)."""
    return [data["owner"] for data in _owners()]


def _update(owner: str, **changes: Any) -> None:
    folder = _folder()
    assert folder is not None
    data = _load(folder, _owner_name(owner)) or {"owner": owner, "masquerade": [], "publish": [], "route": []}
    data.setdefault("route", [])
    for key, item in changes.items():
        if item not in data[key]:
            data[key].append(item)
    state_dir.write_file(folder, _owner_name(owner), json.dumps(data))


def _rules(owners: Iterable[dict[str, Any]]) -> set[Rule]:
    rules: set[Rule] = set()
    for data in owners:
        for m in data["masquerade"]:
            br = m["bridge"]
            rules |= {("nat", "NSPROC-POSTROUTING", f"-s {m['subnet']} ! -o {br} -j MASQUERADE"),
                      ("filter", "NSPROC-FORWARD", f"-i {br} ! -o {br} -j ACCEPT"),
                      ("filter", "NSPROC-FORWARD", f"-o {br} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT")}
        for p in data["publish"]:
            br, ip, proto = p["bridge"], p["container"], p["proto"]
            dnat = (f"-p {proto} -m addrtype --dst-type LOCAL -m {proto} --dport {p['host_port']} "
                    f"-j DNAT --to-destination {ip}:{p['container_port']}")
            rules |= {("nat", "NSPROC-PREROUTING", dnat), ("nat", "NSPROC-OUTPUT", dnat),
                      ("filter", "NSPROC-FORWARD", f"-d {ip}/32 -o {br} -p {proto} -m {proto} --dport "
                                                   f"{p['container_port']} -m conntrack --ctstate DNAT -j ACCEPT"),
                      ("filter", "NSPROC-FORWARD", f"-i {br} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT")}
        for r in data.get("route", []):
            rules.add(("filter", "NSPROC-FORWARD", f"-i {r['bridge']} -o {r['bridge']} -j ACCEPT"))
    return rules


def _routed(owners: Iterable[dict[str, Any]]) -> set[str]:
    return {r["bridge"] for data in owners for r in data.get("route", [])}


# --- iptables ---------------------------------------------------------------------------

def _iptables(*args: str, ok: tuple[int, ...] = (0,)) -> str:
    import sh

    try:
        return str(sh.Command("iptables")("-w", *args, _tty_out=False, _ok_code=list(ok),
                                          _preexec_fn=boundary.for_exec))
    except sh.CommandNotFound:
        raise OpError("run", "iptables", "not found on PATH (install the iptables package)") from None
    except sh.ErrorReturnCode as exc:
        cause = exc.stderr.decode(errors="replace").strip() or f"exit status {exc.exit_code}"
        raise OpError("change firewall rules with", "iptables " + " ".join(args), cause) from None


def _present(table: str, chain: str) -> set[str]:
    out = _iptables("-t", table, "-S", chain)
    return {line.split(None, 2)[2] for line in out.splitlines() if line.startswith("-A ")}


def _reconcile() -> list[str]:
    owners = _owners()
    wanted = _rules(owners)
    done: list[str] = []
    for (table, chain), hook in CHAINS.items():
        if _iptables("-t", table, "-S", hook).find(f"-j {chain}") < 0:
            if not any(t == table and c == chain for t, c, _ in wanted):
                continue  # neither there nor wanted
            _iptables("-t", table, "-N", chain, ok=(0, 1))
            _iptables("-t", table, "-I", hook, "1", "-j", chain)
        present = _present(table, chain)
        mine = {r for t, c, r in wanted if (t, c) == (table, chain)}
        for rule in sorted(mine - present):
            _iptables("-t", table, "-A", chain, *rule.split())
            done.append(f"{table} {chain}: added {rule}")
        for rule in sorted(present - mine):
            _iptables("-t", table, "-D", chain, *rule.split())
            done.append(f"{table} {chain}: removed {rule}")
        if not mine:  # the last owner is gone: the chain goes, and the jump to it
            _iptables("-t", table, "-D", hook, "-j", chain)
            _iptables("-t", table, "-X", chain)
    done += _forwarding(bool(wanted))
    done += _redirects(_routed(owners))
    return done


def _forwarding(needed: bool) -> list[str]:
    """Forwarding on while a rule needs it; back off at the end only if we turned it on."""
    marker = state_dir.path("nat", "forwarding-was-off")  # through the open folder: no symlink followed
    with open(FORWARD_SYSCTL) as f:
        on = f.read().strip() == "1"
    if needed and not on:
        os.close(os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600))
        with open(FORWARD_SYSCTL, "w") as f:
            f.write("1")
        return ["net.ipv4.ip_forward = 1"]
    if not needed and os.path.exists(marker):
        os.unlink(marker)
        if on:
            with open(FORWARD_SYSCTL, "w") as f:
                f.write("0")
            return ["net.ipv4.ip_forward = 0 (as it was)"]
    return []


def _redirects(bridges: set[str]) -> list[str]:
    """ICMP redirects off on conf/all and each routed bridge while a routed fleet needs it
    (the kernel sends one when either is 1, and a container told its peer is on the link
    learns it by ARP after all); back on at the end only where we turned them off."""
    folder = state_dir.open_dir("nat")
    assert folder is not None
    needed = {"all", *bridges} if bridges else set()
    done = []
    for name in sorted(needed):
        path = REDIRECTS_SYSCTL.format(name)
        try:
            with open(path) as f:
                if f.read().strip() == "0":
                    continue
        except FileNotFoundError:  # the bridge of an owner not yet released is gone: nothing to turn off
            continue
        state_dir.write_file(folder, f"redirects-were-on.{name}", "")
        with open(path, "w") as f:
            f.write("0")
        done.append(f"net.ipv4.conf.{name}.send_redirects = 0")
    for marker in sorted(os.listdir(folder)):
        name = marker.partition("redirects-were-on.")[2]
        if not name or name in needed:
            continue
        os.unlink(marker, dir_fd=folder)
        try:
            with open(REDIRECTS_SYSCTL.format(name), "w") as f:
                f.write("1")
        except FileNotFoundError:  # the bridge is gone, and its settings with it
            continue
        done.append(f"net.ipv4.conf.{name}.send_redirects = 1 (as it was)")
    return done


# --- the API ------------------------------------------------------------------------------

def route(bridge: str, owner: str) -> list[str]:
    """Let the containers on ``bridge`` reach each other through the host (a routed fleet)."""
    _update(owner, route={"bridge": bridge})
    faults.ENGINE("nat-route")  # for the tests: the owner is written, nothing is set yet
    return _reconcile()


def masquerade(bridge: str, subnet: IPv4Network, owner: str) -> list[str]:
    """Let the subnet reach beyond the bridge, masqueraded as the host."""
    _update(owner, masquerade={"bridge": bridge, "subnet": str(subnet)})
    return _reconcile()


def publish(bridge: str, owner: str, port: PortMap, container: IPv4Address) -> list[str]:
    """Forward the host's ``port.host_port`` to ``container:port.container_port``."""
    for data in _owners():
        for p in data["publish"]:
            if p["host_port"] == port.host_port and p["proto"] == port.proto and data["owner"] != owner:
                raise OpError("publish port", str(port.host_port),
                              f"it is already published to {p['container']}:{p['container_port']}")
    _update(owner, publish={"bridge": bridge, "container": str(container), "host_port": port.host_port,
                            "container_port": port.container_port, "proto": port.proto})
    return _reconcile()


def release(owner: str) -> list[str]:
    """Drop what ``owner`` asked for; shared rules stay while another owner needs them.

    The owner's file is first renamed to a hidden "releasing" name (which :func:`_owners`
    skips), and unlinked only once the rules are reconciled: a release killed in between
    (SIGKILL, or SIGTERM in a CNI DEL) leaves that name, and the next release of the owner
    reconciles again, where a plain unlink first left its rules with no owner to drop them.
    """
    folder = _folder(create=False)
    if folder is None:
        return []
    name = _owner_name(owner)
    releasing = f".{name}.releasing"
    try:
        os.rename(name, releasing, src_dir_fd=folder, dst_dir_fd=folder)
    except FileNotFoundError:
        try:
            os.stat(releasing, dir_fd=folder, follow_symlinks=False)
        except FileNotFoundError:
            return []  # released already, to the end
    faults.ENGINE("nat-release")  # for the tests: a kill here is what the hidden name is for
    done = _reconcile()
    try:
        os.unlink(releasing, dir_fd=folder)
    except FileNotFoundError:
        pass
    return done


def summary() -> list[dict[str, Any]]:
    """Every owner's masquerades and published ports (for `netsetter ls`)."""
    return _owners()


def finish_releases() -> list[str]:
    """Releases a killed process left half done (their hidden "releasing" files), finished:
    the rules reconciled with what the remaining owners want (for `netsetter gc`)."""
    folder = _folder(create=False)
    pending = [n for n in os.listdir(folder) if n.startswith(".") and n.endswith(".releasing")] \
        if folder is not None else []
    if not pending:
        return []
    done = _reconcile()
    for name in pending:
        try:
            os.unlink(name, dir_fd=folder)
        except FileNotFoundError:
            pass
    return [f"finished an interrupted NAT release ({name[1:].removesuffix('.json.releasing')})"
            for name in pending] + done
