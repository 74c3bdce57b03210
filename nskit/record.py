"""Record: the base of the small value classes on the CNI plugin's hot path.

A frozen dataclass would do, but importing dataclasses (and the inspect, ast and
tokenize it pulls in) and generating each class's methods costs a CNI call about
10 ms, a third of the reference plugin's whole ADD. A Record subclass lists its
fields in ``__slots__`` and sets them in its own ``__init__``; Record gives it a
dataclass's equality, hash, repr and ``replace``, from those fields in that order.
Fields named in ``_uncompared`` are left out of equality, hash and repr (a
dataclass's ``field(compare=False, repr=False)``). Records are not frozen by the
interpreter: treat them as read-only, and make a changed copy with ``replace``.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~5 ms a CNI call)
if TYPE_CHECKING:
    from typing import Any, TypeVar

    R = TypeVar("R", bound="Record")


class Record:
    __slots__: tuple[str, ...] = ()
    _uncompared: tuple[str, ...] = ()

    def _compared(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self.__slots__ if name not in self._uncompared)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._compared() == other._compared()

    def __hash__(self) -> int:
        return hash(self._compared())

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__ if name not in self._uncompared)
        return f"{self.__class__.__qualname__}({shown})"

    def replace(self: R, **changes: Any) -> R:
        """A copy with ``changes`` (dataclasses.replace); an unknown field is a TypeError."""
        unknown = set(changes) - set(self.__slots__)
        if unknown:
            raise TypeError(f"{self.__class__.__qualname__} has no field {', '.join(sorted(unknown))}")
        return self.__class__(**{name: changes.get(name, getattr(self, name)) for name in self.__slots__})
