"""compare(): the script traced, each backend traced, rows lined up and judged (see __init__)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nskit.errors import UsageError

from ..config import NetConfig
from .align import Row, align, judge
from .guard import Refusal, scan
from .portrun import PortTrace, trace_port
from .scriptrun import ScriptTrace, trace_script

TIME_LIMIT = 30.0  # seconds, for each jail
# Lets every command the script reaches run, refused or not: to test that the jail holds.
UNGUARDED_ENV = "NETSETTER_COMPARE_UNGUARDED"


@dataclass
class Comparison:
    script: ScriptTrace
    ports: list[PortTrace]
    rows: list[Row]
    verdicts: dict[str, bool]

    @property
    def refusal(self) -> Refusal | None:
        return self.script.refusal

    @property
    def same(self) -> bool:
        return self.refusal is None and all(self.verdicts.values())

    @property
    def verdict(self) -> str:
        return "refused" if self.refusal else "same" if self.same else "different"

    def as_dict(self) -> dict[str, Any]:
        return {
            "script": self.script.path,
            "script_status": self.script.status,
            "verdict": self.verdict,
            "refused": self.refusal.as_dict() if self.refusal else None,
            "backends": {p.backend: {"verdict": "same" if self.verdicts[p.backend] else "different",
                                     "error": p.error, "initial": p.initial.as_dict(),
                                     "steps": [{**s.record, "after": s.after.as_dict()} for s in p.steps]}
                         for p in self.ports},
            "script_initial": self.script.initial.as_dict() if self.script.initial else None,
            "commands": [c.as_dict() for c in self.script.commands],
            "rows": [row.as_dict() for row in self.rows],
        }


def compare(script: Path, backends: list[str], config: NetConfig, *, time_limit: float = TIME_LIMIT,
            guarded: bool | None = None) -> Comparison:
    if not script.is_file():
        raise UsageError("script", script, "no such file")
    if time_limit <= 0:
        raise UsageError("time limit", time_limit, "must be a positive number of seconds")
    if guarded is None:
        guarded = os.environ.get(UNGUARDED_ENV, "") in ("", "0")
    try:
        text = script.read_bytes()
    except OSError as exc:
        raise UsageError("script", script, f"cannot be read: {exc.strerror}") from None
    refusal = scan(text.decode(errors="replace")) if guarded else None
    if refusal:
        return Comparison(ScriptTrace(str(script), initial=None, refusal=refusal), [], [], {})
    script_trace = trace_script(script, text, time_limit=time_limit, guarded=guarded)
    if script_trace.refusal:
        return Comparison(script_trace, [], [], {})
    ports = [trace_port(name, config, time_limit=time_limit) for name in backends]
    rows = align(script_trace)
    verdicts = {port.backend: judge(rows, script_trace, port) for port in ports}
    return Comparison(script_trace, ports, rows, verdicts)
