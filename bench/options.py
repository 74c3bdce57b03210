"""The benchmark's options, parsed once into one value every case reads."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

from .results import GROUPS

# Issue 8 names the row groups a to g; either spelling selects one.
LETTERS = dict(zip("abcdefg", GROUPS, strict=True))
REPO = Path(__file__).resolve().parent.parent
DEFAULT_SCRIPT = REPO.parent / "shared" / "seed" / "netsetter.sh"  # never copied into the project


@dataclass(frozen=True)
class Options:
    script: Path
    runs: int = 15
    warmup: int = 1
    containers: int = 100
    scale: tuple[int, ...] = (1, 100, 500, 1000)
    fleet: tuple[int, ...] = (100, 1000)
    fleet_runs: int = 3
    fleet_cli_max: int = 200
    fleet_backend: str = "netlink"
    fleet_memory_share: float = 0.6  # of MemAvailable, that one fleet may be expected to take
    cpu_window: float = 2.0
    groups: tuple[str, ...] = tuple(GROUPS)
    json_path: Path | None = None
    markdown_path: Path | None = None

    def as_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["script"] = str(self.script)
        data["json_path"] = str(self.json_path) if self.json_path else None
        data["markdown_path"] = str(self.markdown_path) if self.markdown_path else None
        return data


def parse_sizes(what: str, text: str) -> tuple[int, ...]:
    """``"1,100,500"`` -> (1, 100, 500), sorted, each a positive integer."""
    try:
        sizes = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise ValueError(f"{what} {text!r}: give positive integers separated by commas, as in 1,100,500") from None
    if not sizes or sizes[0] < 1:
        raise ValueError(f"{what} {text!r}: give positive integers separated by commas, as in 1,100,500")
    return tuple(sizes)


def parse_groups(only: str | None, skip: str | None) -> tuple[str, ...]:
    """The groups to run: all, or ``only`` those, minus ``skip`` (names or letters a-g)."""

    def names(text: str) -> set[str]:
        out = set()
        for part in (p.strip().lower() for p in text.split(",") if p.strip()):
            name = LETTERS.get(part, part)
            if name not in GROUPS:
                raise ValueError(f"unknown group {part!r}: choose from {', '.join(GROUPS)} (or a-g)")
            out.add(name)
        return out

    chosen = names(only) if only else set(GROUPS)
    if skip:
        chosen -= names(skip)
    return tuple(g for g in GROUPS if g in chosen)


def find_script(given: Path | None) -> Path:
    """--script, else $NETSETTER_SCRIPT, else the seed next to the repository."""
    path = given or (Path(os.environ["NETSETTER_SCRIPT"]) if os.environ.get("NETSETTER_SCRIPT") else DEFAULT_SCRIPT)
    if not path.is_file():
        raise ValueError(f"the original script is missing: {path} (give --script PATH or set $NETSETTER_SCRIPT)")
    return path.resolve()
