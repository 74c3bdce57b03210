"""Run a netsetter-style bash script one command at a time, with a snapshot after each.

bash itself runs the script (so its variables, `echo`s, `[ ]` tests and
failing commands behave exactly as they do for a user), inside a sandbox
host netns, with the sandbox container's pid as ``$1``. A DEBUG trap, set
through BASH_ENV before the script's first line, stops before every simple
command and reports over a pipe: the previous command's exit status, the
command's text and line, and its words once expanded. We take a snapshot
(the state after the previous command), judge the command with a
:class:`Guard`, and answer run or skip; with ``extdebug`` on, a DEBUG trap
that returns 1 makes bash skip the command.
"""

from __future__ import annotations

import os
import select
import shlex
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..errors import NetsetterError
from ..sandbox import Container, Sandbox
from ..snapshot import State, state_of
from .guard import Guard

# Expanding a command's words with `eval "set -- ..."` is safe only without
# command substitution and redirections (a `> file` would be performed).
# Redirections to /dev/null and between fds are dropped first: they are common
# (`ip link del x 2>/dev/null`) and change nothing.
HOOK = r"""
__nsp_send() { printf '%s\0' "$@" >&"$NSP_FD_OUT"; }
__nsp_hook() {
    local status=$? line=${BASH_LINENO[0]} cmd=$BASH_COMMAND safe __nsp_reply
    [[ "${BASH_SOURCE[1]}" == "$NSP_SCRIPT" ]] || return 0
    shopt -s extdebug
    safe=$cmd
    while [[ $safe =~ (^|[[:space:]])([0-9]*|&)\>\>?[[:space:]]*(/dev/null|\&[0-9])([[:space:]]|$) ]]; do
        safe=${safe/"${BASH_REMATCH[0]}"/ }
    done
    if [[ $safe == *'$('* || $safe == *'`'* || $safe == *[\<\>\|\;\&]* ]]; then
        __nsp_send CMD "$status" "$line" "$cmd" -1
    else
        eval "set -- $safe"
        __nsp_send CMD "$status" "$line" "$cmd" "$#" "$@"
    fi
    read -r -n1 -u "$NSP_FD_IN" __nsp_reply
    [[ $__nsp_reply == r ]]
}
trap '__nsp_hook "$@"' DEBUG
"""


@dataclass
class ScriptCommand:
    index: int
    line: int
    text: str  # as bash shows it, before expansion
    argv: list[str] | None  # after expansion; None when it could not be expanded safely
    refused: str | None = None  # why the guard did not let it run
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
    initial: State
    commands: list[ScriptCommand] = field(default_factory=list)
    status: int | None = None


class _Reader:
    """NUL-separated fields from the hook, read as they come."""

    def __init__(self, fd: int, timeout: float) -> None:
        self.fd, self.timeout, self.buf = fd, timeout, b""

    def field(self) -> str:
        while b"\0" not in self.buf:
            ready, _, _ = select.select([self.fd], [], [], self.timeout)
            if not ready:
                raise NetsetterError(f"the script did not reach its next command within {self.timeout:.0f} s")
            chunk = os.read(self.fd, 65536)
            if not chunk:
                raise EOFError
            self.buf += chunk
        head, _, self.buf = self.buf.partition(b"\0")
        return head.decode(errors="replace")


def trace_script(script: Path, box: Sandbox, container: Container, *, timeout: float = 30,
                 on_command: Callable[[ScriptCommand], None] | None = None) -> ScriptTrace:
    """Run ``script`` in ``box`` against ``container`` and record every command."""
    guard = Guard(container.pid)
    trace = ScriptTrace(str(script), initial=state_of(box.ref(), container.pid))
    to_us_r, to_us_w = os.pipe()
    to_it_r, to_it_w = os.pipe()
    with tempfile.TemporaryDirectory(prefix="nsp-compare-") as tmp:
        hook = Path(tmp, "hook.sh")
        hook.write_text(HOOK)
        out_path = Path(tmp, "output")
        with open(out_path, "wb") as out, open(out_path, "rb") as out_reader:
            env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "BASH_ENV": str(hook),
                   "NSP_SCRIPT": str(script), "NSP_FD_OUT": str(to_us_w), "NSP_FD_IN": str(to_it_r),
                   "LANG": "C.UTF-8"}
            proc = subprocess.Popen(["ip", "netns", "exec", box.name, "bash", str(script), str(container.pid)],
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
                                    pass_fds=(to_us_w, to_it_r), start_new_session=True)
            os.close(to_us_w)
            os.close(to_it_r)
            try:
                _follow(proc, guard, trace, box, container, _Reader(to_us_r, timeout), to_it_w, out_reader,
                        on_command)
            finally:
                os.close(to_us_r)
                os.close(to_it_w)
                if proc.poll() is None:
                    os.killpg(proc.pid, 9)
                proc.wait()
                for entry in guard.made:  # entries the script made and did not remove
                    if os.path.islink(entry):
                        os.unlink(entry)
    return trace


def _follow(proc: subprocess.Popen, guard: Guard, trace: ScriptTrace, box: Sandbox, container: Container,
            reader: _Reader, reply_fd: int, out, on_command) -> None:  # type: ignore[no-untyped-def]
    previous: ScriptCommand | None = None

    def close_previous(status: int) -> None:
        if previous is None:
            return
        previous.status = status if previous.refused is None else None
        previous.output = out.read().decode(errors="replace").rstrip("\n")
        previous.after = state_of(box.ref(), container.pid)
        if on_command:
            on_command(previous)

    while True:
        try:
            kind = reader.field()
        except EOFError:  # bash has exited: its status is the last command's
            trace.status = proc.wait(timeout=10)
            close_previous(trace.status)
            return
        assert kind == "CMD", kind
        status = int(reader.field())
        line, text, argc = int(reader.field()), reader.field(), int(reader.field())
        argv = [reader.field() for _ in range(argc)] if argc >= 0 else None
        close_previous(status)
        command = ScriptCommand(index=len(trace.commands) + 1, line=line, text=text, argv=argv)
        command.refused = guard.judge(argv, text)
        trace.commands.append(command)
        previous = command
        os.write(reply_fd, b"s" if command.refused else b"r")
