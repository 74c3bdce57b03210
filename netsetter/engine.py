"""Run the steps in order through a backend; on failure, undo what was done.

    setup(pid, config, backend)
      -> check privileges and the target pid (nothing changed if they fail)
      -> take the host's lock: one run at a time per host netns
      -> a container configured before: same values, re-run (steps find their
         work done and skip); other values, refused
      -> otherwise choose the "auto" values and lease the address (allocate)
      -> for each step: run it, time it, remember its undo
      -> on a failure, Ctrl-C or SIGTERM: undo in reverse, keep going past undo
         errors, raise StepFailed (or re-raise the interrupt) with the original
         error and any undo failures
      -> on success, record what was made, for `netsetter down`; from then on a
         signal changes nothing (nskit.boundary.finished): 130/143 means undone
    Record writes and the rollback run with SIGINT/SIGTERM held (boundary.deferred).
"""

from __future__ import annotations

import socket
import time
from typing import TYPE_CHECKING, Any, Callable, Protocol, Sequence

from nskit import boundary
from nskit.errors import NsError, OpError, Terminated
from nskit.undo import UndoStack

from . import faults
from .config import AUTO, NetConfig
from .errors import PreflightError, StepFailed
from .host import allocate, records
from .host.lock import host_lock
from .host.state_dir import host_cookie
from .result import Result, StepResult
from .steps import Context, Skip, Step, steps_for
from .target import Target, check_privileges, resolve_target

if TYPE_CHECKING:
    from backends.base import Backend

    from .host.nat import PortMap


# Steps after which the pending record is written again: what they made (the bridge, the
# host veth's ifindex) must be known to a re-run or a `down` should the run be killed next.
RECORDED = ("bridge-add", "veth-add")


class Reporter(Protocol):
    """Told of the run as it goes: see :mod:`netsetter.report`."""

    def start(self, result: Result) -> None: ...
    def __call__(self, record: StepResult) -> None: ...
    def finish(self, result: Result) -> None: ...


class _Silent:
    def start(self, result: Result) -> None: ...
    def __call__(self, record: StepResult) -> None: ...
    def finish(self, result: Result) -> None: ...


def plan(pid: int | None, config: NetConfig, backend: str, *, masquerade: bool = False,
         publish: Sequence["PortMap"] = ()) -> tuple[Context, Result]:
    """The steps a run would take, rendered, all pending."""
    ctx = Context(pid=pid or 0, config=config, masquerade=masquerade, publish=tuple(publish))
    steps = [StepResult(index=i, name=s.name, summary=s.summary, script=s.script_lines(ctx),
                        difference=s.difference) for i, s in enumerate(steps_for(ctx), 1)]
    return ctx, Result(pid=pid, backend=backend, config=config.as_dict(), steps=steps)


def setup(pid: object, config: NetConfig, backend: "Backend", *, reporter: Reporter | None = None,
          masquerade: bool = False, publish: Sequence["PortMap"] = ()) -> Result:
    """Give the netns of ``pid`` the network ``config`` describes, as netsetter.sh does;
    with ``masquerade`` and ``publish``, NAT beyond the bridge too.

    Returns the :class:`Result`; raises :class:`~nskit.errors.NsError` (a
    :class:`StepFailed` carrying ``.result`` once any step has run).
    """
    check_privileges()
    target = resolve_target(pid)
    with host_lock() as locked_at:
        config, before = _configured_before(target, config)
        configured = before is not None
        leased: records.Record | None = None  # the lease and pending record this run took
        try:
            # Leased and recorded as pending, or neither: a signal waits for the end of it.
            with boundary.deferred():
                if not configured:
                    config = allocate.resolve(config, target, backend)
                # Written before the first step: a run killed at any point leaves the names of what
                # it was making, so that the next run for this pid recovers them and `down` removes them.
                record = before or records.Record(
                    pid=target.pid, netns_inode=target.netns_inode, host_netns=host_cookie(),
                    config=config.as_dict(), host_veth_index=0, bridge_created=False, pending=True)
                if not configured:
                    leased = record
                    records.save(record)
            ctx, result = plan(target.pid, config, backend.name, masquerade=masquerade, publish=publish)
            result.locked_at = locked_at
            ctx.configured = configured
            ctx.owner = allocate.owner_of(target)
            ctx.pending = record.pending
            ctx.host_veth_index = record.host_veth_index
            _run_steps(ctx, result, backend, target, reporter or _Silent(),
                       progress=lambda: records.save(record.but(
                           host_veth_index=ctx.host_veth_index,
                           bridge_created=record.bridge_created or "bridge-add" in ctx.made)))
        except BaseException:
            with boundary.deferred():  # a second signal must not cut the clean-up short
                if leased is not None:
                    allocate.release(config, target)
                    records.remove(leased)
            raise
        with boundary.deferred():  # recorded and finished, or neither
            records.save(record.but(
                config=config.as_dict(), host_veth_index=ctx.host_veth_index or _index_of(backend, config.veth_host),
                bridge_created=record.bridge_created or "bridge-add" in ctx.made, pending=False))
            boundary.finished()  # a signal from now on leaves the network as made: exit 0
        result.unlocked_at = time.time()
    return result


def _configured_before(target: Target, config: NetConfig) -> tuple[NetConfig, "records.Record | None"]:
    """The recorded configuration, when netsetter configured this container before as asked now
    (or began to: a pending record, left by a run that was killed)."""
    record = records.find(pid=target.pid)
    if record is None:
        return config, None
    if not record.alive():  # the pid was reused: that record is of a container long gone
        records.remove(record)
        return config, None
    asked = config.as_dict()
    changed = ", ".join(f"{k} {record.config[k]} (asked {v})" for k, v in asked.items()
                        if v != AUTO and record.config.get(k) != v)
    if changed:
        raise PreflightError(f"pid {target.pid} is already configured with other values: {changed}; "
                             f"tear it down first with `netsetter down {target.pid}`")
    return NetConfig.build(**record.config), record


def _index_of(backend: "Backend", name: str) -> int:
    # SIOCGIFINDEX on a socket of this thread's netns: microseconds, where asking
    # the backend would start one more `ip` process.
    try:
        return socket.if_nametoindex(name)
    except OSError:
        link = backend.link_get(name)
        return link.index if link else 0


def _run_steps(ctx: Context, result: Result, backend: "Backend", target: Target, notify: Reporter,
               progress: "Callable[[], None]" = lambda: None) -> None:
    undo = UndoStack()
    started = time.perf_counter()
    notify.start(result)
    try:
        for step, record in zip(steps_for(ctx), result.steps, strict=True):
            record.status = "running"
            notify(record)
            boundary.checkpoint()
            faults.ENGINE(step.name)
            # A step and its undo's push are one: a signal acts after, never between them
            # (`ip link add` done, the run stopped before it knew: the pair was left).
            with boundary.deferred():
                _run(step, record, backend, ctx)
                notify(record)
                if record.status == "ok":
                    ctx.made.add(step.name)
                    if step.undo is not None:
                        undo.push(step.name, _undoer(step, record, backend, ctx, notify))
                    if step.name in RECORDED:
                        progress()
    except (NsError, OSError, KeyboardInterrupt, Terminated) as exc:
        with boundary.deferred():  # the rollback runs whole, whatever signal comes next
            record.status = "failed"
            record.detail = str(exc) or type(exc).__name__
            _tell(notify, record)  # the error may be a closed stdout: it must not cut the rollback short
            undo_errors = undo.unwind()
        result.outcome, result.ms = "failed", _ms(started)
        if not isinstance(exc, (NsError, OSError)):
            result.error = f"interrupted at step {step.name!r}; the steps before it were undone"
            _tell(notify.finish, result)
            raise
        cause: Exception = exc
        if not target.alive():
            cause = OpError(type(exc).__name__, str(target.pid), f"{exc} (pid {target.pid} exited during the run)")
        failure = StepFailed(step.name, cause, undo_errors, result)
        result.error = str(failure)
        _tell(notify.finish, result)
        raise failure from exc
    result.outcome, result.ms = "ok", _ms(started)
    _tell(notify.finish, result)  # every step is done: a summary that cannot be said changes nothing


def _tell(notify: "Callable[[Any], None]", what: object) -> None:
    """Report ``what``, unless stdout is gone (`netsetter PID | head -n 3`: EPIPE): a report
    must not stop a rollback, nor undo a finished run."""
    try:
        notify(what)
    except OSError:
        pass


def _run(step: Step, record: StepResult, backend: "Backend", ctx: Context) -> None:
    mark = len(backend.trace)
    started = time.perf_counter()
    try:
        detail = step.do(backend, ctx)
    finally:
        record.ms = _ms(started)
        record.commands = [c.as_dict() for c in backend.trace[mark:]]
    record.status = "skipped" if isinstance(detail, Skip) else "ok"
    record.detail = str(detail)


def _undoer(step: Step, record: StepResult, backend: "Backend", ctx: Context,
            notify: Reporter) -> Callable[[], None]:
    """The undo of a step that changed something, for the run's :class:`UndoStack`: what it
    did (or that it failed) goes in the step's record and to the reporter."""
    assert step.undo is not None
    action = step.undo

    def undo() -> None:
        try:
            record.undo = str(action(backend, ctx))
        except Exception as exc:
            record.undo = f"failed: {exc}"
            raise
        finally:
            _tell(notify, record)

    return undo


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
