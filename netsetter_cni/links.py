"""The MAC a bridge made by ADD gets (removing links: netsetter.host.links)."""

from __future__ import annotations

import os


def random_mac() -> str:
    """A random unicast, locally administered MAC (the second-lowest bit of the first byte set).

    A bridge made with an address of its own keeps it; one made without takes the
    lowest MAC of its ports and changes it as containers come and go.
    """
    raw = bytearray(os.urandom(6))
    raw[0] = (raw[0] & 0xFE) | 0x02
    return ":".join(f"{b:02x}" for b in raw)
