"""Network backends: a closed registry and the rule that picks one.

Precedence: the ``--backend`` flag, else ``NETSETTER_BACKEND``, else ``ip``.
Backend modules are imported only when chosen, so ``netsetter --help`` pays
for neither ``sh`` nor ``pyroute2``.
"""

from __future__ import annotations

import importlib
import os

from nskit.errors import NsError, UsageError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~5 ms a CNI call)
if TYPE_CHECKING:
    from .base import Backend


class BackendUnavailable(NsError):
    """A backend cannot run on this machine; the message says why."""


DEFAULT = "ip"
ENV_VAR = "NETSETTER_BACKEND"
REGISTRY: dict[str, tuple[str, str]] = {
    "ip": ("backends.iproute", "IpBackend"),
    "netlink": ("backends.netlink", "NetlinkBackend"),
    "rtnl": ("backends.rtnl", "RtnlBackend"),
}
NAMES = tuple(REGISTRY)


def resolve(flag: str | None = None, default: str = DEFAULT) -> str:
    """The backend's name by precedence (the CNI plugin has a default of its own);
    an unknown name is a usage error."""
    name, source = (flag, "--backend") if flag else (os.environ.get(ENV_VAR) or default, ENV_VAR)
    if name not in REGISTRY:
        raise UsageError(f"backend (from {source})", name, f"choose one of: {', '.join(NAMES)}")
    return name


def backend_class(name: str) -> type["Backend"]:
    module, attr = REGISTRY[resolve(name)]
    return getattr(importlib.import_module(module), attr)


def open_backend(name: str | None = None) -> "Backend":
    """A ready backend, or :class:`BackendUnavailable` saying why not."""
    cls = backend_class(resolve(name))
    reason = cls.unavailable()
    if reason:
        raise BackendUnavailable(f"the {cls.name} backend cannot run: {reason}")
    return cls()
