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
      -> on success, record what was made, for `netsetter down`
"""

from __future__ import annotations

import os
import socket
import time
from typing import TYPE_CHECKING, Protocol, Sequence

from nskit.errors import NsError, OpError, Terminated

from .config import AUTO, NetConfig
from .errors import PreflightError, StepFailed
from .host import allocate, records
from .host.lock import host_lock
from .host.state_dir import host_netns_inode
from .result import Result, StepResult
from .steps import Context, Skip, Step, steps_for
from .target import Target, check_privileges, resolve_target

if TYPE_CHECKING:
    from backends.base import Backend

    from .host.nat import PortMap


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
        config, configured = _configured_before(target, config)
        if not configured:
            config = allocate.resolve(config, target, backend)
        ctx, result = plan(target.pid, config, backend.name, masquerade=masquerade, publish=publish)
        result.locked_at = locked_at
        ctx.configured = configured
        ctx.owner = allocate.owner_of(target)
        try:
            _run_steps(ctx, result, backend, target, reporter or _Silent())
        except BaseException:
            if not configured:
                allocate.release(config, target)
            raise
        records.save(records.Record(
            pid=target.pid, netns_inode=target.netns_inode, host_netns_inode=host_netns_inode(),
            config=config.as_dict(), host_veth_index=_index_of(backend, config.veth_host),
            bridge_created="bridge-add" in ctx.made))
        result.unlocked_at = time.time()
    return result


def _configured_before(target: Target, config: NetConfig) -> tuple[NetConfig, bool]:
    """The recorded configuration, when netsetter configured this container before as asked now."""
    record = records.find(pid=target.pid)
    if record is None:
        return config, False
    if not record.alive():  # the pid was reused: that record is of a container long gone
        records.remove(record)
        return config, False
    asked = config.as_dict()
    changed = ", ".join(f"{k} {record.config[k]} (asked {v})" for k, v in asked.items()
                        if v != AUTO and record.config.get(k) != v)
    if changed:
        raise PreflightError(f"pid {target.pid} is already configured with other values: {changed}; "
                             f"tear it down first with `netsetter down {target.pid}`")
    return NetConfig.build(**record.config), True


def _index_of(backend: "Backend", name: str) -> int:
    # SIOCGIFINDEX on a socket of this thread's netns: microseconds, where asking
    # the backend would start one more `ip` process.
    try:
        return socket.if_nametoindex(name)
    except OSError:
        link = backend.link_get(name)
        return link.index if link else 0


def _run_steps(ctx: Context, result: Result, backend: "Backend", target: Target, notify: Reporter) -> None:
    done: list[tuple[Step, StepResult]] = []
    started = time.perf_counter()
    notify.start(result)
    try:
        for step, record in zip(steps_for(ctx), result.steps, strict=True):
            record.status = "running"
            notify(record)
            _test_hook(step.name)
            _run(step, record, backend, ctx)
            notify(record)
            if record.status == "ok":
                ctx.made.add(step.name)
                done.append((step, record))
    except (NsError, OSError, KeyboardInterrupt, Terminated) as exc:
        record.status = "failed"
        record.detail = str(exc) or type(exc).__name__
        notify(record)
        undo_errors = rollback(done, backend, ctx, notify)
        result.outcome, result.ms = "failed", _ms(started)
        if not isinstance(exc, (NsError, OSError)):
            result.error = f"interrupted at step {step.name!r}; the steps before it were undone"
            notify.finish(result)
            raise
        cause: Exception = exc
        if not target.alive():
            cause = OpError(type(exc).__name__, str(target.pid), f"{exc} (pid {target.pid} exited during the run)")
        failure = StepFailed(step.name, cause, undo_errors, result)
        result.error = str(failure)
        notify.finish(result)
        raise failure from exc
    result.outcome, result.ms = "ok", _ms(started)
    notify.finish(result)


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


def rollback(done: list[tuple[Step, StepResult]], backend: "Backend", ctx: Context,
             notify: Reporter) -> list[str]:
    """Undo the steps that changed something, newest first; return undo failures."""
    errors: list[str] = []
    for step, record in reversed(done):
        if step.undo is None:
            continue
        try:
            record.undo = str(step.undo(backend, ctx))
        except (NsError, OSError) as exc:
            record.undo = f"failed: {exc}"
            errors.append(f"{step.name}: {exc}")
        notify(record)
    return errors


def _test_hook(step: str) -> None:
    """Fault injection for the test suite, driven by two environment variables.

    NETSETTER_TEST_FAIL_AT=STEP makes STEP fail before it acts;
    NETSETTER_TEST_PAUSE_AT=STEP:FIFO writes "paused STEP" to FIFO, then waits
    for a line from it, so a test can act (kill the target, send a signal) mid-run.
    """
    if os.environ.get("NETSETTER_TEST_FAIL_AT") == step:
        raise OpError("run step", step, "failure injected by NETSETTER_TEST_FAIL_AT")
    pause = os.environ.get("NETSETTER_TEST_PAUSE_AT", "")
    if pause.partition(":")[0] == step:
        fifo = pause.partition(":")[2]
        with open(fifo, "w") as out:
            out.write(f"paused {step}\n")
        with open(fifo) as back:
            back.readline()


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
