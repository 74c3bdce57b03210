"""Run another CNI plugin (the IPAM plugin ipam.type names) as a runtime would.

    run_plugin("host-local", "ADD", conf)   -> its result, a dict (ADD), or None
                                            -> its error as ours: its code, its msg, named

The spec's delegation: the plugin is found in CNI_PATH (a list of directories,
':'-separated), runs with our own environment except CNI_COMMAND, and gets the
network's configuration on stdin, unchanged (the reference plugins pass their
own stdin on). Started with posix_spawn over two pipes: the subprocess module
alone would cost every ADD a few milliseconds of imports.
"""

from __future__ import annotations

import json
import os

from .errors import INVALID_CONFIG, INVALID_ENVIRONMENT, OPERATION_FAILED, CniError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~5 ms a CNI call)
if TYPE_CHECKING:
    from typing import Any


def find(kind: str) -> str:
    search = os.environ.get("CNI_PATH", "")
    # Only absolute directories: a relative entry ("." or "bin") names a folder of whatever the
    # runtime's working directory is, from which anyone who can write there would be run as root.
    dirs = [d for d in search.split(":") if d.startswith("/")]
    for directory in dirs:
        path = os.path.join(directory, kind)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    relative = [d for d in search.split(":") if d and not d.startswith("/")]
    ignored = f" (relative entries are ignored: {', '.join(relative)})" if relative else ""
    if not dirs:
        raise CniError(INVALID_ENVIRONMENT, f'invalid CNI_PATH: no absolute directory, so the IPAM plugin "{kind}" '
                       f"cannot be found{ignored}", "the runtime sets it to its plugin directories")
    raise CniError(INVALID_CONFIG, f'failed to find IPAM plugin "{kind}" in CNI_PATH {search}{ignored}',
                   "install it there, or set ipam.type to another plugin (or omit it for netsetter's own)")


def run_plugin(kind: str, command: str, conf: dict[str, Any], **env_changes: str) -> dict[str, Any] | None:
    """Run ``kind`` for ``command`` (with ``env_changes`` to our CNI_* variables, as GC's DEL of
    one attachment needs); its JSON result (None when it prints nothing)."""
    return start_plugin(kind, command, conf, **env_changes).result()


def start_plugin(kind: str, command: str, conf: dict[str, Any], **env_changes: str) -> Running:
    """``kind`` started for ``command``, its configuration written to its stdin: the caller does
    other work while it runs (DEL removes the links meanwhile), then takes ``result()``."""
    path = find(kind)
    data = json.dumps(conf).encode()
    env = dict(os.environ, **env_changes, CNI_COMMAND=command)
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    try:
        pid = os.posix_spawn(path, [path], env, file_actions=[
            (os.POSIX_SPAWN_DUP2, in_r, 0), (os.POSIX_SPAWN_DUP2, out_w, 1),
            (os.POSIX_SPAWN_CLOSE, in_w), (os.POSIX_SPAWN_CLOSE, out_r)])
    except OSError as exc:
        for fd in (in_r, in_w, out_r, out_w):
            os.close(fd)
        raise CniError(OPERATION_FAILED, f'failed to run IPAM plugin "{path}": {exc.strerror}') from None
    os.close(in_r)
    os.close(out_w)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(in_w, view):]
    except BrokenPipeError:
        pass  # it did not read it all: its exit status says why
    finally:
        os.close(in_w)
    return Running(kind, command, pid, out_r)


class Running:
    """An IPAM plugin started by start_plugin: its stdout still to read, its exit still to reap."""

    def __init__(self, kind: str, command: str, pid: int, out: int) -> None:
        self.kind, self.command, self.pid, self.out = kind, command, pid, out

    def result(self) -> dict[str, Any] | None:
        """Its JSON result (None when it prints nothing), or its failure as a CniError."""
        chunks = []
        try:
            while chunk := os.read(self.out, 65536):
                chunks.append(chunk)
        finally:
            os.close(self.out)
            _, status = os.waitpid(self.pid, 0)
        out = b"".join(chunks)
        kind, command = self.kind, self.command
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            raise _their_error(kind, command, code, out)
        if not out.strip():
            return None
        try:
            result = json.loads(out)
        except ValueError as exc:
            raise CniError(OPERATION_FAILED, f'failed to decode the {command} result of IPAM plugin "{kind}": {exc}') from None
        if not isinstance(result, dict):
            raise CniError(OPERATION_FAILED, f'failed to decode the {command} result of IPAM plugin "{kind}": '
                           "not a JSON object")
        return result


def _their_error(kind: str, command: str, code: int, out: bytes) -> CniError:
    """The plugin's own error result, under its code; a bare failure as ours (100)."""
    try:
        error = json.loads(out)
    except ValueError:
        error = None
    how = f"exit status {code}" if code > 0 else f"signal {-code}"
    if isinstance(error, dict) and isinstance(error.get("code"), int) and error.get("msg"):
        details = str(error.get("details") or "")
        return CniError(error["code"], f'failed to run IPAM plugin "{kind}" {command}: {error["msg"]}', details)
    text = out.decode(errors="replace").strip().splitlines()
    return CniError(OPERATION_FAILED, f'failed to run IPAM plugin "{kind}" {command}: {how}'
                    + (f": {text[-1]}" if text else ""))
