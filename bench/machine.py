"""The machine a run was measured on, for the report and bench/RESULTS.md."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata


def _first(path: str, key: str) -> str:
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key):
                    # /proc files say "key : value"; os-release says KEY="value"
                    rest = line[len(key):] if key.endswith("=") else line.split(":", 1)[1]
                    return rest.strip().strip('"')
    except OSError:
        pass
    return "?"


def _version_of(*argv: str) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "absent"
    return (out.stdout or out.stderr).strip().splitlines()[0] if out.returncode == 0 else "absent"


def _package(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "absent"


def describe() -> dict[str, object]:
    mem_kb = int(_first("/proc/meminfo", "MemTotal").split()[0])
    return {
        "cpu": _first("/proc/cpuinfo", "model name"),
        "cores": os.cpu_count(),
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "os": _first("/etc/os-release", "PRETTY_NAME="),
        "python": platform.python_version(),
        "load_at_start": [round(x, 2) for x in os.getloadavg()],
        "iproute2": _version_of("ip", "-V"),
        "bash": _version_of("bash", "--version"),
        "pyroute2": _package("pyroute2"), "typer": _package("typer"), "sh": _package("sh"),
        "mininet": _version_of("dpkg-query", "-W", "-f=${Version}", "mininet"),
        "containernetworking-plugins": _version_of("dpkg-query", "-W", "-f=${Version}",
                                                   "containernetworking-plugins"),
    }
