"""What a benchmark run produces: rows of measurements, and targets judged on them.

A :class:`Row` is one thing measured (the script on one container, the
library with one backend, ...), keyed ``group/name`` so that targets can
name it. A row that could not be measured says why: ``skipped`` when
something it needs is absent (the CNI plugin, mininet), ``error`` when the
measured command failed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .timing import Outcome, Stats

GROUPS = {
    "single": "a. one container's network",
    "many": "b. N containers",
    "start": "c. container start",
    "scale": "d. one more setup at scale",
    "startup": "e. start-up",
    "cni": "f. CNI plugins",
    "mininet": "g. N hosts: Mininet vs ns-proc",
}


@dataclass
class Row:
    key: str  # "group/name", unique in a run
    label: str  # what a reader sees in the table
    stats: Stats | None = None
    per: int = 1  # items in one sample (N containers): the table adds median/per
    note: str = ""
    skipped: str | None = None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def group(self) -> str:
        return self.key.split("/", 1)[0]

    @classmethod
    def of(cls, key: str, label: str, outcome: Outcome, **kwargs: Any) -> "Row":
        return cls(key, label, stats=outcome.stats(), error=outcome.error, **kwargs)

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"key": self.key, "group": GROUPS.get(self.group, self.group),
                                "label": self.label, "per": self.per, "note": self.note,
                                "skipped": self.skipped, "error": self.error, "extra": self.extra}
        if self.stats:
            data.update(self.stats.as_dict())
            if self.per > 1:
                data["median_per_item_ms"] = round(self.stats.median * 1000 / self.per, 3)
        return data


@dataclass
class Verdict:
    """One target of issue 8, judged: ``ratio`` against ``limit`` (None: reported, no limit)."""

    name: str
    ratio: float | None = None
    limit: float | None = None
    holds: bool | None = None  # for yes/no targets (imports), instead of a ratio
    why_not: str = ""  # why it could not be judged (or, for a yes/no target, what was seen)

    @property
    def status(self) -> str:
        if self.holds is not None:
            return "met" if self.holds else "missed"
        if self.ratio is None:
            return "not measured"
        if self.limit is None:
            return "reported"
        return "met" if self.ratio <= self.limit else "missed"

    def as_dict(self) -> dict[str, Any]:
        return {"target": self.name, "ratio": None if self.ratio is None else round(self.ratio, 3),
                "limit": self.limit, "status": self.status, "why_not": self.why_not}


@dataclass
class Run:
    machine: dict[str, Any]
    options: dict[str, Any]
    rows: list[Row] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    seconds: float = 0.0
    leftovers: list[str] = field(default_factory=list)

    def row(self, key: str) -> Row | None:
        return next((r for r in self.rows if r.key == key), None)

    def as_dict(self) -> dict[str, Any]:
        return {"machine": self.machine, "options": self.options, "seconds": round(self.seconds, 1),
                "rows": [r.as_dict() for r in self.rows], "targets": [v.as_dict() for v in self.verdicts],
                "leftovers": self.leftovers}
