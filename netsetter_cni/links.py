"""Small helpers over the backends' primitives, shared by ADD, DEL and CHECK."""

from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING

from nskit.errors import OpError

if TYPE_CHECKING:
    from backends.base import Backend


def delete_if_present(backend: "Backend", name: str, netns: str | None = None) -> bool:
    """Delete a link; one that is already gone counts as deleted (DEL is idempotent).

    Deleting either end of a veth pair deletes its peer too, in whichever netns it is.
    """
    try:
        backend.link_del(name, netns)
    except OpError as exc:
        if exc.errno in (errno.ENODEV, errno.ENOENT) or "Cannot find device" in exc.cause:
            return False
        raise
    return True


def random_mac() -> str:
    """A random unicast, locally administered MAC (the second-lowest bit of the first byte set).

    A bridge made with an address of its own keeps it; one made without takes the
    lowest MAC of its ports and changes it as containers come and go.
    """
    raw = bytearray(os.urandom(6))
    raw[0] = (raw[0] & 0xFE) | 0x02
    return ":".join(f"{b:02x}" for b in raw)
