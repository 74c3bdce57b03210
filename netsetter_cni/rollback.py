"""Undo what a failed ADD made, newest first: Go's "defer + success flag", in Python.

    with Rollback() as undo:
        make_bridge();  undo.push("delete bridge cni0", lambda: ...)
        lease();        undo.push("release 10.88.0.2", lambda: ...)
        ...             # an exception here runs both undos, the lease first

An undo that fails does not stop the others; its error is added to the
details of the :class:`CniError` that is raised, so the runtime's log shows
what may be left behind. Ctrl-C and SIGTERM unwind the same way.
"""

from __future__ import annotations

from typing import Callable

from .errors import as_cni_error


class Rollback:
    def __init__(self) -> None:
        self._undo: list[tuple[str, Callable[[], object]]] = []

    def push(self, what: str, action: Callable[[], object]) -> None:
        self._undo.append((what, action))

    def unwind(self) -> list[str]:
        """Run every undo, newest first; return the failures as "what: error"."""
        failures = []
        while self._undo:
            what, action = self._undo.pop()
            try:
                action()
            except Exception as exc:  # keep going: the other undos still matter
                failures.append(f"{what}: {exc}")
        return failures

    def __enter__(self) -> "Rollback":
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if exc is None:
            self._undo.clear()  # success: keep everything
            return
        failures = self.unwind()
        if not isinstance(exc, Exception):
            return  # Ctrl-C, SIGTERM: undone; let it end the process
        error = as_cni_error(exc)
        error.add_details("what was made was undone" if not failures else
                          "undo also failed: " + "; ".join(failures))
        if error is not exc:
            raise error from exc
