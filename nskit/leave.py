"""Leave the process at once: flush what was printed, then os._exit.

Interpreter finalization tears down every imported module, one by one, with no
system call that matters to anyone (measured: 137 ms after a `netsetter PID`
on the ip backend, 203 ms on netlink). Nothing of ours needs it: records are
written whole and renamed into place before a command returns, locks are
flocks and sockets are fds, all released by the kernel when the process ends.
Only the buffered output would be lost, so it is flushed first.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~5 ms a CNI call)
if TYPE_CHECKING:
    from typing import NoReturn


def leave(status: int) -> NoReturn:
    """Flush stdout and stderr, then end the process with ``status``."""
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):  # a closed pipe (`netsetter ls | head`): nothing more to say
            if status == 0 and stream is sys.stdout:
                status = 1
    os._exit(status)
