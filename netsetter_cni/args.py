"""The CNI_* environment variables: the parameters of one plugin call.

A runtime runs the plugin with the operation and the attachment in the
environment (SPEC.md, "Parameters") and the network configuration on stdin:

    CNI_COMMAND      ADD, DEL, CHECK, GC, STATUS or VERSION (GC and STATUS: CNI 1.1, CNI_PATH only)
    CNI_CONTAINERID  the container's id: an alphanumeric, then alphanumerics, '_', '.', '-'
    CNI_NETNS        the path of the container's network namespace (DEL: may be empty)
    CNI_IFNAME       the interface to make inside it, such as eth0
    CNI_ARGS         extra "K=V;K2=V2" pairs (podman sends IgnoreUnknown=1;K8S_POD_NAME=...)
    CNI_PATH         where to find other plugins (the IPAM plugin ipam.type names)

An attachment is identified by (CNI_CONTAINERID, CNI_IFNAME): the lease
owner, the host end's name and the links' marker all derive from it,
so that DEL finds what ADD made even when the netns is gone.

Parsing is string work only: no module beyond what Python starts with.
"""

from __future__ import annotations

from .errors import INVALID_ENVIRONMENT, CniError

COMMANDS = ("ADD", "DEL", "CHECK", "GC", "STATUS", "VERSION")
NETWORK_WIDE = ("GC", "STATUS")  # about the network, not one attachment: no container variables
# CNI_ARGS keys this plugin understands; any other fails unless IgnoreUnknown is true.
KNOWN_ARGS = ("IgnoreUnknown", "IP")


class Invocation:
    """One call's parameters. A plain class: this module is imported by every call,
    VERSION included, and importing dataclasses would cost each ~10 ms."""

    def __init__(self, command: str, container_id: str, netns: str, ifname: str,
                 args: dict[str, str] | None = None) -> None:
        self.command, self.container_id, self.ifname = command, container_id, ifname
        self.netns = netns  # "" when DEL is called without one
        self.args = args or {}

    def __repr__(self) -> str:
        return (f"Invocation({self.command}, container_id={self.container_id!r}, netns={self.netns!r}, "
                f"ifname={self.ifname!r}, args={self.args!r})")

    @property
    def owner(self) -> str:
        """Who holds the address lease: the attachment, not a pid (held until DEL)."""
        return f"cni:{self.container_id}:{self.ifname}"

    @property
    def digest(self) -> str:
        try:  # the built-in SHA-256: hashlib would load OpenSSL's libcrypto first (10-30 ms)
            from _sha256 import sha256  # type: ignore[import-not-found]  # CPython builtin, no stub
        except ImportError:
            from hashlib import sha256
        return sha256(f"{self.container_id}:{self.ifname}".encode()).hexdigest()

    @property
    def host_veth(self) -> str:
        """The host end's name: "veth" and 8 hex digits of the attachment (12 bytes < IFNAMSIZ).

        Derived, not random, so that DEL can find it without the container's netns.
        """
        return f"veth{self.digest[:8]}"


def read_command(env: dict[str, str]) -> str:
    command = env.get("CNI_COMMAND", "")
    if command not in COMMANDS:
        shown = repr(command) if command else "unset"
        raise CniError(INVALID_ENVIRONMENT, f"invalid CNI_COMMAND {shown}", f"expected one of {', '.join(COMMANDS)}")
    return command


def parse(env: dict[str, str], command: str) -> Invocation:
    """The parameters of ADD, DEL or CHECK; every missing or malformed one is named.
    GC and STATUS concern the whole network: no container parameters are read."""
    if command in NETWORK_WIDE:
        return Invocation(command, "", "", "", {})
    problems = []
    container_id = env.get("CNI_CONTAINERID", "")
    if not container_id:
        problems.append("CNI_CONTAINERID is unset or empty")
    elif not _valid_id(container_id):
        problems.append(f"CNI_CONTAINERID {container_id!r} must start with a letter or digit, "
                        "followed by letters, digits, '_', '.' or '-'")
    netns = env.get("CNI_NETNS", "")
    if not netns and command != "DEL":  # DEL may come after the netns is gone
        problems.append("CNI_NETNS is unset or empty")
    elif netns and not netns.startswith("/"):
        problems.append(f"CNI_NETNS {netns!r} is not an absolute path")
    ifname = env.get("CNI_IFNAME", "")
    if not ifname:
        problems.append("CNI_IFNAME is unset or empty")
    args, arg_problem = _parse_cni_args(env.get("CNI_ARGS", ""))
    if arg_problem:
        problems.append(arg_problem)
    if problems:
        raise CniError(INVALID_ENVIRONMENT, f"invalid {problems[0]}" if len(problems) == 1 else
                       f"invalid environment: {'; '.join(problems)}")
    return Invocation(command, container_id, netns, ifname, args)


def _valid_id(text: str) -> bool:
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
    return text[0].isascii() and text[0].isalnum() and set(text) <= allowed


def _parse_cni_args(text: str) -> tuple[dict[str, str], str]:
    """ "IgnoreUnknown=1;IP=10.88.0.7" -> {"IgnoreUnknown": "1", "IP": "10.88.0.7"}, or a problem."""
    pairs: dict[str, str] = {}
    for item in filter(None, text.split(";")):
        key, sep, value = item.partition("=")
        if not sep or not key:
            return {}, f"CNI_ARGS {text!r}: {item!r} is not KEY=VALUE"
        pairs[key] = value
    ignore = pairs.get("IgnoreUnknown", "").lower() in ("1", "true")
    unknown = [k for k in pairs if k not in KNOWN_ARGS]
    if unknown and not ignore:
        return {}, (f"CNI_ARGS {text!r}: unknown key {unknown[0]!r} "
                    f"(known: {', '.join(KNOWN_ARGS)}; add IgnoreUnknown=1 to ignore the others)")
    return {k: v for k, v in pairs.items() if k in KNOWN_ARGS}, ""
