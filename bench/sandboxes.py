"""Where every benchmark runs: throwaway network namespaces, never the machine's own.

    with host("single") as box:     a new netns playing the host (netsetter's Sandbox),
        c = container(box)          ... a process in a netns of its own playing the container,
        ...                         ... and this thread inside the host netns meanwhile

Inside ``host()``, the bench's main thread has entered the sandbox with
setns(2). Everything it then starts inherits that netns at fork, and the
library called in-process works on it: netsetter's "host" is the sandbox. Only
the thread moves (setns with CLONE_NEWNET acts on the calling thread), and
it moves back before the sandbox is deleted, also on an error or Ctrl-C.
:func:`check_away_from_home` is asserted before anything configures a
network, so a mistake here fails instead of touching the machine.

Ctrl-C and SIGTERM (which the CLI turns into an exception) may arrive at any
bytecode. Where one would leave something untracked (a netns made but not
yet handed to its ``with``, a process started but not yet on a list, a
cleanup half done), the signals are held back with :func:`shielded` and
delivered right after.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from typing import TypeVar

from nskit import syscalls
from netsetter.compare.sandbox import Container, Sandbox

THREAD_NETNS = "/proc/thread-self/ns/net"
PREFIX = "bench-"  # sandbox names are nsp-bench-<case>-<random>: easy to spot on the machine
MADE: set[str] = set()  # the sandboxes this run made: the ones it must leave none of

# The netns the bench was started in, normally the machine's own. Taken at import,
# before anything can have moved this thread.
HOME_INODE = os.stat(THREAD_NETNS).st_ino


class SandboxError(RuntimeError):
    pass


def current_inode() -> int:
    return os.stat(THREAD_NETNS).st_ino


def check_away_from_home() -> None:
    """Refuse to go on unless this thread is in a sandbox, not in the bench's home netns."""
    if current_inode() == HOME_INODE:
        raise SandboxError("refusing to configure a network: this thread is in the bench's home netns, "
                           "not in a sandbox")


T = TypeVar("T")

STOPPING = {signal.SIGINT, signal.SIGTERM}


@contextmanager
def shielded() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM back for the block; a pending one acts right after it.

    Blocked, a signal stays pending in the kernel; Python's handler runs (and
    raises) at the first bytecode after the mask is restored. Processes
    started inside inherit the mask, which is harmless for the short `ip`
    commands run here, and containers are stopped with SIGKILL.
    """
    old = signal.pthread_sigmask(signal.SIG_BLOCK, STOPPING)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


@contextmanager
def sandbox(tag: str) -> Iterator[Sandbox]:
    box = None
    try:
        with shielded():
            box = Sandbox(tag=PREFIX + tag)
            MADE.add(box.name)
        yield box
    finally:
        if box is not None:
            with shielded():
                box.close()  # kills its containers, forgets netsetter's records, deletes the netns


def entered(stack: ExitStack, made: AbstractContextManager[T]) -> T:
    """``stack.enter_context(made)``, shielded: a signal cannot fall between a sandbox made
    and ``stack`` owning its removal."""
    with shielded():
        return stack.enter_context(made)


def container(box: Sandbox) -> Container:
    """A new container of ``box``, on its list (and so stopped with it) even if interrupted."""
    with shielded():
        return box.container()


@contextmanager
def inside(box: Sandbox) -> Iterator[Sandbox]:
    """This (main) thread in ``box``'s netns for the block; back home afterwards."""
    if threading.current_thread() is not threading.main_thread():
        raise SandboxError("enter sandboxes from the main thread only: children are forked from it")
    home = os.open(THREAD_NETNS, os.O_RDONLY | os.O_CLOEXEC)
    target = os.open(box.path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        syscalls.setns(target, syscalls.CLONE_NEWNET, box.path)
        if current_inode() != os.fstat(target).st_ino:
            raise SandboxError(f"setns into {box.path} did not take effect")
        check_away_from_home()
        yield box
    finally:
        try:
            syscalls.setns(home, syscalls.CLONE_NEWNET, "home")
        finally:
            os.close(home)
            os.close(target)


@contextmanager
def host(tag: str) -> Iterator[Sandbox]:
    """A fresh sandbox, with this thread inside it; removed afterwards."""
    with sandbox(tag) as box, inside(box):
        yield box


def leftovers() -> list[str]:
    """Sandboxes of this run still registered under /var/run/netns (there should be none).
    Another bench's, running beside this one, are not this run's to judge."""
    return sorted(f"/var/run/netns/{name}" for name in MADE if os.path.lexists(f"/var/run/netns/{name}"))
