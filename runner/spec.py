"""What to start: the validated options of ``runner start``, as one value.

:func:`build` checks what the user gave and raises :class:`UsageError` naming
the value and the reason, before anything is started.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import UsageError

if TYPE_CHECKING:
    from netsetter.config import NetConfig
    from netsetter.host.nat import PortMap

DEFAULT_COMMAND = ("/bin/sh",)
DEFAULT_HOSTNAME = "ns-proc"
PROMPT = "-[namespace-process]-# "  # the article's
HOST_NAME_MAX = 64  # sethostname(2) refuses longer names with EINVAL


@dataclass(frozen=True)
class Spec:
    command: tuple[str, ...]
    env: dict[str, str]  # the command's whole environment
    hostname: str
    rootfs: str | None  # a directory, a tarball, or None for the built-in busybox root
    cache_dir: Path | None  # None: the default for the caller (see rootfs.cache_dir)
    net: "NetConfig | None"  # None with --no-net
    backend: str | None
    timeout: float
    verbose: bool = False
    masquerade: bool = False  # NAT beyond the bridge (see netsetter.host.nat)
    publish: tuple["PortMap", ...] = ()  # host ports forwarded to the container
    started: float = field(default_factory=time.monotonic)


def build(*, command: list[str] | None, env: list[str], hostname: str, rootfs: str | None,
          cache_dir: Path | None, net: bool, net_values: dict[str, str | None], backend: str | None,
          timeout: float, verbose: bool = False, masquerade: bool = False,
          publish: list[str] | None = None) -> Spec:
    if not timeout > 0:
        raise UsageError("timeout", timeout, "must be a positive number of seconds")
    check_hostname(hostname)
    config: NetConfig | None = None
    ports: tuple[PortMap, ...] = ()
    if (masquerade or publish) and not net:
        raise UsageError("--no-net", "", "cannot go with --masquerade or --publish, which need the network")
    if net:
        from backends import resolve
        from netsetter.config import NetConfig
        from nskit.errors import UsageError as NetUsageError

        from netsetter.config import AUTO, AUTO_KEYS

        # Unlike netsetter, runner chooses names and address itself unless told: many
        # containers can then share the bridge, and a lone one gets the script's values.
        values = {k: (AUTO if k in AUTO_KEYS and v is None else v) for k, v in net_values.items()}
        from netsetter.host.nat import PortMap

        try:
            config = NetConfig.build(**values)
            resolve(backend)
            ports = tuple(PortMap.parse(p) for p in publish or [])
        except NetUsageError as exc:
            raise UsageError(exc.what, exc.value, exc.reason) from None
    return Spec(command=tuple(command or DEFAULT_COMMAND), env=environment(env), hostname=hostname,
                rootfs=rootfs, cache_dir=cache_dir, net=config, backend=backend, timeout=timeout,
                verbose=verbose, masquerade=masquerade, publish=ports)


def check_hostname(name: str) -> str:
    if not name:
        raise UsageError("hostname", name, "is empty")
    if len(name.encode()) > HOST_NAME_MAX:
        raise UsageError("hostname", name, f"is longer than the kernel's {HOST_NAME_MAX} bytes")
    if not name.isprintable() or any(c.isspace() for c in name):
        raise UsageError("hostname", name, "contains white space or a control character")
    return name


def environment(pairs: list[str]) -> dict[str, str]:
    """The command's small, clean environment: nothing leaks in from the host but TERM."""
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root",
           "TERM": os.environ.get("TERM") or "xterm", "PS1": PROMPT}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError("--env", pair, "must have the form KEY=VALUE")
        if "\0" in pair:
            raise UsageError("--env", pair, "contains a NUL byte")
        env[key] = value
    return env
