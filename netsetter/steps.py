"""netsetter.sh, step by step, as data.

Read STEPS top to bottom and you read the script: each step names the
script line(s) it reproduces (rendered with the active configuration), what
it does through a backend, and how to undo it. Where the port deliberately
differs from the script, the step says so and why (see also the README).
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from nskit.errors import OpError
from nskit.netns import foreign_entry

from .config import NetConfig

from backends.base import marker

if TYPE_CHECKING:
    from backends.base import Backend, Link

    from .host.nat import PortMap


class Skip(str):
    """A step's result when there was nothing to do (and so nothing to undo)."""


@dataclass
class Context:
    """One run: its inputs, and what the steps learnt on the way."""

    pid: int
    config: NetConfig
    bridge_found: "Link | None" = None
    configured: bool = False  # a re-run: netsetter configured this container before, as asked now
    made: set[str] = field(default_factory=set)  # names of steps that changed something
    masquerade: bool = False  # beyond the script: NAT to the world past the bridge
    publish: tuple["PortMap", ...] = ()  # beyond the script: host ports forwarded to the container
    owner: str = ""  # who holds the lease and the NAT rules (see ipam.pid_owner)
    pending: bool = False  # a re-run after a run that was killed: its record was pending
    host_veth_index: int = 0  # the host veth this run made or recovered: rollback deletes that very link
    bridge_index: int = 0  # the bridge this run made

    @property
    def marker(self) -> str:
        """The interface alias of the links this run makes: who made them."""
        return marker(self.owner)

    @property
    def netns(self) -> str:
        """The name the script gives the container's netns under /var/run/netns."""
        return str(self.pid)

    def vars(self) -> dict[str, object]:
        c = self.config
        return {"bridge_nic": c.bridge, "bridge_mac": c.bridge_mac, "bridge_ip": c.bridge_addr,
                "veth_host": c.veth_host, "veth_container": c.veth_container,
                "veth_container_ip": c.container_addr, "veth_host_ip": c.gateway,
                "pid": self.pid, "NETNS": self.netns}


Action = Callable[["Backend", Context], str]


@dataclass(frozen=True)
class Step:
    name: str
    summary: str
    script: tuple[str, ...]  # templates over Context.vars(): the script's own variable names
    do: Action
    undo: Action | None = None
    difference: str | None = None  # a deliberate difference from the script, and why
    bash: tuple[str, ...] | None = None  # what the step does, in bash, where not the script lines

    def script_lines(self, ctx: Context) -> list[str]:
        values = ctx.vars()
        return [line.format(**values) for line in self.script]

    def bash_lines(self, ctx: Context) -> list[str]:
        """The step as bash would run it (for --dry-run); the script's lines unless it differs."""
        values = ctx.vars()
        return [line.format(**values) for line in (self.script if self.bash is None else self.bash)]


# --- helpers --------------------------------------------------------------------

def already(ctx: Context, done: Callable[[], bool]) -> bool:
    """On a re-run for a container we configured before, is this step's work still there?

    Only then are steps checked before they act: a first run pays no extra query.
    """
    return ctx.configured and done()


def gone_is_fine(undo: Callable[[], None], what: str) -> str:
    """Run an undo for which "no such device/address" means it is already undone
    (the container exited and took its end of the pair, say)."""
    try:
        undo()
    except OpError as exc:
        if exc.gone:
            return f"{what}: already gone"
        raise
    return what


# --- the bridge ----------------------------------------------------------------

def check_old_bridge(b: "Backend", ctx: Context) -> str:
    name = ctx.config.bridge
    link = b.link_get(name)
    if link is None:
        return f"no link named {name} yet"
    if link.kind != "bridge":
        raise OpError("reuse bridge", name, f"a link of that name exists and is a {link.kind or 'plain'} "
                      "device, not a bridge; remove it or choose another --bridge")
    ctx.bridge_found = link
    return f"{name} is already a bridge: reused, so the containers on it keep their network"


def add_bridge(b: "Backend", ctx: Context) -> str:
    if ctx.bridge_found:
        return Skip(f"reused existing bridge {ctx.config.bridge} (MAC {ctx.bridge_found.mac})")
    name = ctx.config.bridge
    b.bridge_add(name, ctx.config.bridge_mac)
    ctx.bridge_index = _index(b, name)
    b.link_set_alias(name, ctx.marker)
    return f"added bridge {name}"


def _index(b: "Backend", name: str) -> int:
    link = b.link_get(name)
    return link.index if link else 0


def _still_ours(b: "Backend", name: str, index: int) -> bool:
    """Is the link of that name the very one this run made (same ifindex)? A rename or a
    later link of the same name is never deleted by a rollback."""
    link = b.link_get(name)
    return link is not None and (index == 0 or link.index == index)


def del_bridge(b: "Backend", ctx: Context) -> str:
    name = ctx.config.bridge
    if not _still_ours(b, name, ctx.bridge_index):
        return f"{name}: already gone, or another link of that name now: left alone"
    return gone_is_fine(lambda: b.link_del(name), f"deleted bridge {name}")


def add_bridge_addr(b: "Backend", ctx: Context) -> str:
    c = ctx.config
    if ctx.bridge_found and c.bridge_addr in ctx.bridge_found.addrs:
        return Skip(f"{c.bridge} already has {c.bridge_addr}")
    b.addr_add(c.bridge, c.bridge_addr)
    return f"added {c.bridge_addr} to {c.bridge}"


def del_bridge_addr(b: "Backend", ctx: Context) -> str:
    if "bridge-add" in ctx.made:
        return Skip("the bridge goes, and its address with it")
    c = ctx.config
    return gone_is_fine(lambda: b.addr_del(c.bridge, c.bridge_addr), f"deleted {c.bridge_addr} from {c.bridge}")


def bridge_up(b: "Backend", ctx: Context) -> str:
    if ctx.bridge_found and ctx.bridge_found.up:
        return Skip(f"{ctx.config.bridge} is already up")
    b.link_set_up(ctx.config.bridge, dev=True)
    return f"{ctx.config.bridge} is up"


def bridge_down(b: "Backend", ctx: Context) -> str:
    if "bridge-add" in ctx.made:
        return Skip("the bridge goes")
    return gone_is_fine(lambda: b.link_set_down(ctx.config.bridge), f"{ctx.config.bridge} is down again")


# --- the veth pair -------------------------------------------------------------

def add_veth(b: "Backend", ctx: Context) -> str:
    c = ctx.config
    host = b.link_get(c.veth_host) if ctx.configured else None
    if host is not None and host.kind == "veth" and _made_by(ctx, host):
        ctx.host_veth_index = host.index
        if host.alias != ctx.marker:  # made by a run killed before it could say so
            b.link_set_alias(c.veth_host, ctx.marker)
        return Skip(f"{c.veth_host} is already there (made for pid {ctx.pid})")
    try:
        b.veth_add(c.veth_host, c.veth_container)
    except OpError as exc:
        if exc.errno != errno.EEXIST:
            raise
        taken = next((n for n in (c.veth_host, c.veth_container) if b.link_get(n)), exc.obj)
        raise OpError("add veth pair", taken, "a link of that name already exists on the host; give "
                      "this container other names with --veth-host/--veth-container") from None
    ctx.host_veth_index = _index(b, c.veth_host)
    b.link_set_alias(c.veth_host, ctx.marker)
    return f"added {c.veth_host} <-> {c.veth_container}"


def _made_by(ctx: Context, link: "Link") -> bool:
    """Is this host veth the one netsetter made for this container? Its ifindex is in the
    record, or its marker names the container; without a marker, only a killed run's
    pending record (it names the link it was making) vouches for it."""
    if ctx.host_veth_index and link.index == ctx.host_veth_index:
        return True
    return link.alias == ctx.marker or (ctx.pending and not link.alias)


def del_veth(b: "Backend", ctx: Context) -> str:
    # Deleting one end deletes its peer too, in whichever netns it is.
    c = ctx.config
    if not _still_ours(b, c.veth_host, ctx.host_veth_index):
        return f"{c.veth_host}: already gone, or another link of that name now: left alone"
    return gone_is_fine(lambda: b.link_del(c.veth_host),
                        f"deleted {c.veth_host} and its peer {c.veth_container}")


def veth_host_up(b: "Backend", ctx: Context) -> str:
    name = ctx.config.veth_host
    if already(ctx, lambda: getattr(b.link_get(name), "up", False)):
        return Skip(f"{name} is already up")
    b.link_set_up(name)
    return f"{name} is up"


def veth_host_master(b: "Backend", ctx: Context) -> str:
    c = ctx.config
    if already(ctx, lambda: getattr(b.link_get(c.veth_host), "master", None) == c.bridge):
        return Skip(f"{c.veth_host} is already a port of {c.bridge}")
    b.link_set_master(c.veth_host, c.bridge)
    return f"{c.veth_host} is a port of {c.bridge}"


def veth_into_netns(b: "Backend", ctx: Context) -> str:
    name = ctx.config.veth_container
    if already(ctx, lambda: b.link_get(name) is None):
        return Skip(f"{name} is already in the netns of pid {ctx.pid}")
    # `ip link set X netns PID` opens /var/run/netns/PID first, if there is one: checked
    # again here, just before, that no one else's entry would steer it (see nskit.netns).
    other = foreign_entry(ctx.pid)
    if other is not None:
        raise OpError(f"move link into the netns of pid {ctx.pid}", name, f"{other}; netsetter does not "
                      "follow or touch it: remove it if it is stale, or let its owner do so")
    b.link_set_netns(name, ctx.pid)
    return f"{name} is in the netns of pid {ctx.pid}"


# --- the container's netns, exposed under /var/run/netns while we work -----------

def expose(b: "Backend", ctx: Context) -> str:
    return b.netns_expose(ctx.pid)


def hide(b: "Backend", ctx: Context) -> str:
    return b.netns_hide(ctx.pid)


def container_addr(b: "Backend", ctx: Context) -> str:
    c = ctx.config
    if already(ctx, lambda: c.container_addr in getattr(b.link_get(c.veth_container, ctx.netns), "addrs", ())):
        return Skip(f"{c.veth_container} already has {c.container_addr}")
    b.addr_add(c.veth_container, c.container_addr, netns=ctx.netns)
    return f"added {c.container_addr} to {c.veth_container}"


def container_up(b: "Backend", ctx: Context) -> str:
    name = ctx.config.veth_container
    if already(ctx, lambda: getattr(b.link_get(name, ctx.netns), "up", False)):
        return Skip(f"{name} is already up")
    b.link_set_up(name, netns=ctx.netns)
    return f"{name} is up"


def container_lo_up(b: "Backend", ctx: Context) -> str:
    lo = b.link_get("lo", netns=ctx.netns)
    if lo is not None and lo.up:
        return Skip("lo is already up")
    b.link_set_up("lo", netns=ctx.netns)
    return "lo is up"


def container_lo_down(b: "Backend", ctx: Context) -> str:
    return gone_is_fine(lambda: b.link_set_down("lo", netns=ctx.netns), "lo is down again")


def container_route(b: "Backend", ctx: Context) -> str:
    c = ctx.config
    wanted = (str(c.gateway), c.veth_container)
    if already(ctx, lambda: b.default_route(ctx.netns) == wanted):
        return Skip(f"default via {c.gateway} dev {c.veth_container} is already there")
    b.route_add_default(c.gateway, c.veth_container, netns=ctx.netns)
    return f"default via {c.gateway} dev {c.veth_container}"


# --- beyond the script: the world past the bridge (only when asked) ------------------

def nat_masquerade(b: "Backend", ctx: Context) -> str:
    from .host import nat

    c = ctx.config
    return "; ".join(nat.masquerade(c.bridge, c.bridge_addr.network, ctx.owner)) or "already in place"


def nat_publish(b: "Backend", ctx: Context) -> str:
    from .host import nat

    done = []
    for port in ctx.publish:
        done += nat.publish(ctx.config.bridge, ctx.owner, port, ctx.config.container_addr.ip)
    return "; ".join(done) or "already in place"


def nat_release(b: "Backend", ctx: Context) -> str:
    from .host import nat

    return "; ".join(nat.release(ctx.owner)) or "nothing to release"


NAT_STEPS = (
    Step("nat-masquerade", "masquerade the bridge's subnet beyond the bridge", (), nat_masquerade, nat_release,
         difference="not in the script (the article leaves iptables for later): forwarding on and a "
                    "masquerade rule, with --masquerade"),
    Step("nat-publish", "publish host ports to the container", (), nat_publish, nat_release,
         difference="not in the script: DNAT from host ports to the container, with --publish"),
)


def steps_for(ctx: Context) -> tuple[Step, ...]:
    """The script's steps, and the NAT steps the run asks for."""
    extra = tuple(s for s in NAT_STEPS if (s.name == "nat-masquerade" and ctx.masquerade)
                  or (s.name == "nat-publish" and ctx.publish))
    return STEPS + extra


STEPS: tuple[Step, ...] = (
    Step("bridge-check", "remove an old bridge", ("ip link del {bridge_nic}",), check_old_bridge,
         difference="an existing bridge is reused, not deleted: deleting it would cut off every other "
                    "container on it; a link of that name that is not a bridge is refused",
         bash=("bridge_found=",
               "if ip -d -o link show dev {bridge_nic} 2>/dev/null | grep -q ' bridge '; then",
               "    bridge_found=1",
               "elif ip link show dev {bridge_nic} >/dev/null 2>&1; then",
               "    echo '{bridge_nic} exists and is not a bridge' >&2; exit 1",
               "fi")),
    Step("bridge-add", "add the bridge with its fixed MAC",
         ("ip link add name {bridge_nic} address {bridge_mac} type bridge",), add_bridge, del_bridge,
         bash=('[ -n "$bridge_found" ] || ip link add name {bridge_nic} address {bridge_mac} type bridge',)),
    Step("bridge-addr", "add the bridge's address", ("ip addr add {bridge_ip} dev {bridge_nic}",),
         add_bridge_addr, del_bridge_addr,
         bash=('[ -n "$bridge_found" ] && ip -o addr show dev {bridge_nic} | grep -q " {bridge_ip} " ||',
               "    ip addr add {bridge_ip} dev {bridge_nic}")),
    Step("bridge-up", "bring the bridge up", ("ip link set dev {bridge_nic} up",), bridge_up, bridge_down),
    Step("veth-add", "add the veth pair", ("ip link add {veth_host} type veth peer name {veth_container}",),
         add_veth, del_veth),
    Step("veth-host-up", "bring the host end up", ("ip link set {veth_host} up",), veth_host_up),
    Step("veth-host-master", "attach the host end to the bridge",
         ("ip link set {veth_host} master {bridge_nic}",), veth_host_master),
    Step("veth-container-netns", "move the container end into the pid's netns",
         ("ip link set {veth_container} netns {pid}",), veth_into_netns),
    Step("netns-expose", "expose the netns under /var/run/netns",
         ("if [ ! -d /var/run/netns ]; then mkdir /var/run/netns; fi",
          "if [ -f /var/run/netns/{NETNS} ]; then rm -rf /var/run/netns/{NETNS}; fi",
          "ln -s /proc/{NETNS}/ns/net /var/run/netns/{NETNS}",
          'echo "netns: {NETNS}"'), expose, hide,
         difference="a stale /var/run/netns entry (a symlink, which the script's [ -f ] misses) is "
                    "replaced; and the entry is removed even when a later step fails",
         bash=("mkdir -p /var/run/netns",
               "if [ -L /var/run/netns/{NETNS} ]; then rm -f /var/run/netns/{NETNS}; fi",
               "ln -s /proc/{NETNS}/ns/net /var/run/netns/{NETNS}",
               "trap 'rm -f /var/run/netns/{NETNS}' EXIT  # hidden again even if a step fails",
               'echo "netns: {NETNS}"')),
    Step("container-addr", "add the container's address",
         ("ip netns exec {NETNS} ip addr add {veth_container_ip} dev {veth_container}",), container_addr),
    Step("container-up", "bring the container end up",
         ("ip netns exec {NETNS} ip link set {veth_container} up",), container_up),
    Step("container-lo-up", "bring lo up in the container", (), container_lo_up, container_lo_down,
         difference="not in the script: without lo, 127.0.0.1 does not work inside the container",
         bash=("ip netns exec {NETNS} ip link set lo up",)),
    Step("container-route", "add the default route via the bridge",
         ("ip netns exec {NETNS} ip route add default via {veth_host_ip} dev {veth_container}",),
         container_route),
    Step("netns-hide", "hide the netns again", ("rm -rf /var/run/netns/{NETNS}",), hide),
)
