"""Running the commands under test, and the library in-process, timing only the work."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..sandboxes import check_away_from_home, host, container as new_container
from ..timing import Measure, Stopwatch

if TYPE_CHECKING:
    from netsetter.config import NetConfig
    from netsetter.compare.sandbox import Container


class CommandFailed(RuntimeError):
    pass


def run(argv: list[str], *, timeout: float = 300, input: str | None = None,
        env: dict[str, str] | None = None, capture: bool = False) -> subprocess.CompletedProcess:
    """Run a command as a user would; fail with its last error line.

    stdout goes to /dev/null unless ``capture`` (a terminal would cost
    rendering time that is not the tool's); stderr is kept for the error message.
    """
    proc = subprocess.run(argv, stdin=subprocess.DEVNULL if input is None else None, input=input,
                          stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, timeout=timeout, env=env)
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout or "").strip().splitlines()
        raise CommandFailed(f"{' '.join(argv[:3])} ... exited {proc.returncode}: "
                            f"{lines[-1] if lines else 'no message'}")
    return proc


def timed(argv: list[str], **kwargs: object) -> float:
    with Stopwatch() as sw:
        run(argv, **kwargs)  # type: ignore[arg-type]
    return sw.seconds


def library(pid: int, config: "NetConfig", backend: str) -> float:
    """netsetter.engine.setup in this process, backend opened and closed around it.

    Opening is timed (the netlink backend opens its sockets then), importing
    is not: a long-running caller imports once.
    """
    from backends import open_backend
    from netsetter.engine import setup

    check_away_from_home()
    with Stopwatch() as sw:
        with open_backend(backend) as chosen:
            setup(pid, config, chosen)
    return sw.seconds


def library_fast(pid: int, config: "NetConfig", backend: str) -> float:
    """netsetter.fast.setup_fast in this process (the peer made in place), backend opened and closed."""
    from backends import open_backend
    from netsetter.fast import setup_fast

    check_away_from_home()
    with Stopwatch() as sw:
        with open_backend(backend) as chosen:
            setup_fast(pid, config, chosen)
    return sw.seconds


def warm_imports() -> None:
    """Import both backends and what they use, once, before anything is timed."""
    import backends.iproute  # noqa: F401
    import backends.netlink  # noqa: F401
    import backends.rtnl  # noqa: F401
    import netsetter.engine  # noqa: F401
    import netsetter.fast  # noqa: F401
    import netsetter.host.teardown  # noqa: F401
    import pyroute2  # noqa: F401
    import sh  # noqa: F401


def addresses(container: "Container") -> str:
    """The container's IPv4 addresses, as `ip -4 -o addr` prints them."""
    return container.run("ip", "-4", "-o", "addr").stdout


def in_fresh_host(tag: str, measure: Callable[[int], float], expect: str | None) -> Measure:
    """A measurement on a new sandbox and container: ``measure(pid)``, then a check
    that the container has the address ``expect`` (a run that did nothing must not count)."""

    def once() -> float:
        with host(tag) as box:
            container = new_container(box)
            seconds = measure(container.pid)
            if expect and expect not in addresses(container):
                raise CommandFailed(f"the container did not get {expect}")
            return seconds

    return once
