"""The one error family: every error ns-proc raises on purpose is an :class:`NsError`.

Domain code raises, a command-line boundary renders: each error carries a
one-line message that names what failed, on which object and why, and the
exit status of the process that stops on it. Each package subclasses
:class:`NsError` with its own exit status (netsetter 1, runner 125, the CNI
plugin its spec's codes). Backends translate their native errors
(``sh.ErrorReturnCode``, ``NetlinkError``) into :class:`OpError` with the
errno, so that nothing above them needs to know which backend ran, and
:attr:`OpError.gone` is the one rule for "it is already gone".

The CNI plugin's VERSION command imports this module: it imports nothing
beyond what Python starts with (no enum: exit statuses are plain ints).
"""

from __future__ import annotations

import errno as errnos


class ExitStatus:
    """The exit statuses ns-proc's commands use, besides a command's own."""

    OK = 0
    FAILURE = 1  # something failed at run time
    USAGE = 2  # bad input: nothing was changed
    CANNOT_START = 125  # runner could not start the container, or lost it (as docker and podman)
    CANNOT_EXECUTE = 126  # the command exists but execve() refused it
    NOT_FOUND = 127  # no such command
    INTERRUPTED = 130  # 128 + SIGINT
    TERMINATED = 143  # 128 + SIGTERM


class NsError(Exception):
    """The root of every error raised on purpose; the message is one line."""

    exit_status: int = ExitStatus.FAILURE


class UsageError(NsError):
    """A value given by the user cannot work. Raised before any change."""

    exit_status = ExitStatus.USAGE

    def __init__(self, what: str, value: object, reason: str) -> None:
        self.what, self.value, self.reason = what, value, reason
        super().__init__(f"invalid {what} {str(value)!r}: {reason}")


# The errnos that mean "the object is not there": no such device, no such address, no such file.
GONE = frozenset((errnos.ENODEV, errnos.EADDRNOTAVAIL, errnos.ENOENT))


class OpError(NsError):
    """One operation on a kernel object failed: ``failed to <verb> "<object>": <cause>``."""

    def __init__(self, verb: str, obj: str, cause: str, errno: int | None = None) -> None:
        self.verb, self.obj, self.cause, self.errno = verb, obj, cause, errno
        super().__init__(f'failed to {verb} "{obj}": {cause}')

    @property
    def gone(self) -> bool:
        """The object is not there (any more): for a removal, that means done."""
        return self.errno in GONE


class Terminated(BaseException):
    """SIGTERM arrived. A BaseException, like KeyboardInterrupt, so that it
    unwinds through every ``finally`` (removing what was made) and is not
    mistaken for an ordinary error on the way."""

    exit_status = ExitStatus.TERMINATED


def raise_on_sigterm() -> None:
    """From now on SIGTERM raises :class:`Terminated` where the main thread is (and Ctrl-C
    KeyboardInterrupt), once: see :mod:`nskit.boundary`."""
    from .boundary import install

    install()
