"""Errors raised by the netsetter core.

Domain code raises, the CLI renders: every error carries a one-line message
that names what failed, on which object, and why, and an exit status.
Backends translate their native errors (``sh.ErrorReturnCode``,
``NetlinkError``) into :class:`OpError` at their boundary, so nothing above
them needs to know which backend ran.
"""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    OK = 0
    FAILURE = 1  # something failed at run time
    USAGE = 2  # bad input: nothing was changed
    INTERRUPTED = 130  # 128 + SIGINT
    TERMINATED = 143  # 128 + SIGTERM


class NetsetterError(Exception):
    """Base of every error the core raises on purpose."""

    exit_status = ExitStatus.FAILURE


class UsageError(NetsetterError):
    """A value given by the user cannot work. Raised before any change."""

    exit_status = ExitStatus.USAGE

    def __init__(self, what: str, value: object, reason: str) -> None:
        self.what, self.value, self.reason = what, value, reason
        super().__init__(f"invalid {what} {str(value)!r}: {reason}")


class PreflightError(NetsetterError):
    """The host or the target process is not fit for a run. Nothing changed."""


class BackendUnavailable(NetsetterError):
    """A backend cannot run on this machine; the message says why."""


class OpError(NetsetterError):
    """One backend operation failed: ``failed to <verb> "<object>": <cause>``."""

    def __init__(self, verb: str, obj: str, cause: str, errno: int | None = None) -> None:
        self.verb, self.obj, self.cause, self.errno = verb, obj, cause, errno
        super().__init__(f'failed to {verb} "{obj}": {cause}')


class StepFailed(NetsetterError):
    """A step failed; the steps before it were undone (see ``undo_errors``)."""

    def __init__(self, step: str, cause: Exception, undo_errors: list[str] | None = None) -> None:
        self.step, self.cause = step, cause
        self.undo_errors = list(undo_errors or [])
        message = f"step {step!r} failed: {cause}"
        if self.undo_errors:
            message += "; undo also failed: " + "; ".join(self.undo_errors)
        super().__init__(message)


class Terminated(BaseException):
    """SIGTERM arrived. A BaseException, like KeyboardInterrupt, so that it
    unwinds through every ``finally`` (removing what was made) and is not
    mistaken for an ordinary error on the way."""

    exit_status = ExitStatus.TERMINATED
