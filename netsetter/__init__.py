"""netsetter: give a Linux process's network namespace a network, as netsetter.sh does.

    from netsetter import NetConfig, setup
    from backends import open_backend

    with open_backend("netlink") as backend:
        result = setup(pid, NetConfig.build(), backend)

The steps live in :mod:`netsetter.steps`, the run and its rollback in
:mod:`netsetter.engine`, the backends in the top-level ``backends`` package.
"""

from .config import NetConfig
from .engine import setup

__all__ = ["NetConfig", "setup"]
