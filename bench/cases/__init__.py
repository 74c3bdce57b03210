"""The row groups of issue 8, one module each, in the order they run.

Each module has ``run(ctx) -> list[Row]`` and, where the issue sets one,
``targets(run) -> list[Verdict]`` judging its rows. A module imports what it
measures inside ``run``, so that a group that is skipped costs nothing.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from ..results import GROUPS


def module(group: str) -> ModuleType:
    if group not in GROUPS:
        raise KeyError(group)
    return importlib.import_module(f"{__name__}.{group}")
