"""A normalised picture of a network namespace, in `ip`'s own words.

Used to prove that two runs (the original script and a backend) end in the
same state, whatever the interface indexes and random MACs. Read with the
`ip` binary itself, never with the code under test:

- links: kind, master, administrative state, MTU, and the MAC where the
  script fixes it (bridges); veth MACs are random and left out;
- IPv4 addresses and IPv4 routes of every table, written as `ip` writes them;
- ``lo`` is set aside (the port brings it up on purpose), and so is IPv6,
  which the kernel configures on its own (link-local addresses, not the script).

Carrier-dependent details (operstate, the route flag ``linkdown``) are left
out too: the kernel updates them asynchronously, so they are not the
script's doing and would make snapshots racy.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class NetnsRef:
    """How to run `ip` in a namespace: by name (/var/run/netns) or by pid."""

    name: str | None = None
    pid: int | None = None

    def argv(self, *ip_args: str) -> list[str]:
        if self.name:
            return ["ip", "-n", self.name, *ip_args]
        if self.pid:
            return ["nsenter", f"--net=/proc/{self.pid}/ns/net", "ip", *ip_args]
        return ["ip", *ip_args]


@dataclass
class Snapshot:
    links: dict[str, dict[str, Any]] = field(default_factory=dict)
    addrs: list[str] = field(default_factory=list)
    routes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"links": self.links, "addrs": self.addrs, "routes": self.routes}

    def lines(self) -> set[str]:
        """Every fact as one line of `ip`-like text, for diffs."""
        out = {f"link {name}: " + " ".join(f"{k} {v}" for k, v in attrs.items() if v is not None)
               for name, attrs in self.links.items()}
        out |= {f"addr {a}" for a in self.addrs}
        out |= {f"route {r}" for r in self.routes}
        return out


# One `ip` process reads a namespace: its links (with their kind), their IPv4 addresses,
# and the IPv4 routes of every table, as three commands of one batch (`-4 -d` for all three).
READ = "link show\naddr show\nroute show table all\n"
# What -d adds to a route that `ip route` alone leaves unsaid: its defaults, as iproute2's
# print_route leaves them out without -d (the type unicast, the table main, the scope global;
# the protocol boot is left out by route_text).
ROUTE_DEFAULTS = (("type", "unicast"), ("table", "main"), ("scope", "global"))


def _ip_batch(ref: NetnsRef) -> list[list[dict[str, Any]]]:
    """The JSON answer of each command of READ, in order."""
    proc = subprocess.run(ref.argv("-4", "-d", "-j", "-batch", "-"), input=READ, capture_output=True,
                          text=True, check=True)
    decoder, text, at, answers = json.JSONDecoder(), proc.stdout, 0, []
    while True:
        while at < len(text) and text[at].isspace():
            at += 1
        if at == len(text):
            break
        answer, at = decoder.raw_decode(text, at)
        answers.append(answer)
    if len(answers) != READ.count("\n"):
        raise subprocess.CalledProcessError(proc.returncode, proc.args, proc.stdout,
                                            f"ip answered {len(answers)} of the {READ.count(chr(10))} reads")
    return answers


def link_line(link: dict[str, Any]) -> dict[str, Any]:
    info = link.get("linkinfo", {})
    kind = info.get("info_kind")
    return {
        "kind": kind or "device",
        "master": link.get("master"),
        "state": "up" if "UP" in link.get("flags", []) else "down",
        "mtu": link.get("mtu"),
        "address": link.get("address") if kind == "bridge" else None,
    }


def route_text(route: dict[str, Any]) -> str:
    words = []
    if route.get("type", "unicast") != "unicast":
        words.append(route["type"])
    words.append(route["dst"])
    for key, word in (("gateway", "via"), ("dev", "dev"), ("table", "table"), ("protocol", "proto"),
                      ("scope", "scope"), ("prefsrc", "src"), ("metric", "metric")):
        if key in route and not (key == "protocol" and route[key] == "boot"):
            words += [word, str(route[key])]
    return " ".join(words)


def take(ref: NetnsRef) -> Snapshot:
    """Read the state of one namespace now."""
    snap = Snapshot()
    links, addrs, routes = _ip_batch(ref)
    for link in links:
        if link["ifname"] != "lo":
            snap.links[link["ifname"]] = link_line(link)
    for link in addrs:
        name = link["ifname"]
        if name == "lo":
            continue
        for a in link.get("addr_info", []):
            if a.get("family") == "inet":
                brd = f" brd {a['broadcast']}" if "broadcast" in a else ""
                snap.addrs.append(f"inet {a['local']}/{a['prefixlen']}{brd} scope {a['scope']} dev {name}")
    for route in routes:
        if route.get("dev") != "lo":
            snap.routes.append(route_text({k: v for k, v in route.items() if (k, v) not in ROUTE_DEFAULTS}))
    snap.addrs.sort()
    snap.routes.sort()
    return snap


def netns_entry_exists(pid: int) -> bool:
    return os.path.lexists(f"/var/run/netns/{pid}")


@dataclass
class State:
    """Both sides of one sandbox at one moment: the host, the container, the entry."""

    host: Snapshot
    container: Snapshot
    entry: bool

    def as_dict(self) -> dict[str, Any]:
        return {"host": self.host.as_dict(), "container": self.container.as_dict(), "netns_entry": self.entry}


def state_of(host: NetnsRef, container_pid: int) -> State:
    return State(take(host), take(NetnsRef(pid=container_pid)), netns_entry_exists(container_pid))


def _link_words(attrs: dict[str, Any]) -> str:
    return " ".join(f"{k} {v}" for k, v in attrs.items() if v is not None)


def diff(reference: State, other: State) -> list[str]:
    """How ``other`` differs from ``reference``, in `ip`'s words.

    "missing": the reference has it and the other has not; "extra": the other way.
    """
    out: list[str] = []
    for where in ("host", "container"):
        ref, oth = getattr(reference, where), getattr(other, where)
        for name in sorted(set(ref.links) | set(oth.links)):
            a, b = ref.links.get(name), oth.links.get(name)
            if a is None:
                out.append(f"link extra in {where}: {name} {_link_words(b)}")
            elif b is None:
                out.append(f"link missing in {where}: {name} {_link_words(a)}")
            else:
                for key in a:
                    if a[key] != b.get(key):
                        out.append(f"link {name} in {where}: {key} {a[key]} in script, {b.get(key)} in port")
        for kind, ref_items, oth_items in (("addr", ref.addrs, oth.addrs), ("route", ref.routes, oth.routes)):
            out += [f"{kind} missing in {where}: {x}" for x in ref_items if x not in oth_items]
            out += [f"{kind} extra in {where}: {x}" for x in oth_items if x not in ref_items]
    if reference.entry != other.entry:
        have = "present" if reference.entry else "absent"
        out.append(f"/var/run/netns entry {have} in script, {'present' if other.entry else 'absent'} in port")
    return out
