"""netsetter compare: the original script and the port, side by side, state by state.

    compare(script, ["ip", "netlink"], config)
      -> a sandbox for the script: bash runs it one command at a time,
         a snapshot after each (scriptrun)
      -> a sandbox per backend: the port's steps, a snapshot after each (portrun)
      -> commands and steps lined up, every row judged (align)
      -> every sandbox removed, also on failure or Ctrl-C
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nskit.errors import UsageError

from ..config import NetConfig
from ..sandbox import Sandbox
from .align import Row, align, judge
from .portrun import PortTrace, trace_port
from .scriptrun import ScriptTrace, trace_script


@dataclass
class Comparison:
    script: ScriptTrace
    ports: list[PortTrace]
    rows: list[Row]
    verdicts: dict[str, bool]

    @property
    def same(self) -> bool:
        return all(self.verdicts.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "script": self.script.path,
            "script_status": self.script.status,
            "verdict": "same" if self.same else "different",
            "backends": {p.backend: {"verdict": "same" if self.verdicts[p.backend] else "different",
                                     "error": p.error, "initial": p.initial.as_dict(),
                                     "steps": [{**s.record, "after": s.after.as_dict()} for s in p.steps]}
                         for p in self.ports},
            "script_initial": self.script.initial.as_dict(),
            "rows": [row.as_dict() for row in self.rows],
        }


def compare(script: Path, backends: list[str], config: NetConfig) -> Comparison:
    if not script.is_file():
        raise UsageError("script", script, "no such file")
    sandboxes: list[Sandbox] = []
    try:
        box = Sandbox("cmp-script")
        sandboxes.append(box)
        script_trace = trace_script(script, box, box.container())
        ports = []
        for name in backends:
            box = Sandbox(f"cmp-{name}")
            sandboxes.append(box)
            ports.append(trace_port(box, box.container(), name, config))
    finally:
        for box in sandboxes:
            box.close()
    rows = align(script_trace)
    verdicts = {port.backend: judge(rows, script_trace, port) for port in ports}
    return Comparison(script_trace, ports, rows, verdicts)
