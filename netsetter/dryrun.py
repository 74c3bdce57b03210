"""--dry-run: the port's steps as one bash script, changing nothing.

Run with bash (as root, in the namespace that plays the host) it ends in the
state the port would leave. What bash cannot do as the port does is said in
the header: a failure stops the script (set -e) but is not rolled back.
"""

from __future__ import annotations

import shlex

from .config import NetConfig
from .steps import STEPS, Context


def render(pid: int, config: NetConfig) -> str:
    ctx = Context(pid=pid, config=config)
    options = " ".join(shlex.quote(a) for a in config.cli_options())
    out = ["#!/usr/bin/env bash",
           f"# netsetter {pid} {options}",
           "# What the port does, step by step, as bash. Unlike netsetter, a failure here stops",
           "# the script (set -e) without undoing the steps before it.",
           "set -e"]
    for number, step in enumerate(STEPS, 1):
        out += ["", f"# {number}/{len(STEPS)} {step.name}: {step.summary}"]
        out += [f"#   netsetter.sh: {line}" for line in step.script_lines(ctx)] or ["#   netsetter.sh: (none)"]
        if step.difference:
            out.append(f"#   differs on purpose: {step.difference}")
        out += step.bash_lines(ctx)
    return "\n".join(out) + "\n"
