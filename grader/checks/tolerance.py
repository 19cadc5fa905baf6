"""The two numeric acceptance tests the checks share: a tolerance and a band.

``within`` is defined in :mod:`grader.checks.compare` (NumPy only, copied into the
students' self-check). Each check keeps its own documented defaults (``value``: atol 1e-6, rtol 0;
``function``: rtol/atol 0 when only the other is given; ``statistical``: atol 1e-9,
rtol 1e-6) and passes them here, so the test itself is written once.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from grader.checks.compare import BoolArray, within

__all__ = ["BAND_SLACK", "Band", "BoolArray", "band", "band_of_runs", "within"]

#: Slack on a band's edges, so a figure printed from the band's own bound is inside.
BAND_SLACK = 1e-12


@dataclass(frozen=True)
class Band:
    """``mean ± half``: where a reported figure of a training run must lie."""

    mean: float
    std: float
    half: float

    @property
    def low(self) -> float:
        """The band's lower edge."""
        return self.mean - self.half

    @property
    def high(self) -> float:
        """The band's upper edge."""
        return self.mean + self.half

    def contains(self, value: float) -> bool:
        """``value`` lies in the band (edges included, to rounding)."""
        return self.low - BAND_SLACK <= value <= self.high + BAND_SLACK


def band(mean: float, std: float, k: float, min_half_width: float = 0.0) -> Band:
    """``mean ± max(k·std, min_half_width)``: the reference's runs' spread, widened to
    ``min_half_width`` where a few runs happen to agree closely."""
    return Band(mean, std, max(k * std, min_half_width))


def band_of_runs(runs: Sequence[float], k: float, min_half_width: float = 0.0) -> Band:
    """The band of the reference's runs: their mean and sample standard deviation
    (``statistics.StatisticsError``, a ``ValueError``, for fewer than two runs)."""
    return band(statistics.fmean(runs), statistics.stdev(runs), k, min_half_width)
