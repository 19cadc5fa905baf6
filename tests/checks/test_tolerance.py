"""The shared tolerance and band tests."""

from __future__ import annotations

import math

import numpy as np
import pytest

from grader.checks.tolerance import band, band_of_runs, within


def test_within_is_atol_plus_rtol_times_expected() -> None:
    expected = np.array([1.0, 100.0])
    assert within(expected + 0.05, expected, atol=0.1, rtol=0.0).all()
    # 0.5 off: beyond atol alone, inside atol + 1 % of 100
    got = expected + 0.5
    assert within(got, expected, atol=0.1, rtol=0.01).tolist() == [False, True]


def test_within_never_accepts_a_non_finite_answer() -> None:
    got = np.array([math.inf, math.nan, 1.0])
    expected = np.array([math.inf, 1.0, 1.0])
    assert within(got, expected, atol=math.inf, rtol=0.0).tolist() == [False, False, True]


def test_band_is_k_std_widened_to_the_minimum_half_width() -> None:
    b = band(0.5, 0.01, 3.0)
    assert (b.low, b.high) == pytest.approx((0.47, 0.53))
    assert band(0.5, 0.001, 3.0, min_half_width=0.02).half == 0.02
    assert b.contains(b.high) and b.contains(b.low)
    assert not b.contains(0.5301)


def test_band_of_runs_uses_the_sample_std() -> None:
    b = band_of_runs([1.0, 2.0, 3.0], k=1.0)
    assert (b.mean, b.std) == (2.0, 1.0)
    with pytest.raises(ValueError):
        band_of_runs([1.0], k=1.0)
