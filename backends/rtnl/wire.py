"""rtnetlink on the wire: the kernel's numbers and the byte layout of its messages.

Names are the kernel's (linux/netlink.h, linux/rtnetlink.h, linux/if_link.h,
linux/if_addr.h, linux/veth.h), so each line can be checked against the
headers. Every struct is in host byte order, as netlink is; attributes are
(length, type) headers followed by the payload, padded to 4 bytes.
"""

from __future__ import annotations

import struct

# --- linux/netlink.h -------------------------------------------------------------
NETLINK_ROUTE = 0
SOL_NETLINK = 270
NETLINK_CAP_ACK = 10  # an error or ACK does not echo the whole request back
NETLINK_EXT_ACK = 11  # errors say why in words (NLMSGERR_ATTR_MSG)
NETLINK_GET_STRICT_CHK = 12  # dumps honour the filters in their header (Linux 4.20)

NLMSG_NOOP, NLMSG_ERROR, NLMSG_DONE = 1, 2, 3

NLM_F_REQUEST = 0x01
NLM_F_MULTI = 0x02
NLM_F_ACK = 0x04
NLM_F_DUMP_INTR = 0x10  # the dump's objects changed while it ran: it may be inconsistent
NLM_F_DUMP = 0x300  # NLM_F_ROOT | NLM_F_MATCH, for GET
NLM_F_EXCL = 0x200  # for NEW
NLM_F_CREATE = 0x400
NLM_F_ACK_TLVS = 0x200  # in an ACK or error: extended-ACK attributes follow
NLM_F_CAPPED = 0x100  # in an ACK or error: the request's payload is left out

NLMSGERR_ATTR_MSG = 1

NLA_TYPE_MASK = 0x3FFF  # without NLA_F_NESTED and NLA_F_NET_BYTEORDER

# --- linux/rtnetlink.h -----------------------------------------------------------
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK, RTM_SETLINK = 16, 17, 18, 19
RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 20, 21, 22
RTM_NEWROUTE, RTM_DELROUTE, RTM_GETROUTE = 24, 25, 26
RTM_NEWNEIGH = 28
NDA_DST, NDA_LLADDR = 1, 2
NUD_PERMANENT = 0x80
NLM_F_REPLACE = 0x100  # for NEW

RT_TABLE_MAIN = 254
RTPROT_BOOT = 3  # what `ip route add` sets
RT_SCOPE_UNIVERSE, RT_SCOPE_LINK, RT_SCOPE_HOST = 0, 253, 254
RTN_UNICAST = 1
RTM_F_CLONED = 0x200

RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_TABLE = 1, 4, 5, 15

# --- linux/if_link.h, linux/if.h, linux/veth.h -------------------------------------
IFF_UP = 0x1
IFF_PROMISC = 0x100

IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_LINK = 1, 3, 4, 5
IFLA_MASTER = 10
IFLA_PROTINFO = 12  # AF_BRIDGE: the port's IFLA_BRPORT_* (linux/if_link.h)
IFLA_BRPORT_MODE = 4  # the hairpin flag, a u8
NLA_F_NESTED = 0x8000
IFLA_LINKINFO = 18
IFLA_IFALIAS = 20
IFLA_EXT_MASK = 29
IFLA_NET_NS_FD = 28
IFLA_AF_SPEC = 26  # per address family: for AF_INET6, IFLA_INET6_* (linux/if_link.h)
IFLA_INET6_ADDR_GEN_MODE = 8  # a u8
IN6_ADDR_GEN_MODE_NONE = 1  # no link-local address generated
IFLA_INFO_KIND, IFLA_INFO_DATA = 1, 2
VETH_INFO_PEER = 1
RTEXT_FILTER_SKIP_STATS = 1 << 3  # replies without the counters: a quarter of the size

# --- linux/if_addr.h ---------------------------------------------------------------
IFA_ADDRESS, IFA_LOCAL = 1, 2

AF_UNSPEC, AF_INET, AF_BRIDGE, AF_INET6 = 0, 2, 7, 10

# --- the structs -----------------------------------------------------------------------
NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
IFINFOMSG = struct.Struct("=BxHiII")  # family, (pad), type, index, flags, change
NDMSG = struct.Struct("=BxxxiHBB")  # family, (pad), ifindex, state, flags, type
IFADDRMSG = struct.Struct("=BBBBi")  # family, prefixlen, flags, scope, index
RTMSG = struct.Struct("=BBBBBBBBI")  # family, dst_len, src_len, tos, table, protocol, scope, type, flags
NLMSGERR = struct.Struct("=i")  # -errno, then the request's header (and payload unless capped)
_RTATTR = struct.Struct("=HH")  # len, type
_U32 = struct.Struct("=I")


def align(n: int) -> int:
    return (n + 3) & ~3


def attr(kind: int, data: bytes) -> bytes:
    size = _RTATTR.size + len(data)
    return _RTATTR.pack(size, kind) + data + b"\0" * (align(size) - size)


def attr_str(kind: int, text: str) -> bytes:
    return attr(kind, text.encode() + b"\0")


def attr_u32(kind: int, value: int) -> bytes:
    return attr(kind, _U32.pack(value))


def nest(kind: int, *parts: bytes) -> bytes:
    # Without NLA_F_NESTED, as iproute2 sends them: VETH_INFO_PEER is no pure nest
    # (an ifinfomsg comes first), and rtnetlink parses these attributes liberally.
    return attr(kind, b"".join(parts))


def ifinfomsg(index: int = 0, flags: int = 0, change: int = 0, family: int = AF_UNSPEC) -> bytes:
    return IFINFOMSG.pack(family, 0, index, flags, change)


def attrs(data: bytes, offset: int = 0) -> dict[int, bytes]:
    """The attributes in ``data`` from ``offset`` on, by type (flags masked off)."""
    found: dict[int, bytes] = {}
    end = len(data)
    while offset + _RTATTR.size <= end:
        size, kind = _RTATTR.unpack_from(data, offset)
        if size < _RTATTR.size or offset + size > end:
            break
        found[kind & NLA_TYPE_MASK] = data[offset + _RTATTR.size:offset + size]
        offset += align(size)
    return found


def as_str(data: bytes | None) -> str | None:
    return None if data is None else data.split(b"\0", 1)[0].decode(errors="replace")


def as_u32(data: bytes | None) -> int | None:
    return None if data is None or len(data) < 4 else int(_U32.unpack_from(data)[0])


def mac_bytes(mac: str) -> bytes:
    """``12:34:56:a1:b2:c3`` as its six bytes; ValueError if it is not a MAC."""
    raw = bytes.fromhex(mac.replace(":", ""))
    if len(raw) != 6 or mac.count(":") != 5:
        raise ValueError(f"{mac!r} is not a MAC address (six hex bytes separated by colons)")
    return raw


def mac_text(raw: bytes | None) -> str:
    return ":".join(f"{b:02x}" for b in raw) if raw else ""
