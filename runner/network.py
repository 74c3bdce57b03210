"""The container's network, set up by the parent on the host side.

    root:      netsetter's fast path (netsetter.fast), in this process: the veth peer
               made in place in the child's netns, rtnl unless --backend chooses
    otherwise: `sudo -n netsetter up PID ...`, as the article runs its script

Either way netsetter is given the child's pid: the child made the network
namespace, so /proc/PID/ns/net is the container's. The --timeout deadline is
checked before and after the fast setup (a few ms; a late one is undone), and
by the sudo path's own timeout; a failed setup is rolled back by netsetter itself.

Undo, when the container has ended, is :func:`netsetter.fast.teardown_fast`:
the host end of the veth pair (deleting one end deletes both; the container's
netns is still held open by the parent then, see parent.py), the lease and
netsetter's record. Without root, the kernel deletes the pair when that
netns goes, a moment after the container ends.

A runner killed with SIGKILL undoes nothing: its container dies with it (the
parent-death signal), the kernel deletes the veth pair with the netns, but
netsetter's record, its lease and its /var/run/netns entry stay. The next
runner started as root reclaims them (:func:`reclaim`): every record of this
host whose container process is gone is torn down as `netsetter down` would.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from .deadline import Deadline, NotReady
from .errors import Failed

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~3 ms a start)
if TYPE_CHECKING:
    from backends.base import Backend

    from .spec import Spec
    from .trace import Trace

NO_NET_HINT = "start the container without a network with --no-net"


class Network:
    """A configured network. :meth:`remove` takes the host end of the veth pair away,
    or leaves it to the kernel when ``undo`` is None."""

    def __init__(self, undo: Callable[[], None] | None = None, summary: str = "configured by netsetter") -> None:
        self.undo, self.summary = undo, summary

    def remove(self) -> None:
        if self.undo is not None:
            self.undo()


def set_up(pid: int, spec: "Spec", deadline: Deadline, trace: "Trace", netns_fd: int | None = None,
           prepared: "Backend | None" = None) -> Network:
    """The container's network; ``prepared``: what :func:`prepare` returned (as root)."""
    assert spec.net is not None
    if os.geteuid() == 0:
        return in_process(pid, spec, deadline, trace, netns_fd, prepared)
    return with_sudo(pid, spec, deadline, trace)


def reclaim(spec: "Spec") -> list[str]:
    """Tear down the records of containers that are gone; what was done, one line each."""
    if os.geteuid() != 0:
        return []  # the records are root's; `sudo netsetter down PID` reclaims them
    from netsetter.host import records

    try:
        dead = [record for record in records.all_here() if not record.alive()]
    except OSError:
        return []  # no state yet on this host
    if not dead:
        return []
    # Only now: teardown pulls in nat, ipam, links and the lock (about 10 ms of imports).
    from backends import open_backend
    from netsetter.host.teardown import down
    from nskit.errors import NsError

    done = []
    try:
        with open_backend(spec.backend) as backend:
            for record in dead:
                config = spec.net
                assert config is not None
                out = down(str(record.pid), config, backend)
                done += [f"reclaimed from pid {record.pid}, which is gone: {action}" for action in out.actions]
    except (NsError, OSError) as exc:
        raise Failed("reclaim the network of a container that is gone", "/run/ns-proc", exc) from None
    return done


def prepare(pid: int, spec: "Spec") -> "Backend | None":
    """As root, import the fast path and open its backend: the parent does it while the
    child unshares (on another core), not after (the imports alone are ~15 ms of it).
    None when the network is set up through sudo."""
    if os.geteuid() != 0:
        return None
    # ctypes is for setns(2) on the thread that opens a socket in the container's netns;
    # imported there, on first use, it would cost ~2 ms on the way to NETWORK_READY.
    import ctypes  # noqa: F401

    from netsetter.fast import DEFAULT_BACKEND, open_fast_backend
    from nskit.errors import NsError

    try:
        return open_fast_backend(spec.backend or DEFAULT_BACKEND)
    except (NsError, OSError) as exc:
        raise Failed("set up the network of container", pid, exc) from None


def in_process(pid: int, spec: "Spec", deadline: Deadline, trace: "Trace", netns_fd: int | None = None,
               chosen: "Backend | None" = None) -> Network:
    """netsetter's fast path (:mod:`netsetter.fast`): the peer made in place, rtnl unless
    --backend says otherwise, the host lock held only while names and the address are chosen.
    ``chosen``: the backend :func:`prepare` opened, closed here on failure and with the network."""
    from netsetter.fast import setup_fast, teardown_fast
    from nskit.errors import NsError

    if deadline.expired():
        if chosen is not None:
            chosen.close()
        raise NotReady("the network", deadline.seconds)
    if chosen is None:
        chosen = prepare(pid, spec)
        assert chosen is not None
    try:
        made = setup_fast(pid, spec.net, chosen, masquerade=spec.masquerade, publish=spec.publish,
                          netns_fd=netns_fd)
    except (NsError, OSError) as exc:
        chosen.close()
        raise Failed("set up the network of container", pid, exc) from None
    except BaseException:
        chosen.close()
        raise
    for request in made.requests:
        trace("parent", f"  {chosen.name}: {request}")

    def undo() -> None:
        # The host end is deleted here, while the parent still holds the container's netns:
        # left to the netns's death, it would outlive runner for a moment (see parent.py).
        try:
            teardown_fast(made, chosen)
        except (NsError, OSError) as exc:
            raise Failed("tear down the network of container", pid, exc) from None
        finally:
            chosen.close()

    network = Network(undo, made.summary)
    if deadline.expired():  # set up, but too late: undone, as a late setup always was
        network.remove()
        raise NotReady("the network", deadline.seconds)
    return network


def with_sudo(pid: int, spec: "Spec", deadline: Deadline, trace: "Trace") -> Network:
    import shutil
    import subprocess

    from backends import resolve

    config, backend = spec.net, spec.backend
    assert config is not None
    what = f"set up the network of pid {pid} with"
    if shutil.which("sudo") is None:
        raise Failed(what, "sudo -n netsetter", f"sudo is not installed; run runner as root, or {NO_NET_HINT}")
    # sudo resets the environment, so $NETSETTER_BACKEND is resolved here and passed on.
    argv = ["sudo", "-n", "--", netsetter_path(), "up", str(pid), "--backend", resolve(backend),
            *config.cli_options(), *(["--masquerade"] if spec.masquerade else []),
            *(a for port in spec.publish for a in ("--publish", f"{port.host_port}:{port.container_port}"))]
    trace("parent", "$ " + " ".join(argv))
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                              timeout=deadline.remaining("the network"))
    except subprocess.TimeoutExpired:
        raise NotReady("the network", deadline.seconds) from None
    if trace.enabled:
        sys.stderr.write(proc.stdout)
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines()
        cause = lines[-1] if lines else f"exit status {proc.returncode}"
        if cause.startswith("sudo:"):
            cause += f"; allow netsetter in sudoers for this user, run runner as root, or {NO_NET_HINT}"
        raise Failed(what, "sudo -n netsetter", cause)
    return Network()


def netsetter_path() -> str:
    """The netsetter installed with this runner: sudo's secure_path may not lead to it."""
    import shutil

    beside = os.path.join(os.path.dirname(sys.executable), "netsetter")
    found = beside if os.access(beside, os.X_OK) else shutil.which("netsetter")
    if found is None:
        raise Failed("find", "netsetter", f"not next to {sys.executable} nor on PATH; {NO_NET_HINT}")
    return os.path.abspath(found)
