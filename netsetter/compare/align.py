"""Line the script's commands up with the port's steps, and judge each row.

A script command and a port step match when they have the same shape: the
same `ip` words (link, add, dev, netns, ...) in the same places, whatever
the names and addresses. Matching goes in order; a step that finds no
command is a port-only row, a command that finds no step a script-only row.

Each row compares the state after it on both sides: for a script-only row,
with the port's state after the last step lined up so far, and the other way
round. A row is judged on the differences that appear at it; differences
that only carry on from an earlier row are shown as such, so the verdict
points at the command or step where the paths parted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .snapshot import diff
from ..steps import STEPS
from .portrun import PortTrace
from .scriptrun import ScriptCommand, ScriptTrace

# Literal words of the script lines the steps reproduce; other words are values.
KEYWORDS = {"ip", "link", "del", "add", "name", "address", "type", "bridge", "addr", "dev", "set", "up",
            "down", "veth", "peer", "master", "netns", "exec", "route", "default", "via", "ln", "-s", "rm",
            "-rf", "-f", "mkdir", "echo"}

SAME, DELIBERATE, DIFFERS, CARRIED = "same", "deliberate", "differs", "carried"


def shape(words: list[str]) -> tuple[str, ...]:
    return tuple(w if w in KEYWORDS else "*" for w in words)


def _anchor(template_lines: tuple[str, ...]) -> tuple[str, ...] | None:
    """The shape of the step's main line: its first `ip`, `ln` or `rm` command."""
    for line in template_lines:
        words = line.split()
        if words and words[0] in ("ip", "ln", "rm"):
            return shape(["*" if w.startswith("{") else w for w in words])
    return None


ANCHORS = [_anchor(step.script) for step in STEPS]


@dataclass
class Row:
    command: ScriptCommand | None
    step_index: int | None  # index into STEPS
    status: dict[str, str] = field(default_factory=dict)  # per backend
    differences: dict[str, list[str]] = field(default_factory=dict)  # new at this row, per backend

    def as_dict(self) -> dict[str, Any]:
        step = STEPS[self.step_index] if self.step_index is not None else None
        return {"command": self.command.as_dict() if self.command else None,
                "step": step.name if step else None, "deliberate": bool(step and step.difference),
                "status": self.status, "differences": self.differences}


def align(script: ScriptTrace) -> list[Row]:
    rows: list[Row] = []
    next_step = 0
    for command in script.commands:
        words = command.argv if command.argv is not None else command.text.split()
        found = next((k for k in range(next_step, len(STEPS)) if ANCHORS[k] == shape(words)), None)
        if found is None:
            rows.append(Row(command, None))
            continue
        rows += [Row(None, k) for k in range(next_step, found)]
        rows.append(Row(command, found))
        next_step = found + 1
    rows += [Row(None, k) for k in range(next_step, len(STEPS))]
    return rows


def judge(rows: list[Row], script: ScriptTrace, port: PortTrace) -> bool:
    """Fill in each row's status for this backend; True when the verdict is "same"."""
    assert script.initial is not None, "judge() compares a script that ran"
    script_state, port_state = script.initial, port.initial
    port_after = {STEPS_INDEX[s.record["name"]]: s.after for s in port.steps}
    seen: set[str] = set()
    ok = True
    for row in rows:
        if row.command is not None:
            script_state = row.command.after or script_state
        if row.step_index is not None:
            port_state = port_after.get(row.step_index, port_state)
        differences = diff(script_state, port_state)
        new = [d for d in differences if d not in seen]
        seen = set(differences)
        step = STEPS[row.step_index] if row.step_index is not None else None
        if step is not None and row.step_index not in port_after:
            status = DIFFERS
            new = [f"the port did not reach step {step.name}: {port.error or 'it stopped before'}"] + new
        elif step is not None and step.difference and (new or row.command is None):
            status = DELIBERATE
        elif step is not None and row.command is None:
            status = DIFFERS
            new = [f"step {step.name} has no line in the script"] + new
        elif new:
            status = DIFFERS
        elif differences:
            status = CARRIED
        else:
            status = SAME
        row.status[port.backend] = status
        row.differences[port.backend] = new
        ok = ok and status in (SAME, DELIBERATE, CARRIED)
    return ok


STEPS_INDEX = {step.name: i for i, step in enumerate(STEPS)}
