"""netsetter: give a Linux process's network namespace a network, as netsetter.sh does.

    from backends import open_backend
    from netsetter.config import NetConfig
    from netsetter.engine import setup

    with open_backend("netlink") as backend:
        result = setup(pid, NetConfig.build(), backend)

The steps live in :mod:`netsetter.steps`, the run and its rollback in
:mod:`netsetter.engine`, the backends in the top-level ``backends`` package.
Nothing is imported here, so that ``netsetter --help`` does not pay for the engine.
"""
