"""Which script lines may run in the jail, and why the others may not.

The jail (jail.py) is the wall: nothing that runs in it reaches the machine.
The guard says which line would have left the sandbox, and stops the script
there. It judges twice:

- before the script runs, its text (:func:`scan`): a script may neither
  define a shell function (a function can stand in for a builtin the hook
  relies on) nor name the hook's own functions and variables (``__nsp_*``,
  ``NSP_*``): that is how a script would switch the guard off;
- before each command, its expanded argv (:meth:`Guard.judge`): `ip` commands
  that act on the jail's own netns or the container's, assignments, `echo`,
  `[ ]` tests and a few builtins run; a netns other than the container's
  (`ip link set X netns 1`), named namespaces (`ip netns add`), files other
  than the entries the run itself makes under /var/run/netns, any other
  program, and the builtins that run code the hook cannot see first (`eval`,
  `trap`, `source`, `exec`, `enable`, ...) are refused, with the reason.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .jail import Jail

NETNS_DIR = "/var/run/netns"
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
SHELL_BUILTINS = {"echo", "printf", "true", "false", ":", "[", "test", "[[", "export", "local",
                  "readonly", "declare", "set", "shift", "exit", "return", "unset"}
WHY_NOT = {  # commands refused with a reason of their own
    "trap": "sets or removes a trap: the guard's DEBUG trap must stay",
    "eval": "runs a string as commands, which the guard cannot judge before they run",
    "source": "runs another file's commands, which the guard cannot judge before they run",
    ".": "runs another file's commands, which the guard cannot judge before they run",
    "exec": "replaces the shell, and the guard with it",
    "enable": "loads or switches off shell builtins",
    "builtin": "calls a builtin past the guard's judgement of it",
    "command": "calls a command past the guard's judgement of it",
    "shopt": "changes shell options the guard relies on",
    "bash": "starts another shell, which the guard does not follow",
    "sh": "starts another shell, which the guard does not follow",
    "nsenter": "enters other namespaces",
    "unshare": "makes namespaces of its own",
    "kill": "signals processes",
}
# ip global options that take a value; -n/-netns and -b/-batch are judged apart
_IP_OPTS_WITH_VALUE = {"-f", "-family", "-l", "-loops", "-rc", "-rcvbuf"}
GUARD_NAMES = re.compile(r"__nsp_\w*|\bNSP_\w*")
# `name ()` or `function name`: a word that is not quoted, expanded or an assignment
FUNCTION_DEF = re.compile(r"(?:^|[\s;&|(){}])(?:function\s+([^\s(){};&|<>]+)|([^\s(){};&|<>'\"$`=\\]+)\s*\(\s*\))")


@dataclass(frozen=True)
class Refusal:
    line: int
    text: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "text": self.text, "reason": self.reason}


def scan(text: str) -> Refusal | None:
    """The first line of the script that would switch the guard off, before anything runs.

    Lines joined by a backslash at the end are judged as one (bash joins them
    before it reads a name); whole-line comments are skipped.
    """
    lines = text.split("\n")
    number = 0
    while number < len(lines):
        start, logical = number, lines[number]
        while logical.endswith("\\") and number + 1 < len(lines):
            number += 1
            logical = logical[:-1] + lines[number]
        number += 1
        if logical.lstrip().startswith("#"):
            continue
        shown = lines[start].strip()
        definition = FUNCTION_DEF.search(logical)
        named = GUARD_NAMES.search(logical)
        if definition:
            name = definition.group(1) or definition.group(2)
            if GUARD_NAMES.fullmatch(name):
                return Refusal(start + 1, shown, f"redefines the guard's own function {name}")
            return Refusal(start + 1, shown, f"defines the shell function {name}: a function can stand in "
                                             "for a builtin the guard relies on, and no script line may call one")
        if named:
            return Refusal(start + 1, shown, f"names the guard's own {named.group(0)}: the script may not touch "
                                             "the guard")
    return None


# Variables a script may not set: what decides which program a name runs (PATH, bash's own), and
# what the dynamic loader and the C library read in every program the guard lets run (LD_PRELOAD
# runs any code inside `ip`). The original script's own variables are none of them.
_PROTECTED = {"PATH", "ENV", "IFS", "SHELLOPTS", "BASHOPTS", "PS4", "CDPATH", "GLOBIGNORE", "EXECIGNORE",
              "POSIXLY_CORRECT", "FUNCNEST", "GCONV_PATH", "GLIBC_TUNABLES", "LOCPATH", "NLSPATH",
              "HOSTALIASES", "RES_OPTIONS", "LOCALDOMAIN", "TZDIR"}
_PROTECTED_PREFIXES = ("BASH", "LD_", "MALLOC_")
_DECLARING = ("export", "declare", "local", "readonly", "typeset")


def _protected(name: str) -> str | None:
    if name in _PROTECTED or name.startswith(_PROTECTED_PREFIXES):
        return f"sets {name}, which decides what the commands the guard lets run really run"
    return None


def _declares(cmd: str, args: list[str]) -> str | None:
    """export/declare/local/readonly NAME[=VALUE]..., and printf -v NAME: the names they set."""
    names = []
    if cmd == "printf":
        for i, word in enumerate(args):
            if word == "--" or not word.startswith("-"):
                break
            if word.startswith("-v"):
                names.append(word[2:] or (args[i + 1] if i + 1 < len(args) else ""))
    else:
        for word in args:
            if word.startswith("-") and word != "--":
                if "n" in word[1:] and cmd != "export":  # a nameref: sets whatever it comes to name
                    return f"`{cmd} {word}` makes a name reference, which can set any variable past the guard"
                continue
            names.append(word.partition("=")[0])
    for name in names:
        if why := _protected(name.partition("[")[0]):
            return why
    return None


def entry_path(path: str) -> str:
    """/run/netns/X and /var/run/netns/X are one file (/var/run is a link to /run)."""
    path = os.path.normpath(path)
    return "/var" + path if path == "/run/netns" or path.startswith("/run/netns/") else path


@dataclass
class Guard:
    """Judges each command against the jail's state; remembers what the run made, so
    that it may remove only that. Unguarded, it lets everything run (to test the jail)."""

    jail: "Jail"
    guarded: bool = True
    made: set[str] = field(default_factory=set)  # /var/run/netns entries the script created

    def judge(self, argv: list[str] | None, text: str) -> str | None:
        """None when the command may run, else why it may not."""
        if not self.guarded:
            return None
        return self._judge(argv)

    @staticmethod
    def exits(command: Any) -> bool:
        """Is this the script's `exit` builtin?"""
        return bool(command.argv) and command.argv[0] == "exit"

    def _judge(self, argv: list[str] | None) -> str | None:
        if argv is None:
            return "its words cannot be expanded safely (a command substitution, a redirection, or an " \
                   "expansion that evaluates arithmetic)"
        while argv and _ASSIGNMENT.match(argv[0]):
            if why := _protected(argv[0].partition("=")[0]):
                return why
            argv = argv[1:]  # `a=b` alone, or `a=b cmd`: judge the command
        if not argv:
            return None
        if "/" in argv[0]:  # judged by its name alone, /tmp/x/ip or /tmp/x/echo would be any program
            return f"runs a program by its path ({argv[0]}): ip, mkdir, ln and rm run by name only"
        cmd = argv[0]
        if cmd in _DECLARING or cmd == "printf":
            if why := _declares(cmd, argv[1:]):
                return why
        if cmd == "set":
            return self._set(argv[1:])
        if cmd == "unset":
            bad = [a for a in argv[1:] if a.startswith("-") and a != "-v" or a.startswith("BASH")]
            return f"unset {' '.join(bad)}: only plain variables may be unset" if bad else None
        if cmd in SHELL_BUILTINS:
            return None
        if cmd in WHY_NOT:
            return f"`{cmd}` {WHY_NOT[cmd]}"
        if cmd == "ip":
            return self._ip(argv[1:])
        if cmd in ("mkdir", "rm", "ln"):
            return self._files(cmd, [a for a in argv[1:] if not a.startswith("-")])
        return f"`{cmd}` is not an ip, echo, mkdir, ln or rm command"

    @staticmethod
    def _set(args: list[str]) -> str | None:
        for i, word in enumerate(args):
            if word == "--" or not word.startswith(("-", "+")):
                return None
            name = args[i + 1] if word in ("-o", "+o") and i + 1 < len(args) else ""
            keyword = word.startswith("-") and not word.startswith("--") and "k" in word or name == "keyword"
            if (word.startswith("+") and "T" in word) or name in ("functrace", "posix") or keyword:
                return f"set {word}{' ' + name if name else ''}: the guard relies on that shell option"
        return None

    # --- files under /var/run/netns ------------------------------------------
    def _entry(self, path: str) -> str | None:
        return self.jail.netns_entry(os.path.basename(entry_path(path)))

    def _entry_ok(self, path: str) -> bool:
        path = entry_path(path)
        if os.path.dirname(path) != NETNS_DIR:
            return False
        return path in self.made or self._entry(path) is None

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
        if target == str(self.jail.container_pid):
            return True
        path = os.path.join(NETNS_DIR, target)
        return path in self.made and self._entry(path) == f"/proc/{self.jail.container_pid}/ns/net"

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
                return self._judge(rest[3:])
            return f"ip netns {verb} changes named namespaces outside the sandbox"
        for j, word in enumerate(rest):
            if word == "netns" and j + 1 < len(rest) and not self._target_ok(rest[j + 1]):
                return f"moves a link into netns {rest[j + 1]}, not the container's"
        return None
