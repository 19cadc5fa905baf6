"""Exact binomial tails (to floating point, in log space, NumPy only — no SciPy).

The statistical check (:mod:`grader.checks.statistical`) and the dropout gradings of
function checks (:mod:`grader.checks.dropout`) accept a count of zeros or of kept units
inside an interval that a correct function misses with a probability the rubric bounds.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import numpy.typing as npt


@lru_cache(maxsize=64)
def _log_factorials(n: int) -> npt.NDArray[np.float64]:
    return np.array([math.lgamma(k + 1.0) for k in range(n + 1)], dtype=np.float64)


@lru_cache(maxsize=256)
def _pmf(n: int, q: float) -> npt.NDArray[np.float64]:
    """P(K = k) for K ~ Binomial(n, q), k = 0..n (read-only)."""
    k = np.arange(n + 1, dtype=np.float64)
    if q <= 0.0 or q >= 1.0:
        pmf = np.zeros(n + 1)
        pmf[0 if q <= 0.0 else n] = 1.0
    else:
        lf = _log_factorials(n)
        logpmf = lf[n] - lf - lf[::-1] + k * math.log(q) + (n - k) * math.log1p(-q)
        pmf = np.exp(logpmf)
    pmf.setflags(write=False)
    return pmf


def binomial_interval(n: int, q: float, tail: float) -> tuple[int, int, float]:
    """The narrowest ``[low, high]`` with P(K < low) ≤ tail and P(K > high) ≤ tail for
    K ~ Binomial(n, q); returns ``(low, high, P(K ∉ [low, high]))``."""
    pmf = _pmf(n, q)
    below = np.cumsum(pmf)  # below[k] = P(K ≤ k)
    above = np.cumsum(pmf[::-1])[::-1] - pmf  # above[k] = P(K > k)
    low = int(np.count_nonzero(below <= tail))  # P(K < low) = below[low - 1] ≤ tail
    high = int(np.argmax(above <= tail))  # the first k with P(K > k) ≤ tail
    outside = (float(below[low - 1]) if low > 0 else 0.0) + float(above[high])
    return low, high, outside


def binomial_mass(n: int, q: float, low: int, high: int) -> float:
    """P(low ≤ K ≤ high) for K ~ Binomial(n, q)."""
    pmf = _pmf(n, q)
    return float(pmf[max(low, 0) : max(high + 1, 0)].sum())
