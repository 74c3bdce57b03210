"""Errors of the netsetter core: the nskit family, with netsetter's own kinds.

Domain code raises, the CLI renders (see :mod:`nskit.errors`): the usage
errors, the backends' :class:`~nskit.errors.OpError` and everything here are
:class:`~nskit.errors.NsError`, and stop ``netsetter`` with their exit status.
"""

from __future__ import annotations

from nskit.errors import ExitStatus, NsError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~3 ms a runner start)
if TYPE_CHECKING:
    from .result import Result


class NetsetterError(NsError):
    """Base of the errors the netsetter core raises itself."""

    exit_status = ExitStatus.FAILURE


class PreflightError(NetsetterError):
    """The host or the target process is not fit for a run. Nothing changed."""


class TargetRefused(NetsetterError):
    """The target must never be configured (the machine's own netns): a usage error. Nothing changed."""

    exit_status = ExitStatus.USAGE


class StepFailed(NetsetterError):
    """A step failed; the steps before it were undone (see ``undo_errors``).

    ``result`` is the run as far as it went, once any step has run.
    """

    def __init__(self, step: str, cause: Exception, undo_errors: list[str] | None = None,
                 result: Result | None = None) -> None:
        self.step, self.cause = step, cause
        self.undo_errors = list(undo_errors or [])
        self.result = result
        message = f"step {step!r} failed: {cause}"
        if self.undo_errors:
            message += "; undo also failed: " + "; ".join(self.undo_errors)
        super().__init__(message)
