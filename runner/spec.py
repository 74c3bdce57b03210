"""What to start: the validated options of ``runner start``, as one value.

:func:`build` checks what the user gave and raises :class:`UsageError` naming
the value and the reason, before anything is started.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

from nskit.record import Record

from .errors import NotFound, UsageError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~3 ms a start)
if TYPE_CHECKING:
    from netsetter.config import NetConfig
    from netsetter.host.nat import PortMap

DEFAULT_COMMAND = ("/bin/sh",)
DEFAULT_HOSTNAME = "ns-proc"
PROMPT = "-[namespace-process]-# "  # the article's
HOST_NAME_MAX = 64  # sethostname(2) refuses longer names with EINVAL
MAX_TIMEOUT = 7 * 24 * 3600.0  # a week: beyond any start-up, and within what a socket timeout can hold
MAX_PRESERVED_FDS = 1024


class Spec(Record):
    """What to start. Read-only: a Record, not a frozen dataclass (dataclasses imports inspect,
    ast and tokenize, ~8 ms of a start; see nskit/record.py)."""

    __slots__ = ("command", "env", "hostname", "rootfs", "cache_dir", "net", "backend", "timeout", "verbose",
                 "masquerade", "publish", "preserve_fds", "map_root_to_caller", "keep_layer", "started")

    def __init__(self, *, command: tuple[str, ...], env: dict[str, str], hostname: str, rootfs: str | None,
                 cache_dir: Path | None, net: "NetConfig | None", backend: str | None, timeout: float,
                 verbose: bool = False, masquerade: bool = False, publish: tuple["PortMap", ...] = (),
                 preserve_fds: int = 0, map_root_to_caller: bool = False, keep_layer: Path | None = None,
                 started: float | None = None) -> None:
        self.command = command
        self.env = env  # the command's whole environment
        self.hostname = hostname
        self.rootfs = rootfs  # a directory, a tarball, or None for the built-in busybox root
        self.cache_dir = cache_dir  # None: the default for the caller (see rootfs.cache_dir)
        self.net = net  # None with --no-net
        self.backend = backend
        self.timeout = timeout
        self.verbose = verbose
        self.masquerade = masquerade  # NAT beyond the bridge (see netsetter.host.nat)
        self.publish = publish  # host ports forwarded to the container
        self.preserve_fds = preserve_fds  # descriptors 3..3+N-1 passed on to the command (runc's --preserve-fds)
        self.map_root_to_caller = map_root_to_caller  # the article's mapping even for root (see idmap.py)
        self.keep_layer = keep_layer  # where the writable layer stays (see layer.py)
        self.started = time.monotonic() if started is None else started


def build(*, command: list[str] | None, env: list[str], hostname: str, rootfs: str | None,
          cache_dir: Path | None, net: bool, net_values: dict[str, str | None], backend: str | None,
          timeout: float, verbose: bool = False, masquerade: bool = False,
          publish: list[str] | None = None, preserve_fds: int = 0, map_root_to_caller: bool = False,
          keep_layer: str | Path | None = None) -> Spec:
    check_timeout(timeout)
    check_preserved(preserve_fds)
    if keep_layer is not None and not str(keep_layer).strip():
        raise UsageError("--keep-layer", keep_layer, "is empty; give the directory to keep the layer in")
    check_hostname(hostname)
    if command is not None and command and not command[0]:
        raise NotFound("", "the command name is empty")
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
        try:
            config = NetConfig.build(**values)
            resolve(backend)
            if publish:  # only then: netsetter.host.nat and what it imports cost ~5 ms before the fork
                from netsetter.host.nat import PortMap

                ports = tuple(PortMap.parse(p) for p in publish)
        except NetUsageError as exc:
            raise UsageError(exc.what, exc.value, exc.reason) from None
    return Spec(command=tuple(command or DEFAULT_COMMAND), env=environment(env), hostname=hostname,
                rootfs=rootfs, cache_dir=cache_dir, net=config, backend=backend, timeout=timeout,
                verbose=verbose, masquerade=masquerade, publish=ports, preserve_fds=preserve_fds,
                map_root_to_caller=map_root_to_caller,
                keep_layer=Path(keep_layer).absolute() if keep_layer is not None else None)


def check_timeout(seconds: float) -> float:
    if not (math.isfinite(seconds) and 0 < seconds <= MAX_TIMEOUT):
        raise UsageError("--timeout", f"{seconds:g}", f"must be a finite number of seconds, more than 0 "
                                                       f"and at most {MAX_TIMEOUT:g} (a week)")
    return seconds


def check_preserved(count: int) -> int:
    """--preserve-fds N: each of 3..3+N-1 must be open in runner, or there is nothing to pass."""
    if not 0 <= count <= MAX_PRESERVED_FDS:
        raise UsageError("--preserve-fds", count, f"must be from 0 to {MAX_PRESERVED_FDS}")
    for fd in range(3, 3 + count):
        try:
            os.fstat(fd)
        except OSError:
            raise UsageError("--preserve-fds", count, f"descriptor {fd} is not open; open 3..{2 + count} "
                                                      "before runner starts, or pass fewer") from None
    return count


def check_hostname(name: str) -> str:
    if not name:
        raise UsageError("hostname", name, "is empty")
    try:
        size = len(name.encode())
    except UnicodeEncodeError:  # a byte of argv that is not UTF-8 (Python keeps it as a lone surrogate)
        raise UsageError("hostname", name, "is not UTF-8 text; give the name in UTF-8") from None
    if size > HOST_NAME_MAX:
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
