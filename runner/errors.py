"""Errors raised by the runner, and the exit statuses runner itself uses.

runner's exit status is normally its command's. Its own failures use the
statuses docker and podman use, so that they differ from the common 1 a
command exits with: 125 when runner could not start the container, 126 when
the command cannot be executed, 127 when it does not exist. Domain code
raises; only the CLI prints.
"""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    OK = 0
    USAGE = 2  # bad input: nothing was started
    FAILED = 125  # runner could not start the container, or lost it
    CANNOT_EXECUTE = 126  # the command exists but execve() refused it
    NOT_FOUND = 127  # no such command in the container's root filesystem
    INTERRUPTED = 130  # 128 + SIGINT, before the command ran


class RunnerError(Exception):
    """Base of every error the runner raises on purpose; the message is one line."""

    exit_status: int = ExitStatus.FAILED


class UsageError(RunnerError):
    """A value given by the user cannot work. Raised before anything starts."""

    exit_status = ExitStatus.USAGE

    def __init__(self, what: str, value: object, reason: str) -> None:
        super().__init__(f"invalid {what} {str(value)!r}: {reason}")


class Failed(RunnerError):
    """One operation failed: ``failed to <verb> "<object>": <cause>``."""

    def __init__(self, verb: str, obj: object, cause: object) -> None:
        self.verb, self.obj = verb, str(obj)
        self.cause = (cause.strerror or str(cause)) if isinstance(cause, OSError) else str(cause)
        super().__init__(f'failed to {verb} "{obj}": {self.cause}')


class NotFound(RunnerError):
    """The command is not in the container's root filesystem: found before anything started."""

    exit_status = ExitStatus.NOT_FOUND

    def __init__(self, command: str, cause: str) -> None:
        super().__init__(f'failed to execute "{command}": {cause}')


class Interrupted(RunnerError):
    """A signal asked runner to stop before the command ran."""

    def __init__(self, signum: int, name: str) -> None:
        self.exit_status = 128 + signum
        super().__init__(f"interrupted by {name} before the command started; the container was removed")
