"""Run a netsetter-style bash script one command at a time, with a snapshot after each.

bash itself runs the script (so its variables, `echo`s, `[ ]` tests and
failing commands behave exactly as they do for a user), in a :class:`Jail`
whose network namespace plays the host, with the jail's container's pid as
``$1``. The jail is the wall: whatever the script does, it reaches nothing
of the machine. The guard is the reporter: a DEBUG trap, set through
BASH_ENV before the script's first line, stops before every simple command
and reports over fd 3: the previous command's exit status, the command's
text and line, and its words once expanded. We take a snapshot (the state
after the previous command), judge the command with a :class:`Guard`, and
answer "run" (with ``extdebug`` on, a DEBUG trap that returns 1 skips the
command); a command the guard refuses is not answered: the jail is killed,
and the trace ends with the refusal.

The hook cannot be switched off from the script: its functions and variables
are read-only (a redefinition fails), `trap` and every command that could run
code unseen are refused before they run, the script may not name the hook at
all (:func:`guard.scan`), and a hook in a subshell never waits for an answer,
so only the script's own shell reads them. A line appended to the jail's copy
of the script reports its end: a script that stops reporting without reaching
it, an `exit` or an error is refused too.
"""

from __future__ import annotations

import os
import shlex
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .snapshot import State
from .guard import Guard, Refusal
from .jail import FILES_DIR, Jail

HOOK_PATH = f"{FILES_DIR}/hook.sh"
END = "__nsp_end"
MAX_FIELD = 1 << 20

# Expanding a command's words with `eval "set -- ..."` is safe only without
# command substitution, redirections, and expansions that evaluate arithmetic
# (`${v:x}`, `${!x}`, `$[x]`, where x may hold `a[$(cmd)]`): only $name, ${name}
# and the special parameters are let through. Redirections to /dev/null and
# between fds are dropped first: they are common (`ip link del x 2>/dev/null`)
# and change nothing. In a subshell (`( )`, `$( )`, a pipeline's or `&`'s
# child, which extdebug traces too) the hook reports and skips, never reads.
HOOK = r"""
readonly NSP_SCRIPT NSP_GUARD
__nsp_send() { printf '%s\0' "$@" >&3; }
__nsp_hook() {
    local status=$? line=${BASH_LINENO[0]} cmd=$BASH_COMMAND safe rest __nsp_reply
    shopt -s extdebug
    set -T
    if [[ $BASHPID != "$$" ]]; then
        __nsp_send SUB "$line" "$cmd"
        [[ $NSP_GUARD == off ]]
        return
    fi
    if [[ $cmd == __nsp_end && ${#FUNCNAME[@]} == 2 ]]; then
        __nsp_send END "$status"
        exit "$status"
    fi
    safe=$cmd
    while [[ $safe =~ (^|[[:space:]])([0-9]*|&)\>\>?[[:space:]]*(/dev/null|\&[0-9])([[:space:]]|$) ]]; do
        safe=${safe/"${BASH_REMATCH[0]}"/ }
    done
    rest=$safe
    while [[ $rest =~ \$([A-Za-z_][A-Za-z0-9_]*|\{[A-Za-z_][A-Za-z0-9_]*\}|[0-9@*#?$!-]|\{[0-9@*#?$!-]\}) ]]; do
        rest=${rest/"${BASH_REMATCH[0]}"/}
    done
    if [[ $rest == *[\$\`\<\>\|\;\&]* ]] || ! eval "set -- $safe" 2>/dev/null; then
        __nsp_send CMD "$status" "$line" "$cmd" -1
    else
        __nsp_send CMD "$status" "$line" "$cmd" "$#" "$@"
    fi
    read -r -n1 -u 3 __nsp_reply
    [[ $__nsp_reply == r ]]
}
readonly -f __nsp_send __nsp_hook
trap '__nsp_hook' DEBUG
"""


@dataclass
class ScriptCommand:
    index: int
    line: int
    text: str  # as bash shows it, before expansion
    argv: list[str] | None  # after expansion; None when it could not be expanded safely
    refused: str | None = None  # why the guard stopped the script here
    status: int | None = None  # its exit status
    output: str = ""
    after: State | None = None

    @property
    def expanded(self) -> str:
        return shlex.join(self.argv) if self.argv is not None else self.text

    def as_dict(self) -> dict[str, object]:
        return {"index": self.index, "line": self.line, "text": self.text, "expanded": self.expanded,
                "refused": self.refused, "status": self.status, "output": self.output,
                "after": self.after.as_dict() if self.after else None}


@dataclass
class ScriptTrace:
    path: str
    initial: State | None
    commands: list[ScriptCommand] = field(default_factory=list)
    status: int | None = None
    refusal: Refusal | None = None  # set when the guard stopped the script
    subshells: list[tuple[int, str]] = field(default_factory=list)  # what ran in subshells, unguarded


class Garbled(Exception):
    """The trace broke the hook's protocol."""


class _Trace:
    """The hook's NUL-terminated fields, read as they come, and the jail's word that bash ended."""

    def __init__(self, sock: socket.socket, jail: Jail) -> None:
        self.sock, self.jail, self.buf = sock, jail, b""
        self.status: int | None = None  # bash's exit status, once the jail has said it

    def field(self) -> str:
        while b"\0" not in self.buf:
            if len(self.buf) > MAX_FIELD:
                raise Garbled(f"a field of more than {MAX_FIELD} bytes")
            chunk = self._read()
            if chunk is None:
                raise EOFError
            self.buf += chunk
        head, _, self.buf = self.buf.partition(b"\0")
        return head.decode(errors="replace")

    def _read(self) -> bytes | None:
        """More of the trace; None when bash has ended and nothing is left."""
        assert self.jail.ctl is not None
        while True:
            if self.status is not None:  # bash is gone: what it wrote is all there is
                self.sock.setblocking(False)
                try:
                    return self.sock.recv(65536) or None
                except (BlockingIOError, ConnectionResetError):
                    return None
            ready = self.jail.wait_readable(self.sock.fileno(), self.jail.ctl.fileno())
            if self.sock.fileno() in ready:
                try:
                    chunk = self.sock.recv(65536)
                except ConnectionResetError:  # bash ended with an answer of ours unread
                    chunk = b""
                if chunk:
                    return chunk
            # the trace closed (every process holding fd 3 ended), or the jail spoke
            self.status = self.jail.exit_status()

    def number(self) -> int:
        text = self.field()
        try:
            return int(text)
        except ValueError:
            raise Garbled(f"{text[:40]!r} where a number belongs") from None


class _Output:
    """What the script wrote to stdout and stderr, read piece by piece from a memfd."""

    def __init__(self) -> None:
        self.fd = os.memfd_create("nsp-script-output")
        self.offset = 0

    def take(self) -> str:
        data = b""
        while chunk := os.pread(self.fd, 65536, self.offset):
            data += chunk
            self.offset += len(chunk)
        return data.decode(errors="replace").rstrip("\n")

    def close(self) -> None:
        os.close(self.fd)


def trace_script(script: Path, text: bytes, *, time_limit: float, guarded: bool = True,
                 on_command: Callable[[ScriptCommand], None] | None = None) -> ScriptTrace:
    """Run ``script`` (whose content is ``text``) in a jail and record every command."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    output = _Output()
    env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "BASH_ENV": HOOK_PATH,
           "NSP_SCRIPT": str(script), "NSP_GUARD": "on" if guarded else "off", "LANG": "C.UTF-8"}
    ending = b"" if text.endswith(b"\n") or not text else b"\n"

    def run_bash(container_pid: int) -> None:
        os.execve("/bin/bash", ["bash", str(script), str(container_pid)], env)

    jail = Jail("script", run_bash, time_limit=time_limit, trace_fd=theirs.fileno(), output_fd=output.fd,
                files={HOOK_PATH: HOOK.encode(), str(script): text + ending + END.encode() + b"\n"})
    try:
        jail.start()
        theirs.close()
        trace = ScriptTrace(str(script), initial=jail.state())
        jail.go()
        _follow(_Trace(ours, jail), Guard(jail, guarded), trace, jail, output, on_command)
    finally:
        jail.close()
        theirs.close()
        ours.close()
        output.close()
    return trace


def _follow(messages: _Trace, guard: Guard, trace: ScriptTrace, jail: Jail, output: _Output,
            on_command: Callable[[ScriptCommand], None] | None) -> None:
    previous: ScriptCommand | None = None
    ended = False

    def close_previous(status: int | None) -> None:
        if previous is None or previous.after is not None:
            return
        previous.status = status
        previous.output = output.take()
        previous.after = jail.state()
        if on_command:
            on_command(previous)

    def refuse(reason: str, command: ScriptCommand | None = None) -> None:
        line, text = (command.line, command.text) if command else (previous.line, previous.text) if previous \
            else (0, "")
        trace.refusal = Refusal(line, text, reason)

    while True:
        try:
            kind = messages.field()
            if kind == "CMD":
                status, line, text, argc = messages.number(), messages.number(), messages.field(), messages.number()
                argv = [messages.field() for _ in range(argc)] if argc >= 0 else None
            elif kind == "SUB":
                line, text = messages.number(), messages.field()
            elif kind == "END":
                status = messages.number()
            else:
                raise Garbled(f"a message of kind {kind[:40]!r}")
        except EOFError:  # bash has ended
            trace.status = messages.status
            close_previous(trace.status)
            if guard.guarded and not ended and trace.status == 0 and not (previous and guard.exits(previous)):
                refuse("the script stopped reporting to the guard without reaching its end, an `exit` or an "
                       "error: something ran that the guard did not see (it stayed in the sandbox)")
            return
        except Garbled as exc:
            refuse(f"the guard lost track of the script ({exc}); whatever ran stayed in the sandbox")
            return
        if kind == "SUB":
            if guard.guarded:
                refuse("runs in a subshell (of `( )`, of `$( )`, or of a string that arithmetic "
                       "evaluates), which the guard does not follow", ScriptCommand(0, line, text, None))
                close_previous(None)
                return
            trace.subshells.append((line, text))
            continue
        if kind == "END":
            ended = True
            close_previous(status)
            continue
        close_previous(status)
        command = ScriptCommand(index=len(trace.commands) + 1, line=line, text=text, argv=argv)
        command.refused = guard.judge(argv, text)
        trace.commands.append(command)
        previous = command
        if command.refused:  # not answered: the jail is killed with the command waiting
            refuse(command.refused, command)
            return
        try:
            messages.sock.sendall(b"r")
        except (BrokenPipeError, ConnectionResetError):
            pass  # bash is gone: the next read says so
