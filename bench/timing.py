"""Samples, and the statistics the report shows: median, min and max.

A case measures its variants in rounds (:func:`interleave`): round 1 runs
every variant once, then round 2, and so on. A slow drift of the machine
(another job starting, the page cache warming) then hits every variant
alike, instead of whichever happened to run last. Each variant is a callable
that prepares what it needs, times only the work itself with a
:class:`Stopwatch`, cleans up, and returns the seconds measured.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Stats:
    """Durations in seconds, in the order they were measured."""

    samples: tuple[float, ...]

    @property
    def n(self) -> int:
        return len(self.samples)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def min(self) -> float:
        return min(self.samples)

    @property
    def max(self) -> float:
        return max(self.samples)

    def as_dict(self) -> dict[str, object]:
        ms = [round(s * 1000, 3) for s in self.samples]
        return {"n": self.n, "median_ms": round(self.median * 1000, 3), "min_ms": min(ms),
                "max_ms": max(ms), "samples_ms": ms}


class Stopwatch:
    """``with Stopwatch() as sw: work()`` then ``sw.seconds``; perf_counter is monotonic."""

    seconds: float = 0.0

    def __enter__(self) -> "Stopwatch":
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._start


Measure = Callable[[], float]


@dataclass
class Outcome:
    """What :func:`interleave` got for one variant: its samples, or why it stopped."""

    samples: list[float] = field(default_factory=list)
    error: str | None = None

    def stats(self) -> Stats | None:
        return Stats(tuple(self.samples)) if self.samples else None


def interleave(variants: Mapping[str, Measure], runs: int, warmup: int = 1,
               progress: Callable[[str], None] | None = None) -> dict[str, Outcome]:
    """Run each variant ``warmup`` times untimed, then ``runs`` rounds of one run each.

    A variant that raises is recorded with its error and left out of later
    rounds; the others go on. KeyboardInterrupt is not caught: the caller's
    cleanup must run.
    """
    outcomes = {name: Outcome() for name in variants}
    for round_ in range(-warmup, runs):
        for name, measure in variants.items():
            outcome = outcomes[name]
            if outcome.error:
                continue
            try:
                seconds = measure()
            except Exception as exc:  # noqa: BLE001 - reported in the row, the bench goes on
                outcome.error = f"{type(exc).__name__}: {exc}".strip()
                continue
            if round_ >= 0:
                outcome.samples.append(seconds)
        if progress and round_ >= 0:
            progress(f"round {round_ + 1}/{runs}")
    return outcomes
