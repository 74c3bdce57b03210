"""Removing links the way every path does it: what is already gone counts as removed.

Shared by `netsetter down` (teardown.py) and the CNI plugin's ADD rollback, DEL and GC.
"""

from __future__ import annotations


from nskit.errors import OpError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~5 ms a CNI call)
if TYPE_CHECKING:
    from backends.base import Backend


def delete_link(backend: "Backend", name: str, netns: str | None = None) -> bool:
    """Delete a link; False when it was already gone (:attr:`OpError.gone`).

    Deleting either end of a veth pair deletes its peer too, in whichever netns it is.
    """
    try:
        backend.link_del(name, netns)
    except OpError as exc:
        if exc.gone:
            return False
        raise
    return True


def delete_bridge_if_unused(backend: "Backend", name: str) -> tuple[bool, list[str]]:
    """Delete bridge `name` unless ports remain on it (someone else's container, say).

    Returns (deleted, the ports that kept it): (False, []) when there is no bridge of that name.
    """
    link = backend.link_get(name)
    if link is None or link.kind != "bridge":
        return False, []
    ports = backend.bridge_ports(name)
    if ports:
        return False, ports
    return delete_link(backend, name), []
