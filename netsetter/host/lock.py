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
from contextlib import contextmanager

from . import state_dir

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~5 ms a CNI call)
if TYPE_CHECKING:
    from typing import Iterator


@contextmanager
def host_lock() -> Iterator[float]:
    """Hold the lock of the current host netns; yields when it was taken (epoch seconds)."""
    lock_path = state_dir.path("lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield time.time()
    finally:
        os.close(fd)  # closing the only descriptor releases the lock
