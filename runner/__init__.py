"""runner: the article's ns-proc container, in Python, and fleets of them.

    runner (parent.py)  on the host: forks, writes the id maps, sets up the network
      child (child.py)  unshares user, mount, uts, ipc, pid, net; forks init
        init (init.py)  PID 1: hostname, mounts.py, waits for the network, runs the command
          command       PID 2, in a clean environment

Parent, child and init talk over one socketpair (channel.py); every wait has
the --timeout deadline (deadline.py); signals are passed down the line
(signals.py). Root filesystems: rootfs.py, busybox.py, tarball.py.

Fleets (fleet.py, the public API): one Python process starts many containers,
each cloned straight into its namespaces (clone.py) and then only catatonit
and its command (container.py), on one bridge (fleetnet.py). `runner exec`
and Container.exec enter a running container (enter.py).
"""


def __getattr__(name: str) -> object:
    # `from runner import Fleet` without importing it for `runner start`.
    if name == "Fleet":
        from .fleet import Fleet

        return Fleet
    if name == "Container":
        from .container import Container

        return Container
    raise AttributeError(f"module 'runner' has no attribute {name!r}")


__all__ = ["Fleet", "Container"]
