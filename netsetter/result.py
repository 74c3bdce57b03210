"""What a run did: per step, the script lines, the commands, the outcome, the time."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class StepResult:
    index: int
    name: str
    summary: str
    script: list[str]
    difference: str | None
    status: str = "pending"  # pending | running | ok | skipped | failed
    detail: str = ""
    ms: float = 0.0
    commands: list[dict[str, Any]] = field(default_factory=list)
    undo: str | None = None  # what undoing it did, when the run was rolled back

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Result:
    pid: int | None
    backend: str
    config: dict[str, str]
    steps: list[StepResult]
    outcome: str = "pending"  # ok | failed
    error: str | None = None
    ms: float = 0.0
    locked_at: float | None = None  # when the run took the host's lock (epoch seconds)
    unlocked_at: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"pid": self.pid, "backend": self.backend, "config": self.config,
                "outcome": self.outcome, "error": self.error, "ms": round(self.ms, 3),
                "locked_at": self.locked_at, "unlocked_at": self.unlocked_at,
                "steps": [step.as_dict() for step in self.steps]}
