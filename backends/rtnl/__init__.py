"""The rtnl backend: rtnetlink on a raw AF_NETLINK socket, standard library only.

    wire.py     the kernel's numbers and message layout (linux/rtnetlink.h, if_link.h, veth.h)
    channel.py  one socket: request, replies, ACK, matched by sequence number; a socket in another netns
    backend.py  the Backend primitives as requests
"""

from .backend import RtnlBackend

__all__ = ["RtnlBackend"]
