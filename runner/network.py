"""The container's network, set up by the parent on the host side.

    root:      the netsetter library, in this process, through --backend
    otherwise: `sudo -n netsetter up PID ...`, as the article runs its script

Either way netsetter is given the child's pid: the child made the network
namespace, so /proc/PID/ns/net is the container's. The --timeout deadline is
checked between netsetter's steps (:class:`Watch`), and a failed or late
setup is rolled back by netsetter itself.

Undo, when the container has ended, is `netsetter down PID`: the host end
of the veth pair (deleting one end deletes both; the container's netns is
still held open by the parent then, see parent.py), the netns entry and
netsetter's record. Without root, the kernel deletes the pair when that
netns goes, a moment after the container ends.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .deadline import Deadline, NotReady, message
from .errors import Failed

if TYPE_CHECKING:
    from netsetter.engine import Reporter
    from netsetter.result import Result, StepResult

    from .spec import Spec
    from .trace import Trace

NO_NET_HINT = "start the container without a network with --no-net"


@dataclass
class Network:
    """A configured network. :meth:`remove` takes the host end of the veth pair away,
    or leaves it to the kernel when ``undo`` is None."""

    undo: Callable[[], None] | None = None
    summary: str = "configured by netsetter"

    def remove(self) -> None:
        if self.undo is not None:
            self.undo()


def set_up(pid: int, spec: "Spec", deadline: Deadline, trace: "Trace") -> Network:
    assert spec.net is not None
    if os.geteuid() == 0:
        return in_process(pid, spec, deadline, trace)
    return with_sudo(pid, spec, deadline, trace)


def in_process(pid: int, spec: "Spec", deadline: Deadline, trace: "Trace") -> Network:
    from backends import open_backend
    from netsetter.engine import setup
    from nskit.errors import NsError
    from netsetter.report import PlainReporter

    stack = ExitStack()
    try:
        config = spec.net
        assert config is not None  # set_up checked
        chosen = stack.enter_context(open_backend(spec.backend))
        watch = Watch(deadline, PlainReporter(sys.stderr) if trace.enabled else None)
        result = setup(pid, config, chosen, reporter=watch, masquerade=spec.masquerade, publish=spec.publish)
    except (NsError, OSError) as exc:
        stack.close()
        if deadline.expired():  # netsetter has rolled back what it did
            raise NotReady("the network", deadline.seconds) from None
        raise Failed("set up the network of container", pid, exc) from None
    except BaseException:
        stack.close()
        raise

    def undo() -> None:
        from netsetter.host.teardown import down

        try:
            down(str(pid), config, chosen)  # what netsetter recorded for this container, and nothing else
        except (NsError, OSError) as exc:
            raise Failed("tear down the network of container", pid, exc) from None
        finally:
            stack.close()

    used = result.config
    return Network(undo, f"{used['container_addr']} on {used['veth_container']} (host end {used['veth_host']})")


class Watch:
    """A netsetter reporter that keeps the deadline, at step boundaries only.

    Raised from the report of a step's start, TimeoutError (an OSError) fails
    that step before it changes anything, and the engine rolls back the steps
    before it. A step is never cut in half: a signal arriving while `ip` runs
    could not tell whether the link it adds exists yet, and so what to undo.
    """

    def __init__(self, deadline: Deadline, inner: "Reporter | None") -> None:
        self.deadline, self.inner = deadline, inner

    def start(self, result: "Result") -> None:
        if self.inner:
            self.inner.start(result)

    def __call__(self, record: "StepResult") -> None:
        if record.status == "running" and self.deadline.expired():
            raise TimeoutError(message("the network", self.deadline.seconds))
        if self.inner:
            self.inner(record)

    def finish(self, result: "Result") -> None:
        if self.inner:
            self.inner.finish(result)


def with_sudo(pid: int, spec: "Spec", deadline: Deadline, trace: "Trace") -> Network:
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
    beside = os.path.join(os.path.dirname(sys.executable), "netsetter")
    found = beside if os.access(beside, os.X_OK) else shutil.which("netsetter")
    if found is None:
        raise Failed("find", "netsetter", f"not next to {sys.executable} nor on PATH; {NO_NET_HINT}")
    return os.path.abspath(found)
