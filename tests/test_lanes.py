"""The parallel lane keeps its promise: tests of one xdist_group run on one worker.

`./dev.sh test` relies on it (the benchmark's tests, dev.sh's, the CNI ids); a pytest or
pytest-xdist release that drops the grouping would let them run beside each other and fail
at random, so this runs a tiny suite of its own under ``-n 2 --dist loadgroup``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SUITE = '''
import os
import pytest

pytestmark = pytest.mark.xdist_group("together")


@pytest.mark.parametrize("i", range(8))
def test_where(i):
    with open(os.environ["WHERE_LOG"], "a") as log:
        log.write(os.environ["PYTEST_XDIST_WORKER"] + "\\n")
'''


def test_one_group_runs_on_one_worker(tmp_path: Path) -> None:
    (tmp_path / "test_grouped.py").write_text(SUITE)
    log = tmp_path / "where.log"
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2",
                           "--dist", "loadgroup", "--rootdir", str(tmp_path), str(tmp_path)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "WHERE_LOG": str(log)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    workers = log.read_text().split()
    assert len(workers) == 8 and len(set(workers)) == 1, workers
