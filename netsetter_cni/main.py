"""netsetter-cni: the executable a runtime runs, once per command.

    CNI_COMMAND=VERSION               -> print the supported versions; read nothing, import nothing
    CNI_COMMAND=ADD|DEL|CHECK         -> read CNI_* and the configuration on stdin,
                                         run the command (netsetter_cni.commands),
                                         print ADD's result on stdout, exit 0
    any failure                       -> print the spec's error JSON on stdout, exit 1

Runtimes call VERSION for every plugin of every network on each container
start (podman: twice), so this module and what it imports before knowing the
command stay within what Python starts with; ``python -X importtime`` shows
it. stdout carries only the result or the error; logs go to stderr.
"""

from __future__ import annotations

import os
import sys

from nskit.errors import ExitStatus, Terminated, raise_on_sigterm

from . import args, version
from .errors import DECODE_FAILURE, INTERNAL, IO_FAILURE, CniError, as_cni_error

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~5 ms a CNI call)
if TYPE_CHECKING:
    from typing import Any


def main() -> int:
    cni_version = version.LATEST  # of the error result, until the configuration says which
    env = dict(os.environ)
    try:
        command = args.read_command(env)
        if command == "VERSION":
            _write(version.version_result())
            return 0
        raw = _read_config()
        if raw.get("cniVersion") in version.SUPPORTED:
            cni_version = raw["cniVersion"]  # errors from here on in the configuration's version
        invocation = args.parse(env, command)
        raise_on_sigterm()  # ADD's undo runs on the way out
        from .commands import run

        output = run(invocation, raw)
        if output is not None:
            import json

            _write(json.dumps(output, indent=2))
        return 0
    except KeyboardInterrupt:
        return ExitStatus.INTERRUPTED  # what ADD had made was undone on the way out
    except Terminated:
        return ExitStatus.TERMINATED
    except Exception as exc:  # every failure is a result on stdout, never a bare traceback
        error = as_cni_error(exc)
        if error.code == INTERNAL:
            import traceback

            traceback.print_exception(exc, file=sys.stderr)
        import json

        _write(json.dumps(error.as_dict(cni_version), indent=2))
        return error.exit_status


# A network configuration is a few KiB nested a few levels (a conflist's prevResult, ipam.ranges);
# far beyond either is not a configuration, and unbounded input would cost memory and recursion.
MAX_CONFIG_BYTES = 1 << 20
MAX_DEPTH = 64


def _read_config() -> dict[str, Any]:
    import json

    if sys.stdin is None:  # the runtime closed descriptor 0: Python then has no sys.stdin at all
        raise CniError(IO_FAILURE, "failed to read the network configuration: stdin is closed",
                       "the runtime sends the network's configuration as JSON on stdin")
    try:
        data = sys.stdin.buffer.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise CniError(IO_FAILURE, f"failed to read the network configuration from stdin: {exc.strerror}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise CniError(DECODE_FAILURE, "failed to decode the network configuration: stdin holds more than "
                       f"{MAX_CONFIG_BYTES} bytes", "a network configuration is a few KiB of JSON")
    if not data.strip():
        raise CniError(DECODE_FAILURE, "failed to decode the network configuration: stdin is empty",
                       "the runtime sends the network's configuration as JSON on stdin")
    if data.count(b"[") + data.count(b"{") > MAX_DEPTH and _depth(data) > MAX_DEPTH:
        raise CniError(DECODE_FAILURE, "failed to decode the network configuration: JSON nested more than "
                       f"{MAX_DEPTH} levels deep", "a network configuration nests a few levels")
    try:
        raw = json.loads(data)
    except ValueError as exc:  # JSONDecodeError, or bytes that are not UTF-8
        raise CniError(DECODE_FAILURE, f"failed to decode the network configuration: {exc}") from None
    if not isinstance(raw, dict):
        raise CniError(DECODE_FAILURE, "failed to decode the network configuration: "
                       f"expected a JSON object, got {type(raw).__name__}")
    return raw


def _depth(data: bytes) -> int:
    """The deepest nesting of arrays and objects in JSON text, brackets in strings not counted."""
    deepest = depth = 0
    in_string = escaped = False
    for byte in data:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # the closing quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return deepest


def _write(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def entry() -> None:
    """The process's end: the result is written and flushed, everything made is done or undone,
    so the interpreter's shutdown (finalizers, module teardown: 10-100 ms) is skipped."""
    from nskit.leave import leave

    leave(main())


if __name__ == "__main__":
    entry()
