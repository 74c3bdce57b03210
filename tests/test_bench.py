"""The benchmark keeps working: `python -m bench` with tiny sizes, every group, no time asserted.

It runs as root on the real kernel like the rest of the suite, in the
bench's own sandboxes, and must leave none of them behind, also when it is
stopped half-way.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.options import parse_groups, parse_sizes
from bench.run import compile_project
from bench.timing import Stats, interleave

from .sandbox import ROOT

# One bench at a time: a bench judges only its own sandboxes, but bench_sandboxes() below
# looks at every nsp-bench- name on the machine. The podman tests share the group: both run
# podman, whose netns files in /run/netns are judged machine-wide (test_cni_podman.py).
pytestmark = pytest.mark.xdist_group("bench")

TINY = ["--runs", "2", "--warmup", "0", "--containers", "2", "--scale", "1,2", "--fleet", "2",
        "--fleet-runs", "1", "--cpu-window", "0.2"]


def bench(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "bench", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def bench_sandboxes() -> list[str]:
    try:
        return [n for n in os.listdir("/var/run/netns") if n.startswith("nsp-bench-")]
    except FileNotFoundError:
        return []


@pytest.mark.slow
def test_every_group_with_tiny_sizes(tmp_path: Path, original_script: Path) -> None:
    out, md = tmp_path / "bench.json", tmp_path / "bench.md"
    proc = bench(*TINY, "--script", str(original_script), "--json", str(out), "--markdown", str(md))
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr[-3000:]
    data = json.loads(out.read_text())
    assert data["leftovers"] == []
    rows = {row["key"]: row for row in data["rows"]}
    assert {key.split("/")[0] for key in rows} == {"single", "many", "start", "scale", "startup", "cni", "mininet"}
    for row in rows.values():
        assert row["error"] is None, f"{row['key']}: {row['error']}"
        assert row["skipped"] or row["n"] == (1 if row["key"].startswith("mininet/") else 2), row["key"]
    # The rows the targets of issue 8 are built on were all measured.
    for key in ("single/script", "single/cli-ip", "single/cli-netlink", "single/lib-ip", "single/lib-netlink",
                "many/script", "many/lib-netlink", "start/runner-ip", "start/pipeline", "start/unshare",
                "scale/netlink@1", "scale/netlink@2", "startup/netsetter-help", "mininet/api-start@2",
                "mininet/cli-start@2"):
        assert rows[key]["n"] >= 1, key
    assert rows["startup/netsetter-help"]["extra"]["imports"].keys() >= {"pyroute2", "sh"}
    statuses = {t["target"]: t["status"] for t in data["targets"]}
    assert statuses and set(statuses.values()) <= {"met", "missed", "reported", "not measured"}
    assert "Targets (issue 8)" in stdout
    assert "| netsetter.sh (bash) | 2 |" in md.read_text()
    assert bench_sandboxes() == []


@pytest.mark.slow
def test_sigterm_half_way_leaves_nothing(original_script: Path) -> None:
    proc = bench("--only", "single", "--runs", "50", "--script", str(original_script))
    assert proc.stderr is not None
    deadline = time.monotonic() + 60
    while "round 1/" not in proc.stderr.readline():  # well into the measurements
        assert time.monotonic() < deadline and proc.poll() is None, "the bench did not get going"
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode == 143
    assert bench_sandboxes() == []


def test_options() -> None:
    assert parse_sizes("--scale", "500,1, 100") == (1, 100, 500)
    with pytest.raises(ValueError):
        parse_sizes("--scale", "0,10")
    assert parse_groups("a,scale", None) == ("single", "scale")
    assert parse_groups(None, "g,f") == ("single", "many", "start", "scale", "startup")
    with pytest.raises(ValueError):
        parse_groups("z", None)


def test_interleave_rounds_and_errors() -> None:
    calls: list[str] = []

    def ok() -> float:
        calls.append("ok")
        return 0.5

    def broken() -> float:
        calls.append("broken")
        raise RuntimeError("no such thing")

    outcomes = interleave({"ok": ok, "broken": broken}, runs=3, warmup=1)
    assert calls == ["ok", "broken", "ok", "ok", "ok"]  # in rounds; the broken one stops at once
    assert outcomes["ok"].samples == [0.5, 0.5, 0.5]  # the warm-up run is not kept
    assert outcomes["broken"].error == "RuntimeError: no such thing"
    stats = Stats((0.3, 0.1, 0.2))
    assert (stats.median, stats.min, stats.max, stats.n) == (0.2, 0.1, 0.3, 3)


def test_progress_bar_on_a_terminal_plain_lines_otherwise(original_script: Path, tmp_path: Path) -> None:
    """On a terminal the run draws its progress (group, groups done); piped, plain log lines."""
    args = [sys.executable, "-m", "bench", "--only", "e", "--runs", "1", "--warmup", "0",
            "--script", str(original_script)]
    typescript = tmp_path / "typescript"
    tty = subprocess.run(["script", "-qec", shlex.join(args), str(typescript)], cwd=ROOT,
                         stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
    assert tty.returncode == 0, tty.stdout[-2000:]
    drawn = re.sub(rb"\x1b\[[0-9;?]*[A-Za-z]", b"", typescript.read_bytes()).decode(errors="replace")
    assert re.search(r"e\. start-up .*0/1 groups", drawn), drawn[-2000:]
    piped = bench("--only", "e", "--runs", "1", "--warmup", "0", "--script", str(original_script))
    _, stderr = piped.communicate(timeout=120)
    assert piped.returncode == 0, stderr[-2000:]
    assert "groups" not in stderr and "e. start-up: done in" in stderr


def test_the_bench_compiles_what_the_commands_import(tmp_path: Path) -> None:
    # A checkout without byte-code would have every timed command compile its modules again.
    for package in ("pkg", "tests"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
        (tmp_path / package / "mod.py").write_text("X = 1\n")
    compile_project(tmp_path)
    tag = sys.implementation.cache_tag
    assert (tmp_path / "pkg" / "__pycache__" / f"mod.{tag}.pyc").is_file()
    assert not (tmp_path / "tests" / "__pycache__").exists()
