"""Run the steps in order through a backend; on failure, undo what was done.

    setup(pid, config, backend)
      -> check privileges and the target pid (nothing changed if they fail)
      -> for each step: run it, time it, remember its undo
      -> on a failure: undo in reverse, keep going past undo errors,
         raise StepFailed with the original error and any undo failures
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Protocol

from .config import NetConfig
from .errors import NetsetterError, StepFailed
from .result import Result, StepResult
from .steps import STEPS, Context, Skip, Step
from .target import check_privileges, resolve_target

if TYPE_CHECKING:
    from backends.base import Backend



class Reporter(Protocol):
    """Told of the run as it goes: see :mod:`netsetter.report`."""

    def start(self, result: Result) -> None: ...
    def __call__(self, record: StepResult) -> None: ...
    def finish(self, result: Result) -> None: ...


class _Silent:
    def start(self, result: Result) -> None: ...
    def __call__(self, record: StepResult) -> None: ...
    def finish(self, result: Result) -> None: ...


def plan(pid: int | None, config: NetConfig, backend: str) -> tuple[Context, Result]:
    """The steps a run would take, rendered, all pending."""
    ctx = Context(pid=pid or 0, config=config)
    steps = [StepResult(index=i, name=s.name, summary=s.summary, script=s.script_lines(ctx),
                        difference=s.difference) for i, s in enumerate(STEPS, 1)]
    return ctx, Result(pid=pid, backend=backend, config=config.as_dict(), steps=steps)


def setup(pid: object, config: NetConfig, backend: "Backend", *,
          reporter: Reporter | None = None) -> Result:
    """Give the netns of ``pid`` the network ``config`` describes, as netsetter.sh does.

    Returns the :class:`Result`; raises :class:`NetsetterError` (a
    :class:`StepFailed` carrying ``.result`` once any step has run).
    """
    check_privileges()
    target = resolve_target(pid)
    ctx, result = plan(target.pid, config, backend.name)
    notify = reporter or _Silent()
    notify.start(result)
    done: list[tuple[Step, StepResult]] = []
    started = time.perf_counter()
    try:
        for step, record in zip(STEPS, result.steps):
            record.status = "running"
            notify(record)
            _run(step, record, backend, ctx)
            notify(record)
            if record.status == "ok":
                ctx.made.add(step.name)
                done.append((step, record))
    except (NetsetterError, OSError) as exc:
        record.status, record.detail = "failed", str(exc)
        notify(record)
        undo_errors = rollback(done, backend, ctx, notify)
        result.outcome, result.ms = "failed", _ms(started)
        failure = StepFailed(step.name, exc, undo_errors)
        result.error = str(failure)
        failure.result = result  # type: ignore[attr-defined]
        notify.finish(result)
        raise failure from exc
    result.outcome, result.ms = "ok", _ms(started)
    notify.finish(result)
    return result


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
        except (NetsetterError, OSError) as exc:
            record.undo = f"failed: {exc}"
            errors.append(f"{step.name}: {exc}")
        notify(record)
    return errors


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
