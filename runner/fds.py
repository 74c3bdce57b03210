"""No descriptor crosses into the container but stdin, stdout, stderr and those passed on purpose.

Whatever runner was started with is inherited by every fork: a directory a
shell opened with ``exec 7< /dir``, a test harness's log, a socket. Open in
the container, a directory descriptor is a way back to the host's tree
(``/proc/self/fd/7/..``), whatever the mounts say. So the child closes every
descriptor above 2 as soon as it is forked (init and the command inherit
only what is left), and the command's process does it once more before
execve(), keeping only:

    0, 1, 2                      the terminal or the pipes runner was given
    3 .. 3+N-1                   with --preserve-fds N, as runc's option and
                                 systemd's LISTEN_FDS: passed on purpose
    runner's channel             close-on-exec: gone at execve(), kept until
                                 then to report an execve() that fails

close_range(2) does it in one call; os.closerange() uses it.
"""

from __future__ import annotations

import os

FIRST = 3
MAX_FD = 2**31 - 1  # close_range()'s "to the end"


def preserved(count: int) -> set[int]:
    return set(range(FIRST, FIRST + count))


def close_all_but(keep: set[int]) -> None:
    """Close every descriptor from 3 on that is not in ``keep``."""
    start = FIRST
    for fd in sorted(k for k in keep if k >= FIRST):
        if fd > start:
            os.closerange(start, fd)
        start = fd + 1
    os.closerange(start, MAX_FD)
