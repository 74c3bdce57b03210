"""Bring ``lo`` up in the container's fresh network namespace (for --no-net).

A new network namespace has one link, lo, and it is down: 127.0.0.1 does not
answer until it is up. With a network, netsetter brings it up; without one,
the container does it itself, as root of the user namespace that owns the
netns (CAP_NET_ADMIN there). The ioctl is `ifconfig lo up`'s, no netlink needed.
"""

from __future__ import annotations

import _socket  # not socket.py: see channel.py
import fcntl
import struct

from .errors import Failed

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1
IFREQ = "16sH22x"  # struct ifreq: the name, then ifr_flags in a 24-byte union


def up(name: str = "lo") -> None:
    try:
        sock = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
        try:
            request = struct.pack(IFREQ, name.encode(), 0)
            _, flags = struct.unpack(IFREQ, fcntl.ioctl(sock, SIOCGIFFLAGS, request))
            fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack(IFREQ, name.encode(), flags | IFF_UP))
        finally:
            sock.close()
    except OSError as exc:
        raise Failed("bring up", name, exc) from None
