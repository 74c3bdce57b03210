"""Which script commands may run in a sandbox, judged on their expanded argv.

The script runs with a sandbox netns as its host, so `ip` commands that act
on "the current netns" are harmless. What could reach beyond the sandbox is
refused, with the reason: a netns target other than the container (`ip link
set X netns 1` would move a link into the machine's own namespace), named
namespaces (`ip netns add`), files other than the entries the run itself
makes under /var/run/netns, and any other program.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

NETNS_DIR = "/var/run/netns"
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
SHELL_BUILTINS = {"echo", "printf", "true", "false", ":", "[", "test", "[[", "export", "local",
                  "readonly", "declare", "set", "shift", "exit", "return", "unset"}
# ip global options that take a value; -n/-netns and -b/-batch are judged apart
_IP_OPTS_WITH_VALUE = {"-f", "-family", "-l", "-loops", "-rc", "-rcvbuf"}


def entry_path(path: str) -> str:
    """/run/netns/X and /var/run/netns/X are one file (/var/run is a link to /run)."""
    path = os.path.normpath(path)
    return "/var" + path if path.startswith("/run/netns") else path


@dataclass
class Guard:
    """Remembers what the run made, so that it may remove only that."""

    container_pid: int
    made: set[str] = field(default_factory=set)  # /var/run/netns entries the script created

    def judge(self, argv: list[str] | None, text: str) -> str | None:
        """None when the command may run, else why it may not."""
        if argv is None:
            return "its words cannot be expanded safely (command substitution or a redirection)"
        while argv and _ASSIGNMENT.match(argv[0]):
            argv = argv[1:]  # `a=b` alone, or `a=b cmd`: judge the command
        if not argv:
            return None
        cmd = os.path.basename(argv[0])
        if cmd in SHELL_BUILTINS:
            return None
        if cmd == "ip":
            return self._ip(argv[1:])
        if cmd in ("mkdir", "rm", "ln"):
            return self._files(cmd, [a for a in argv[1:] if not a.startswith("-")])
        return f"`{cmd}` is not an ip, echo, mkdir, ln or rm command"

    # --- files under /var/run/netns ------------------------------------------
    def _entry_ok(self, path: str) -> bool:
        path = entry_path(path)
        if os.path.dirname(path) != NETNS_DIR:
            return False
        return path in self.made or not os.path.lexists(path)

    def _files(self, cmd: str, paths: list[str]) -> str | None:
        if cmd == "mkdir":
            if all(os.path.normpath(p) in (NETNS_DIR, "/run/netns") for p in paths):
                return None
            return f"mkdir outside {NETNS_DIR}: {' '.join(paths)}"
        if cmd == "ln":
            if len(paths) != 2 or not re.fullmatch(r"/proc/\d+/ns/net", paths[0]):
                return "ln other than `ln -s /proc/PID/ns/net /var/run/netns/NAME`"
            if not self._entry_ok(paths[1]):
                return f"{paths[1]} is not a new entry under {NETNS_DIR}"
            self.made.add(entry_path(paths[1]))
            return None
        bad = [p for p in paths if not self._entry_ok(p)]
        if bad:
            return f"rm of {' '.join(bad)}: only entries the script made under {NETNS_DIR} may be removed"
        return None

    # --- ip ---------------------------------------------------------------------
    def _target_ok(self, target: str) -> bool:
        if target == str(self.container_pid):
            return True
        path = os.path.join(NETNS_DIR, target)
        return path in self.made and os.readlink(path) == f"/proc/{self.container_pid}/ns/net"

    def _ip(self, args: list[str]) -> str | None:
        i = 0
        while i < len(args) and args[i].startswith("-"):
            opt = args[i]
            if opt in ("-n", "-netns"):
                if i + 1 >= len(args) or not self._target_ok(args[i + 1]):
                    return "ip -n with a netns other than the container's"
                i += 2
                continue
            if opt in ("-b", "-batch", "-force"):
                return "ip -batch reads commands this guard cannot see"
            i += 2 if opt in _IP_OPTS_WITH_VALUE else 1
        rest = args[i:]
        if rest[:1] == ["netns"]:
            verb = rest[1] if len(rest) > 1 else "list"
            if verb in ("list", "ls", "identify", "pids", "list-id"):
                return None
            if verb == "exec" and len(rest) > 3:
                if not self._target_ok(rest[2]):
                    return f"ip netns exec {rest[2]}: not the container's netns"
                return self.judge(rest[3:], " ".join(rest[3:]))
            return f"ip netns {verb} changes named namespaces outside the sandbox"
        for j, word in enumerate(rest):
            if word == "netns" and j + 1 < len(rest) and not self._target_ok(rest[j + 1]):
                return f"moves a link into netns {rest[j + 1]}, not the container's"
        return None
