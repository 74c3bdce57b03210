"""runner's own process: it starts the container and stays on the host side.

    choose the id mapping                  idmap.py: unprivileged range for root, else the caller
    prepare the root filesystem            (cache; before the fork, on the host)
    reclaim what killed runners left       their writable layers
    make the container's writable layer    layer.py: the directories; the child mounts them
    block signals, make the channel, fork the child
    while the child unshares (with a network): reclaim the network records and leases of
                                           killed runners, import the network code, open its backend
    wait for UNSHARED; open the child's netns; write its uid/gid maps -> MAPPED
    set up the network on the child's pid  (init mounts meanwhile)    -> NETWORK_READY
    wait for the child, passing signals on
    read EXITED; remove the host end of the veth pair; close the netns; remove the layer

If anything fails before NETWORK_READY, the child is killed (and with it,
through PR_SET_PDEATHSIG, init and the whole PID namespace), the network is
undone by netsetter's rollback, and the error says what failed, the
container's own error first.

The parent keeps the container's netns open from UNSHARED to the end. When
the container's last process exits, its netns would otherwise be destroyed
asynchronously, in a kernel workqueue, and the host end of the veth pair
would linger for a moment after runner exits; held open, the netns outlives
the container until the parent has deleted that end itself.
"""

from __future__ import annotations

import os
import signal

from nskit.errors import ExitStatus
from nskit.record import Record

from . import child, idmap, layer, network, rootfs, signals
from .channel import Channel, ChannelClosed, Message
from .deadline import Deadline, NotReady
from .errors import Failed, Interrupted, RunnerError
from .spec import Spec
from .trace import Trace

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from backends.base import Backend


class Outcome(Record):
    """How the command ended: runner's exit status, and the container's error lines."""

    __slots__ = ("status", "errors")

    def __init__(self, status: int, errors: list[str] | None = None) -> None:
        self.status = status
        self.errors = errors if errors is not None else []


def run(spec: Spec, trace: Trace | None = None) -> Outcome:
    """Start the container, wait for its command, clean up; raise :class:`RunnerError` if it cannot start."""
    trace = trace or Trace(spec.verbose, spec.started)
    mapping = idmap.for_caller(spec.map_root_to_caller)
    cache = rootfs.cache_dir(spec.cache_dir)
    layer.check_reachable(cache, mapping)
    image, in_place = rootfs.prepare(spec.rootfs, cache, mapping, spec.command, spec.env.get("PATH", ""))
    trace("parent", f"root filesystem {image}{' (in place)' if in_place else ''}")
    for stale in layer.collect(cache):
        trace("parent", f"removed the layer of a runner that is gone: {stale}")
    top = layer.Layer.create(cache, image, in_place, mapping, spec.keep_layer)
    try:
        signals.block()
        ours, theirs = Channel.pair()
    except BaseException:
        top.remove()
        raise
    me = os.getpid()
    deadline = Deadline(spec.timeout)
    pid = os.fork()
    if pid == 0:
        ours.close()
        child.run(spec, top, mapping, theirs, me, deadline.backstop())
    theirs.close()
    trace("parent", f"forked child {pid}")
    container = Container(pid, ours, trace, mapping, top)
    try:
        container.start(spec, deadline)
    except BaseException as exc:
        # What the container said before we gave up; read first, because once
        # it sees the channel close it says only that.
        said = container.chan.drain()
        container.abort()
        raise container.explain(exc, said) from None
    return container.wait()


class Container:
    """The parent's view of one container: the child's pid, the channel, what to undo.
    (A plain class, as every class on runner start's path: dataclasses imports inspect,
    ast and tokenize, ~8 ms of a start.)"""

    def __init__(self, pid: int, chan: Channel, trace: Trace, mapping: idmap.Mapping,
                 top: layer.Layer | None = None) -> None:
        self.pid, self.chan, self.trace, self.mapping = pid, chan, trace, mapping
        self.layer = top
        self.netns_fd: int | None = None
        self.network: network.Network | None = None
        self.status: int | None = None  # the child's wait status, once reaped
        self.prepared: Backend | None = None  # network.prepare's backend, until set_up takes it

    def start(self, spec: Spec, deadline: Deadline) -> None:
        if spec.net is not None:
            # While the child unshares (another core): what killed runners left, then the
            # network code's imports and its socket, ~15 ms that would otherwise follow MAPPED.
            for note in network.reclaim(spec):
                self.trace("parent", note)
            self.prepared = network.prepare(self.pid, spec)
            self.trace("parent", "network code loaded")
        self.chan.wait_for(Message.UNSHARED, deadline)
        self.netns_fd = os.open(f"/proc/{self.pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        idmap.write_maps(self.pid, self.mapping)
        self.chan.send(Message.MAPPED)
        self.trace("parent", f"mapped ids: {self.mapping.describe()}")
        if spec.net is not None:
            prepared, self.prepared = self.prepared, None  # set_up owns it now, closes it on failure
            self.network = network.set_up(self.pid, spec, deadline, self.trace, self.netns_fd, prepared)
            self.trace("parent", f"network ready: {self.network.summary}")
        stop = signals.take_stop_signal()  # Ctrl-C or kill while we were busy
        if stop is not None:
            raise Interrupted(stop, stop.name)
        self.chan.send(Message.NETWORK_READY)

    def wait(self) -> Outcome:
        self.status = signals.supervise(self.pid)
        messages = self.chan.drain()
        self.trace("parent", f"child {signals.describe(self.status)}")
        errors = [text for message, text in messages if message is Message.ERROR]
        exited = [text for message, text in messages if message is Message.EXITED]
        try:
            self.cleanup()
            self.trace("parent", "cleaned up: the host end of the veth pair, the netns, the layer")
        except RunnerError as exc:  # reported, but the command's status stays runner's
            errors.append(str(exc))
        finally:
            self.chan.close()
        if exited:
            return Outcome(signals.exit_code(int(exited[0])), errors)
        if not errors:
            errors = [f"the container ended before its command did: the child {signals.describe(self.status)}"]
        return Outcome(ExitStatus.CANNOT_START, errors)

    def abort(self) -> None:
        """Kill the container before its command ran, and undo what was done for it."""
        self.chan.close_write()
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if self.status is None:
            _, self.status = os.waitpid(self.pid, 0)
        self.cleanup()

    def cleanup(self) -> None:
        try:
            if self.prepared is not None:  # opened, but the start failed before set_up took it
                self.prepared.close()
                self.prepared = None
            if self.network is not None:
                self.network.remove()
                self.network = None
        finally:
            if self.netns_fd is not None:
                os.close(self.netns_fd)
                self.netns_fd = None
            if self.layer is not None:  # the container's processes are gone: nothing has it mounted
                self.layer.remove()
                self.layer = None

    def explain(self, exc: BaseException, said: list[tuple[Message, str]]) -> BaseException:
        """The error to report for a failed start.

        A timeout is runner's verdict. Otherwise the container's own error
        comes first: when a mount fails, init exits, and the network step
        fails next only because the child's pid is gone.
        """
        self.chan.close()
        reported = [text for message, text in said if message is Message.ERROR]
        if reported and not isinstance(exc, NotReady):
            return RunnerError(reported[0])
        if isinstance(exc, ChannelClosed) and self.status is not None:
            return RunnerError(f"{exc}: the child {signals.describe(self.status)}")
        if isinstance(exc, OSError):
            return Failed("start container", self.pid, exc)
        return exc
