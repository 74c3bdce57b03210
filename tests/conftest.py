from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from .sandbox import ROOT, Sandbox

SCRIPT_ENV = "NETSETTER_SCRIPT"
DEFAULT_SCRIPT = ROOT.parent / "shared" / "seed" / "netsetter.sh"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--serial", choices=("all", "only", "none"), default="all",
                     help="tests marked serial: all (with the others), only them, or none of them; "
                          "./dev.sh test runs the others beside each other (-n), then these alone")


def pytest_configure(config: pytest.Config) -> None:
    if os.geteuid() != 0:
        raise pytest.UsageError("the tests build network namespaces on the real kernel: run them as root")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    lane = config.getoption("serial")
    if lane == "all":
        return
    want = lane == "only"
    kept = [item for item in items if (item.get_closest_marker("serial") is not None) == want]
    dropped = [item for item in items if (item.get_closest_marker("serial") is not None) != want]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture
def sandbox(request: pytest.FixtureRequest):
    """A factory of sandboxes, all removed when the test ends, pass or fail."""
    made: list[Sandbox] = []
    tag = re.sub(r"[^a-z0-9]", "", request.node.name.lower())

    def make() -> Sandbox:
        box = Sandbox(tag=tag)
        made.append(box)
        return box

    yield make
    for box in made:
        box.close()


@pytest.fixture(scope="session")
def original_script() -> Path:
    """The original netsetter.sh: never copied into the project, read where it lies."""
    path = Path(os.environ.get(SCRIPT_ENV) or DEFAULT_SCRIPT)
    if not path.is_file():
        pytest.fail(f"the original script is missing: {path} (set {SCRIPT_ENV} to its path)")
    return path
