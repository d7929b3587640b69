"""Statistics over a cell's seeds, shared by the grid's table.md and the analysis notebooks."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class SeedSpread:
    """One cell's metric over its seeds."""

    values: tuple[float, ...]  # one value per finished seed

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return statistics.mean(self.values) if self.values else math.nan

    @property
    def std(self) -> float:
        """Sample standard deviation over the seeds (0 with one seed)."""
        return statistics.stdev(self.values) if self.n > 1 else 0.0

    def text(self) -> str:
        """'-' (no seed), '64.4' (one seed) or '64.4 ± 3.1' (mean ± std)."""
        if not self.values:
            return "-"
        return f"{self.mean:.1f}" if self.n == 1 else f"{self.mean:.1f} ± {self.std:.1f}"


def seed_spread(values: Iterable[float]) -> SeedSpread:
    return SeedSpread(tuple(float(v) for v in values))
