"""The command-line boundary: how every command of ours starts, stops on a signal and ends.

    start("netsetter", load)   # console script / __main__: the first thing it does
      -> SIGINT/SIGTERM handlers, before any heavy import (Ctrl-C during start-up: one line, 130)
      -> load() imports the CLI and returns its main; main() runs
      -> NsError        : "<prog>: error: <message>" on stderr, its exit status
         Ctrl-C         : "<prog>: interrupted", 130 (what was made was undone on the way out)
         SIGTERM        : "<prog>: terminated", 143 (the same)
      -> flush stdout and stderr, os._exit (nskit.leave)

A signal becomes an exception (KeyboardInterrupt, Terminated) once, at most: while
that exception unwinds the run (the rollback), a second signal is only noted, so it
cannot cut the rollback short. :func:`deferred` holds both signals over a critical
section (a record written, a rollback) and lets one that arrived act at its end;
after :func:`finished` (the work is done and recorded) a signal changes nothing and
the command ends as it would have: 130/143 always means "undone".

Only this module's handlers defer and drop signals; a library caller that did not
call :func:`install` keeps Python's (``deferred`` still holds signals, by the mask).
Standard library only.
"""

from __future__ import annotations

import signal
import sys

from .errors import ExitStatus, NsError, Terminated
from .leave import leave

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~5 ms a CNI call)
if TYPE_CHECKING:
    from typing import Callable, NoReturn

STOPPING = (signal.SIGINT, signal.SIGTERM)


class _State:
    holding = 0  # depth of deferred() sections
    pending = False  # a signal arrived while held, and is still to act
    raised = False  # one signal has become an exception: the run is unwinding
    raised_by = 0  # the signal that did
    done = False  # finished(): the work is done, a signal no longer undoes it
    arrived: list[int] = []  # every stopping signal, in order


def _on_signal(signum: int, frame: object) -> None:
    _State.arrived.append(signum)
    if _State.raised or _State.done:
        return
    if _State.holding:
        _State.pending = True
        return
    _raise(signum)


def _raise(signum: int) -> None:
    _State.raised, _State.pending, _State.raised_by = True, False, signum
    raise KeyboardInterrupt if signum == signal.SIGINT else Terminated


def install() -> None:
    """SIGINT and SIGTERM raise KeyboardInterrupt and Terminated, once (see above); then
    unblocked, should the front (bin/netsetter) have blocked them over the interpreter's
    start-up: one that arrived meanwhile acts now."""
    for signum in STOPPING:
        signal.signal(signum, _on_signal)
    sys.unraisablehook = _unraisable
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOPPING)


def _unraisable(info: "sys.UnraisableHookArgs") -> None:
    # A signal raised where Python cannot let it through (a weakref callback of the import
    # system, a __del__) is printed and dropped: drop it silently, and let it act at the next
    # checkpoint or at the end of the next held section instead.
    if isinstance(info.exc_value, (KeyboardInterrupt, Terminated)):
        _State.raised, _State.pending = False, True
        return
    sys.__unraisablehook__(info)


def _in_main_thread() -> bool:
    # Without threading imported there is no other Python thread (and no import cost).
    threading = sys.modules.get("threading")
    return threading is None or threading.current_thread() is threading.main_thread()


class deferred:  # noqa: N801 - used as the function it was: `with deferred():`
    """Hold SIGINT and SIGTERM while the block runs; one that arrived acts when it ends
    (unless an exception, the first signal's included, is already on its way out).
    A class, not a contextlib.contextmanager: contextlib is ~1 ms of every command's imports."""

    # The flag holds what our handler sees (a signal may be taken by any thread, and
    # Python runs the handler in the main thread all the same); the mask holds the
    # signals for a caller with Python's own handlers.
    # Only the main thread's sections count: the handler runs there, and the depth is
    # not shared with worker threads (a Fleet's), whose own writes the mask covers.

    def __enter__(self) -> None:
        self._old = signal.pthread_sigmask(signal.SIG_BLOCK, STOPPING)
        self._main = _in_main_thread()
        if self._main:
            _State.holding += 1

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        main = self._main
        if main:
            _State.holding -= 1
        signal.pthread_sigmask(signal.SIG_SETMASK, self._old)
        if exc_type is None and main and _State.pending and not _State.holding and not _State.raised \
                and not _State.done:
            _raise(_State.arrived[-1])


def for_exec() -> None:
    """A child's preexec_fn: SIGINT and SIGTERM at their defaults and unblocked, as a freshly
    started program has them. A child forked inside :func:`deferred` (a step's `ip`, an
    `iptables`) would otherwise run with both blocked, since execve() keeps the mask: one
    that hangs could not be stopped by them. Defaults first, mask last: a signal that comes
    before the exec stops the child, as it would the program."""
    for signum in STOPPING:
        signal.signal(signum, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOPPING)


def finished() -> None:
    """The command's work is done and recorded: from now on a signal is noted, not raised."""
    _State.done = True


def checkpoint() -> None:
    """Raise a signal that arrived but did not stop the run (an exception raised inside a
    callback that swallows it, as asyncio's do): call it between steps."""
    if _State.arrived and not _State.done and not _State.holding:
        _raise(_State.arrived[0])


def guard(prog: str, debug: bool, body: Callable[[], int]) -> int:
    """Run one command's body: a domain error becomes :func:`fail`'s one line and its exit
    status, or, with ``--debug``, goes on to :func:`start`, which prints its traceback too."""
    try:
        return int(body())
    except NsError as exc:
        if debug:
            raise
        return fail(prog, exc)


def fail(prog: str, exc: NsError) -> int:
    """Say ``exc`` as the one line a command ends with; return its exit status."""
    print(f"{prog}: error: {exc}", file=sys.stderr)
    return exc.exit_status


def start(prog: str, load: Callable[[], Callable[[], int | None]]) -> NoReturn:
    """A console script's whole life: handlers first, then ``load()()``, rendered, then leave."""
    debug = "--debug" in sys.argv[1:]
    try:
        install()  # inside: a signal may act as soon as its handler is set
        status = load()()
    except NsError as exc:
        finished()
        if debug:
            import traceback

            traceback.print_exception(exc, file=sys.stderr)
        status = fail(prog, exc)
    except KeyboardInterrupt:
        finished()
        print(f"{prog}: interrupted", file=sys.stderr)
        status = ExitStatus.INTERRUPTED
    except Terminated:
        finished()
        print(f"{prog}: terminated", file=sys.stderr)
        status = ExitStatus.TERMINATED
    except Exception:
        if not _State.raised:
            raise
        # The signal's exception, changed on its way out by the interpreter: raised in a
        # class body's __set_name__ (platform's, while typer loads) it comes out as a
        # RuntimeError. The run was interrupted all the same.
        finished()
        if debug:
            import traceback

            traceback.print_exc(file=sys.stderr)
        interrupted = _State.raised_by == signal.SIGINT
        print(f"{prog}: {'interrupted' if interrupted else 'terminated'}", file=sys.stderr)
        status = ExitStatus.INTERRUPTED if interrupted else ExitStatus.TERMINATED
    except SystemExit as exc:
        finished()
        code = exc.code
        if code is None or isinstance(code, int):
            status = code
        else:
            print(code, file=sys.stderr)
            status = ExitStatus.FAILURE
    finished()  # what is left is output: a signal now would only cut it short
    leave(int(status or 0))
