"""One backend, serving calls to its primitives from inside a sandbox (tests/test_backend_contract.py).

Run as `ip netns exec SANDBOX python -m tests.backend_worker BACKEND INODE`, INODE the
test's own netns, which the worker refuses to run in: the sandbox
is then the backend's host namespace, so nothing it does can reach the machine's
own. Each request on stdin is a length-prefixed pickle of (method, args, kwargs);
each answer on stdout is ("ok", value) or ("op_error", verb, obj, cause, errno)
or ("error", text). The test and this worker are the same code base, so pickle
carries Link, Route and the ipaddress types as they are.
"""

from __future__ import annotations

import os
import pickle
import struct
import sys
from typing import Any, BinaryIO

FRAME = struct.Struct("=I")


def read_frame(stream: BinaryIO) -> Any:
    head = stream.read(FRAME.size)
    if len(head) < FRAME.size:
        return None
    (size,) = FRAME.unpack(head)
    return pickle.loads(stream.read(size))


def write_frame(stream: BinaryIO, value: Any) -> None:
    data = pickle.dumps(value)
    stream.write(FRAME.pack(len(data)) + data)
    stream.flush()


def main(name: str, outside: int) -> int:
    if os.stat("/proc/self/ns/net").st_ino == outside:
        print("backend_worker: refusing to run in the test's own network namespace", file=sys.stderr)
        return 2
    from backends import open_backend
    from nskit.errors import OpError

    requests, answers = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # a stray print must not corrupt the answers
    with open_backend(name) as backend:
        while (request := read_frame(requests)) is not None:
            method, args, kwargs = request
            try:
                if method == "trace":
                    reply: tuple[Any, ...] = ("ok", [(c.text, c.change) for c in backend.trace])
                else:
                    reply = ("ok", getattr(backend, method)(*args, **kwargs))
            except OpError as exc:
                reply = ("op_error", exc.verb, exc.obj, exc.cause, exc.errno)
            except Exception as exc:  # noqa: BLE001 - reported to the test, which fails on it
                reply = ("error", f"{type(exc).__name__}: {exc}")
            write_frame(answers, reply)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2])))
