"""netsetter: give a Linux process's network namespace a network, as netsetter.sh does.

    from netsetter import NetConfig, setup
    from backends import open_backend

    with open_backend("netlink") as backend:
        result = setup(pid, NetConfig.build(), backend)

The steps live in :mod:`netsetter.steps`, the run and its rollback in
:mod:`netsetter.engine`, the backends in the top-level ``backends`` package.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import NetConfig
    from .engine import setup

__all__ = ["NetConfig", "setup"]


def __getattr__(name: str) -> Any:
    # Loaded on first use (PEP 562): `netsetter-cni VERSION` and `netsetter --help`
    # import this package, and should not pay for the engine.
    if name == "NetConfig":
        from .config import NetConfig

        return NetConfig
    if name == "setup":
        from .engine import setup

        return setup
    raise AttributeError(f"module 'netsetter' has no attribute {name!r}")
