"""runner.launch parses a plain `runner start` itself (no typer import): it must agree with typer.

Each argv is parsed twice, by launch.parse_start and by the typer command runner.cli defines
(click's make_context: parsing only, nothing runs); the parameters must be the same. What
launch is not sure of it must hand to typer (None), never guess.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from runner import cli, launch

AGREE = [
    ["start"],
    ["start", "--", "/bin/true"],
    ["start", "/bin/sh", "-c", "echo hi"],
    ["start", "/bin/sh", "--", "-x"],
    ["start", "--no-net", "--", "/bin/true"],
    ["start", "--no-net", "--net", "--hostname", "box", "-e", "A=1", "--env=B=2", "--", "env"],
    ["start", "--timeout", "2.5", "--preserve-fds", "2", "-v", "--debug", "--cache-dir", "/tmp/c"],
    ["start", "--ip", "10.0.0.5/24", "--container-addr=10.0.0.6/24", "--bridge", "b0", "--bridge-mac",
     "12:34:56:00:00:01", "--bridge-addr", "10.0.0.1/24", "--veth-host", "auto", "--veth-container", "vc",
     "--gateway", "10.0.0.1", "--backend", "ip", "--masquerade", "-p", "80:8080", "--publish", "81:81"],
    ["start", "--rootfs", "x.tar.gz", "--keep-layer", "/tmp/k", "--map-root-to-caller", "--", "ls", "--", "-l"],
    ["start", "--hostname", "a", "--hostname", "b", "true"],
    ["start", "--timeout", "inf"],
]

TO_TYPER = [
    [], ["--help"], ["exec", "1", "--", "true"], ["start", "--help"], ["start", "-ve"],
    ["start", "--timeout", "soon"], ["start", "--preserve-fds", "1.5"], ["start", "--bogus"],
    ["start", "--hostname"], ["start", "--hostname", "--debug"], ["start", "-e=A=1"], ["start", "--debug=1"],
    ["start", "--cache-dir", ""],
]


def typer_params(args: list[str]) -> dict[str, object]:
    group = typer.main.get_command(cli.app)
    command = group.commands["start"]  # type: ignore[attr-defined]
    params = dict(command.make_context("start", list(args[1:])).params)
    for key, value in params.items():  # click's tuples, as typer hands them to start()
        if isinstance(value, tuple):
            params[key] = list(value) or (None if key == "command" else [])
    if isinstance(params["cache_dir"], str):  # typer makes the Path after click's parse
        params["cache_dir"] = Path(params["cache_dir"])
    return params


@pytest.mark.parametrize("args", AGREE, ids=" ".join)
def test_agrees_with_typer(args: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RUNNER_CACHE_DIR", raising=False)
    assert launch.parse_start(args) == typer_params(args)


def test_cache_dir_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNNER_CACHE_DIR", "/tmp/from-env")
    for args in (["start"], ["start", "--cache-dir", "/tmp/given"]):
        assert launch.parse_start(args) == typer_params(args)


@pytest.mark.parametrize("args", TO_TYPER, ids=lambda a: " ".join(a) or "(none)")
def test_unsure_goes_to_typer(args: list[str]) -> None:
    assert launch.parse_start(args) is None


def test_start_imports_no_typer(tmp_path: Path) -> None:
    """A bad option value found after parsing (spec.build) - runner start's whole path up to
    the container - without typer, click, rich, sh or pyroute2 imported."""
    probe = ("import sys; from runner import launch; from nskit.boundary import fail; from nskit.errors import NsError\n"
             "try:\n    status = launch.main(['start', '--timeout', '0'])\n"
             "except NsError as exc:\n    status = fail('runner', exc)  # as the boundary renders it\n"
             "print(status, sorted(m for m in ('typer', 'click', 'rich', 'sh', 'pyroute2') if m in sys.modules))")
    env = {**os.environ, "PYTHONPATH": str(Path(launch.__file__).parent.parent)}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=60)
    assert out.stdout.split("\n")[0] == "2 []", out.stderr
    assert "runner: error: invalid --timeout" in out.stderr


@pytest.mark.parametrize("module", ["launch", "cli"])
def test_debug_shows_the_traceback_on_either_parser(module: str) -> None:
    """`runner start --debug` with a bad value: the traceback, then the one line, exit 2, whether
    the launcher or typer parsed it (typer's main caught the error start() re-raised for
    --debug and said only the line)."""
    code = f"from nskit.boundary import start; from runner import {module}; start('runner', lambda: {module}.main)"
    env = {**os.environ, "PYTHONPATH": str(Path(launch.__file__).parent.parent)}
    out = subprocess.run([sys.executable, "-c", code, "start", "--debug", "--no-net", "--timeout", "0"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 2, out.stderr
    assert out.stderr.startswith("Traceback"), out.stderr
    assert out.stderr.strip().splitlines()[-1].startswith("runner: error: invalid --timeout '0'"), out.stderr


@pytest.mark.parametrize("module", ["launch", "cli"])
def test_a_debug_of_the_command_is_not_runners(module: str) -> None:
    """`runner start ... -- echo --debug`: that --debug is the command's. The launcher let the
    error reach the boundary, which looks for the word anywhere in argv, and printed a traceback."""
    code = f"from nskit.boundary import start; from runner import {module}; start('runner', lambda: {module}.main)"
    env = {**os.environ, "PYTHONPATH": str(Path(launch.__file__).parent.parent)}
    out = subprocess.run([sys.executable, "-c", code, "start", "--no-net", "--timeout", "0", "--", "echo", "--debug"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 2, out.stderr
    assert out.stderr.startswith("runner: error: invalid --timeout '0'") and out.stderr.count("\n") == 1, out.stderr
