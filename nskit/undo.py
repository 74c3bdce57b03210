"""One undo stack: what a run made, undone newest first when it fails.

    with UndoStack() as undo:
        make_bridge();  undo.push("delete bridge br0", lambda: ...)
        lease();        undo.push("release 10.10.10.101", lambda: ...)
        ...             # an exception here runs both undos, the lease first

An undo that fails does not stop the others: its failure is kept in
:attr:`UndoStack.failures` as ``"<what>: <error>"`` for the error the caller
raises. Ctrl-C and SIGTERM (:class:`~nskit.errors.Terminated`) unwind the same
way, and go on ending the process. On success, nothing is undone.
Used by the netsetter engine's rollback and by CNI ADD.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~5 ms a CNI call)
if TYPE_CHECKING:
    from typing import Callable


class UndoStack:
    def __init__(self) -> None:
        self._undo: list[tuple[str, Callable[[], object]]] = []
        self.failures: list[str] = []

    def push(self, what: str, action: Callable[[], object]) -> None:
        self._undo.append((what, action))

    def unwind(self) -> list[str]:
        """Run every undo, newest first; return (and keep) the failures as "what: error"."""
        while self._undo:
            what, action = self._undo.pop()
            try:
                action()
            except Exception as exc:  # keep going: the other undos still matter
                self.failures.append(f"{what}: {exc}")
        return self.failures

    def keep(self) -> None:
        """Success: forget every undo, so that nothing made is undone."""
        self._undo.clear()

    def __enter__(self) -> "UndoStack":
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if exc is None:
            self.keep()
        else:
            self.unwind()  # and the exception goes on
