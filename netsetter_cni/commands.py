"""ADD, DEL, CHECK, GC and STATUS: parse the configuration, open a backend, run the command.

Imported by :mod:`netsetter_cni.main` only once VERSION is ruled out.

The backend is ``$NETSETTER_BACKEND`` (``ip``, ``netlink`` or ``rtnl``), by
default :data:`DEFAULT_BACKEND`: rtnl, the standard library's raw netlink
socket, costs no import beyond the standard library and no process per
request (importing ``sh`` costs about 100 ms and each `ip` process 5-20 ms;
importing ``pyroute2`` about 250 ms). STATUS opens no backend.
``NETSETTER_CNI_TRACE=1`` prints what the backend ran to stderr, which
runtimes keep in their logs.
"""

from __future__ import annotations

import os
import sys

from backends.base import marker

from . import config
from .args import Invocation
from .errors import BACKEND_UNAVAILABLE, INVALID_ENVIRONMENT, CniError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~5 ms a CNI call)
if TYPE_CHECKING:
    from typing import Any
    from backends.base import Backend

BACKEND_ENV = "NETSETTER_BACKEND"
DEFAULT_BACKEND = "rtnl"
TRACE_ENV = "NETSETTER_CNI_TRACE"


def run(inv: Invocation, raw: dict[str, Any]) -> dict[str, Any] | None:
    """Run ADD, DEL, CHECK, GC or STATUS; return the result to print (ADD's), or None."""
    conf = config.parse(raw)
    if inv.command == "STATUS":
        from .gc import status

        status(conf)
        return None
    if inv.command != "GC":
        _check_ifname(inv.ifname)
        if _too_long(inv):
            if inv.command == "DEL":
                return None  # ADD refuses such an attachment before any change: nothing of it exists
            raise CniError(INVALID_ENVIRONMENT, f"invalid CNI_CONTAINERID: {len(inv.container_id.encode())} bytes "
                           f"long; with CNI_IFNAME {inv.ifname!r} it may be at most "
                           f"{MAX_ALIAS - len(marker(inv.owner.replace(inv.container_id, '')).encode())}",
                           "the links' marker (IFLA_IFALIAS ns-proc:cni:<CNI_CONTAINERID>:<CNI_IFNAME>) "
                           "holds 254 bytes; runtimes' ids are 64")
    backend = _open_backend()
    try:
        if inv.command == "ADD":
            from .add import add

            return add(inv, conf, backend).render(conf.cni_version)
        if inv.command == "DEL":
            from .delete import delete

            delete(inv, conf, backend)
            return None
        if inv.command == "GC":
            from .gc import gc

            gc(conf, backend)
            return None
        from .check import check

        check(inv, conf, backend)
        return None
    finally:
        if os.environ.get(TRACE_ENV):
            for command in backend.trace:
                print(f"netsetter-cni {inv.command}: {command.text}", file=sys.stderr)
        backend.close()


MAX_ALIAS = 254  # IFALIASZ (256) less the NUL, which rtnl and pyroute2 send in the attribute: one more is ERANGE


def _too_long(inv: Invocation) -> bool:
    """Is the attachment's marker longer than a link's alias holds? (ADD failed at the mark, late.)"""
    return len(marker(inv.owner).encode()) > MAX_ALIAS


def _check_ifname(ifname: str) -> None:
    from nskit.errors import UsageError
    from nskit.names import check_ifname

    try:
        check_ifname("CNI_IFNAME", ifname)
    except UsageError as exc:
        raise CniError(INVALID_ENVIRONMENT, str(exc)) from None


def _open_backend() -> "Backend":
    from backends import BackendUnavailable, open_backend, resolve
    from nskit.errors import UsageError

    try:
        name = resolve(default=DEFAULT_BACKEND)  # NETSETTER_BACKEND, as for netsetter
    except UsageError as exc:
        raise CniError(INVALID_ENVIRONMENT, str(exc)) from None
    try:
        return open_backend(name)
    except BackendUnavailable as exc:
        raise CniError(BACKEND_UNAVAILABLE, str(exc), f"choose another with {BACKEND_ENV}") from None
