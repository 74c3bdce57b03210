"""Link names and MAC addresses: what the kernel accepts, checked before anything changes.

The checks raise :class:`~nskit.errors.UsageError` naming the value and the reason.
"""

from __future__ import annotations

import os
import re

from .errors import UsageError

# The kernel's IFNAMSIZ is 16 bytes including the terminating NUL.
IFNAMSIZ = 16
# Names the kernel or `ip` give a meaning of their own: the kernel cannot register a
# link whose name clashes with /proc/sys/net/ipv4/conf/{all,default}, and `ip` reads
# `dev all` as every link.
RESERVED = {
    "all": "is reserved: /proc/sys/net/*/conf/all configures every link, so the kernel refuses "
           "a link of that name, and `ip` reads it as every link",
    "default": "is reserved: /proc/sys/net/*/conf/default holds the settings new links start with, "
               "so the kernel refuses a link of that name",
}
_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


def check_ifname(what: str, name: object) -> str:
    """A link name the kernel accepts (dev_valid_name in net/core/dev.c)."""
    name = str(name)
    if not name:
        raise UsageError(what, name, "is empty")
    try:
        size = len(name.encode())
    except UnicodeEncodeError:  # a byte of argv that is not UTF-8 (Python keeps it as a lone surrogate)
        raise UsageError(what, name, "is not UTF-8 text; give the name in UTF-8") from None
    if size >= IFNAMSIZ:
        raise UsageError(what, name, f"is {size} bytes long; the kernel allows at most {IFNAMSIZ - 1}")
    if name in (".", ".."):
        raise UsageError(what, name, "is a directory name under /sys/class/net; the kernel refuses it "
                                     "as a link name")
    if name in RESERVED:
        raise UsageError(what, name, RESERVED[name])
    if "%" in name:
        raise UsageError(what, name, "contains a '%', which the kernel expands into a number "
                                     "(vh%d becomes vh0); give the exact name")
    for char, label in (("/", "a '/'"), (":", "a ':'")):
        if char in name:
            raise UsageError(what, name, f"contains {label}, which link names cannot have")
    if any(c.isspace() for c in name):
        raise UsageError(what, name, "contains white space, which link names cannot have")
    if not name.isprintable():
        raise UsageError(what, name, "contains a control character")
    return name


def check_mac(what: str, mac: object) -> str:
    """A unicast MAC address, lower case."""
    text = str(mac).strip().lower()
    if not _MAC.match(text):
        raise UsageError(what, mac, "is not a MAC address of the form 12:34:56:a1:b2:c3")
    first = int(text[:2], 16)
    if first & 1:
        raise UsageError(what, mac, "is a multicast address; a link needs a unicast MAC "
                                    "(the lowest bit of the first byte must be 0)")
    if text == "00:00:00:00:00:00":
        raise UsageError(what, mac, "is the all-zero address")
    return text


def random_mac() -> str:
    """A random unicast, locally administered MAC (the second-lowest bit of the first byte set).

    A bridge made with an address of its own keeps it; one made without takes the
    lowest MAC of its ports and changes it as containers come and go.
    """
    raw = bytearray(os.urandom(6))
    raw[0] = (raw[0] & 0xFE) | 0x02
    return ":".join(f"{b:02x}" for b in raw)
