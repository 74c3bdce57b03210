"""One run at a time per host namespace: an flock under /run/ns-proc.

Concurrent runs share the bridge (the first makes it, the others reuse it)
and check names and addresses before they use them; the lock makes each
check-then-act atomic. flock is released by the kernel when the holder
exits, however it exits, so a crashed run never leaves the lock taken.
"""

from __future__ import annotations

import fcntl
import os
import time

from . import state_dir


class host_lock:  # noqa: N801 - used as the function it was: `with host_lock() as taken:`
    """Hold the lock of the current host netns; ``with`` gives when it was taken (epoch seconds).
    A class, not a contextlib.contextmanager: contextlib is ~1 ms of runner start's imports."""

    def __init__(self) -> None:
        self._fd = -1

    def __enter__(self) -> float:
        lock_path = state_dir.path("lock")
        self._fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            self.__exit__()
            raise
        return time.time()

    def __exit__(self, *exc: object) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)  # closing the only descriptor releases the lock
