"""netsetter ls: the article's network figure, read from the host as it is now.

    bridges and their ports      `ip -j` in the current netns (see compare/snapshot.py)
    containers                   netsetter's records: pid, names, address, alive or stale
    leases                       the address leases on each bridge
    NAT                          what each owner asked of nat.py
    half-made links              links whose alias is netsetter's marker but that no record
                                 names (a run killed before its record, or pending)
"""

from __future__ import annotations

from typing import Any

from ..compare import snapshot
from . import nat, records
from .ipam import bridge_leases, pid_owner


def topology() -> dict[str, Any]:
    here = snapshot.take(snapshot.NetnsRef())
    addrs: dict[str, list[str]] = {}
    for line in here.addrs:  # "inet 10.10.10.100/24 scope global dev brg-demo"
        words = line.split()
        addrs.setdefault(words[-1], []).append(words[1])
    containers = {r.config["veth_host"]: r for r in records.all_here()}
    bridges = []
    for name, link in sorted(here.links.items()):
        if link["kind"] != "bridge":
            continue
        leases = {lease.owner: lease for lease in bridge_leases(name)}
        ports = []
        for port, attrs in sorted(here.links.items()):
            if attrs["master"] != name:
                continue
            entry: dict[str, Any] = {"name": port, "state": attrs["state"], "container": None}
            record = containers.pop(port, None)
            if record is not None:
                lease = leases.pop(pid_owner(record.pid, record.netns_inode), None)
                entry["container"] = {"pid": record.pid, "interface": record.config["veth_container"],
                                      "address": record.config["container_addr"],
                                      "lease": lease.address if lease else None,
                                      "alive": record.alive()}
            ports.append(entry)
        bridges.append({"name": name, "address": link["address"], "state": link["state"],
                        "addrs": addrs.get(name, []), "ports": ports,
                        "other_leases": [{"address": lease.address, "owner": lease.owner, "alive": lease.alive()}
                                         for lease in leases.values()]})
    gone = [{"pid": r.pid, "host_interface": r.config["veth_host"], "address": r.config["container_addr"],
             "alive": r.alive()} for r in containers.values()]
    named = {name for r in records.all_here() if not r.pending
             for name in (r.config["bridge"], r.config["veth_host"], r.config["veth_container"])}
    half = [{"name": name, "owner": owner} for name, owner in sorted(marked_links().items()) if name not in named]
    return {"bridges": bridges, "records_without_link": gone, "links_without_record": half, "nat": nat.summary()}


def marked_links() -> dict[str, str]:
    """The links of this netns whose alias is netsetter's marker, with the owner it names."""
    import json
    import subprocess

    from backends.base import MARKER

    out = subprocess.run(["ip", "-j", "link", "show"], capture_output=True, text=True).stdout
    return {link["ifname"]: link["ifalias"][len(MARKER):] for link in json.loads(out or "[]")
            if str(link.get("ifalias", "")).startswith(MARKER)}


def render(view: dict[str, Any]) -> "Any":
    """A rich Tree of :func:`topology`'s view."""
    from rich.markup import escape
    from rich.tree import Tree

    root = Tree("[bold]host[/]")
    for bridge in view["bridges"]:
        b = root.add(f"[bold cyan]{escape(bridge['name'])}[/] bridge {bridge['address']} "
                     f"{' '.join(bridge['addrs'])} [dim]{bridge['state']}[/]")
        for port in bridge["ports"]:
            c = port["container"]
            if c is None:
                b.add(f"{escape(port['name'])} [dim](not made by netsetter)[/]")
                continue
            health = "[green]alive[/]" if c["alive"] else "[red]stale: its process is gone[/]"
            lease = f"lease {c['lease']}" if c["lease"] else "[yellow]no lease[/]"
            b.add(f"{escape(port['name'])} ⇄ {escape(c['interface'])}  pid {c['pid']}  "
                  f"[bold]{c['address']}[/]  {lease}  {health}")
        for lease in bridge["other_leases"]:
            b.add(f"[dim]lease {lease['address']} held by {escape(lease['owner'])}"
                  f"{'' if lease['alive'] else ' (stale)'}[/]")
    for record in view["records_without_link"]:
        root.add(f"[red]record of pid {record['pid']} ({record['host_interface']}, {record['address']}): "
                 f"its link is gone[/] [dim]netsetter down {record['pid']} removes it[/]")
    for link in view["links_without_record"]:
        root.add(f"[yellow]{escape(link['name'])}: made by netsetter for {escape(link['owner'])}, no finished "
                 f"record (a run was killed, or is running)[/] [dim]a re-run recovers it, `netsetter down` "
                 f"removes it[/]")
    for owner in view["nat"]:
        n = root.add(f"NAT for {escape(owner['owner'])}")
        for m in owner["masquerade"]:
            n.add(f"masquerade {m['subnet']} leaving by any link but {escape(m['bridge'])}")
        for p in owner["publish"]:
            n.add(f"host port {p['host_port']}/{p['proto']} → {p['container']}:{p['container_port']}")
        for r in owner.get("route", []):
            n.add(f"routing between the containers on {escape(r['bridge'])} (a routed fleet)")
    return root
