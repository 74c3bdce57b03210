"""How each process waits for the next one, and passes signals down the line.

    runner (parent) -> child -> init (PID 1) -> command

Each of the first three waits for the next with :func:`supervise`: with the
signals below blocked, sigwaitinfo() hands them over one at a time, SIGCHLD
included, so waiting needs neither a handler nor a poll. A signal sent with
kill() (``kill -TERM <runner>``) is passed to the next process, so it reaches
the command. A signal the terminal sends (Ctrl-C, Ctrl-\\) goes to the whole
foreground process group at once, which the command is part of: passing it
on would deliver it twice, so it is dropped. The kernel tells the two apart
by si_code: SI_USER for kill(), SI_KERNEL for the terminal.

The mask is set once, before the first fork, and inherited by child and
init; the command gets a clean one back just before execve()
(:func:`reset_for_exec`), because a signal mask survives execve().
"""

from __future__ import annotations

import os
import signal

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)
STOPPING = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # abort a start that has not finished
WAITED = frozenset((*FORWARDED, signal.SIGCHLD))
SI_KERNEL = 0x80  # si_code of a signal the kernel sends itself, such as a terminal's (not in Python's signal module)


def block() -> None:
    """Hold the signals :func:`supervise` waits for, in this thread and every child forked from it.

    Blocked, SIGCHLD is kept pending although its default action is to be
    ignored, so sigwaitinfo() sees it.
    """
    signal.pthread_sigmask(signal.SIG_BLOCK, WAITED)


def reset_for_exec() -> None:
    """Give the command the signal state of a freshly started program.

    Handlers are reset by execve(), but an ignored signal stays ignored and
    the mask stays as it is; Python ignores SIGPIPE and SIGXFSZ for itself.
    Dispositions first, mask last: a signal already pending then acts at once,
    with its default action.
    """
    for signum in (*FORWARDED, signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(signum, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, ())


def take_stop_signal() -> signal.Signals | None:
    """A pending INT, TERM or HUP, consumed, or None; never blocks."""
    info = signal.sigtimedwait(STOPPING, 0)
    return signal.Signals(info.si_signo) if info else None


def supervise(pid: int) -> int:
    """Wait for child ``pid`` to end, passing signals on to it; return its wait status.

    Every other child that ends on the way is reaped too: that is PID 1's
    duty (orphans in a PID namespace are re-parented to it), and harmless
    elsewhere.
    """
    while True:
        status = reap(pid)
        if status is not None:
            return status
        info = signal.sigwaitinfo(WAITED)
        if info.si_signo == signal.SIGCHLD or info.si_code == SI_KERNEL:
            continue
        try:
            os.kill(pid, info.si_signo)
        except ProcessLookupError:
            pass  # it has just ended: the next reap() sees it


def reap(pid: int) -> int | None:
    """Reap every child that has ended; return ``pid``'s wait status if it is one of them."""
    found = None
    while True:
        try:
            ended, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return found
        if ended == 0:
            return found
        if ended == pid:
            found = status


def exit_code(status: int) -> int:
    """A wait status as a shell reports it: the exit code, or 128+N for signal N."""
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code


def describe(status: int) -> str:
    code = os.waitstatus_to_exitcode(status)
    if code >= 0:
        return f"exited with status {code}"
    return f"was killed by signal {-code} ({signal.Signals(-code).name})"
