"""Errors raised by the runner: the nskit family, with the runner's exit statuses.

runner's exit status is normally its command's. Its own failures use the
statuses docker and podman use, so that they differ from the common 1 a
command exits with (:class:`nskit.errors.ExitStatus`): 125 when runner could
not start the container, 126 when the command cannot be executed, 127 when it
does not exist; bad input is :class:`UsageError` (exit 2), which is both a
:class:`RunnerError` (what a Fleet's user catches) and nskit's usage error.
Domain code raises; only the CLI prints.
"""

from __future__ import annotations

from nskit.errors import ExitStatus, NsError, OpError
from nskit.errors import UsageError as NsUsageError

__all__ = ["RunnerError", "UsageError", "Failed", "NotFound", "Interrupted"]


class RunnerError(NsError):
    """Base of the errors the runner raises itself; the message is one line."""

    exit_status: int = ExitStatus.CANNOT_START


class UsageError(RunnerError, NsUsageError):
    """A value given by the user cannot work: ``invalid <what> '<value>': <reason>``. Raised
    before anything starts."""

    exit_status = ExitStatus.USAGE


class Failed(RunnerError, OpError):
    """One operation failed: ``failed to <verb> "<object>": <cause>``, with the errno of an OSError."""

    def __init__(self, verb: str, obj: object, cause: object) -> None:
        text = (cause.strerror or str(cause)) if isinstance(cause, OSError) else str(cause)
        OpError.__init__(self, verb, str(obj), text, cause.errno if isinstance(cause, OSError) else None)


class NotFound(RunnerError):
    """The command is not in the container's root filesystem: found before anything started."""

    exit_status = ExitStatus.NOT_FOUND

    def __init__(self, command: str, cause: str) -> None:
        super().__init__(f'failed to execute "{command}": {cause}')


class Interrupted(RunnerError):
    """A signal asked runner to stop before the command ran: 128 + its number."""

    def __init__(self, signum: int, name: str) -> None:
        self.exit_status = 128 + signum
        super().__init__(f"interrupted by {name} before the command started; the container was removed")
