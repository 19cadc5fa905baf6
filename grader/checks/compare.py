"""The numeric comparison of a returned value with the reference's, in NumPy alone.

Grading imports it (:mod:`grader.checks.tolerance`, :mod:`grader.checks.function_grading`)
and ``grade assign`` copies this file's source text into the students' self-check
script (:mod:`grader.authoring.assign`), so a public case passes the self-check exactly
when it would pass grading. Hence the rules of this module: it imports nothing but the
standard library and NumPy, and its only ``from __future__`` import is the first line
of code (the self-check script places its own).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

BoolArray = npt.NDArray[np.bool_]
Floats = npt.NDArray[np.float64]

#: A function check's relative-error limit when the rubric gives no tolerance.
DEFAULT_REL_ERROR = 1e-6


def within(got: Any, expected: Any, *, atol: float, rtol: float) -> BoolArray:
    """Elementwise ``|got − expected| ≤ atol + rtol·|expected|``, and ``got`` finite.

    A non-finite ``got`` never passes, whatever the tolerance (inf − inf is nan, and a
    nan compares false, but an infinite tolerance would otherwise accept it).
    """
    got = np.asarray(got)
    expected = np.asarray(expected)
    with np.errstate(invalid="ignore", over="ignore"):
        close = np.abs(got - expected) <= atol + rtol * np.abs(expected)
    return np.asarray(close & np.isfinite(got), dtype=np.bool_)


def rel_error(expected: Floats, got: Floats) -> float:
    """The handout's relative error: max over elements of |a − b| / max(1e-8, |a| + |b|)."""
    if expected.size == 0:
        return 0.0
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.abs(got - expected) / np.maximum(1e-8, np.abs(got) + np.abs(expected))
    if not np.all(np.isfinite(got)):
        return math.inf
    return float(np.max(err))


def squeezed(shape: tuple[int, ...]) -> tuple[int, ...]:
    """A shape without its size-1 axes."""
    return tuple(s for s in shape if s != 1)


@dataclass(frozen=True)
class Tolerance:
    """A function check's tolerance: ``rel_error``, or ``rtol``/``atol`` (a missing one
    being 0), and whether size-1 axes may be added or dropped."""

    rel_error: float | None = None
    rtol: float | None = None
    atol: float | None = None
    squeeze_size1: bool = False

    @property
    def absolute(self) -> bool:
        """Judged by rtol/atol (the error shown is max |a − b|), not by relative error."""
        return self.rtol is not None or self.atol is not None


@dataclass(frozen=True)
class Comparison:
    """The verdict on one numeric output. ``reason`` is None when it is right, else
    ``"shape"`` (``got_shape`` differs from ``expected_shape``), ``"not finite"`` or
    ``"differs"`` (``error`` is its size: relative error, or max |a − b|)."""

    reason: str | None
    error: float = 0.0
    got_shape: tuple[int, ...] = ()
    expected_shape: tuple[int, ...] = ()
    got: Floats | None = None  # the answer, reshaped as compared

    @property
    def ok(self) -> bool:
        """The output is right."""
        return self.reason is None


def close(tol: Tolerance, expected: Floats, got: Floats) -> tuple[bool, float]:
    """(within tolerance, the error shown) for arrays of the same shape."""
    if tol.absolute:
        rtol, atol = tol.rtol or 0.0, tol.atol if tol.atol is not None else 0.0
        if not np.all(np.isfinite(got)):
            return False, math.inf
        ok = bool(np.all(within(got, expected, atol=atol, rtol=rtol)))
        diff = np.abs(got - expected)
        return ok, float(diff.max()) if diff.size else 0.0
    limit = tol.rel_error if tol.rel_error is not None else DEFAULT_REL_ERROR
    err = rel_error(expected, got)
    return err <= limit, err


def compare_arrays(tol: Tolerance, expected: Floats, got: Floats) -> Comparison:
    """Compare a float64 answer with the reference's: shape (a single number may come
    as any size-1 array; size-1 axes only where ``squeeze_size1``), finiteness, values."""
    arr = got
    if arr.shape != expected.shape:
        if expected.ndim == 0 and arr.size == 1:
            arr = arr.reshape(())
        elif tol.squeeze_size1 and squeezed(arr.shape) == squeezed(expected.shape):
            arr = arr.reshape(expected.shape)
        else:
            return Comparison("shape", got_shape=arr.shape, expected_shape=expected.shape)
    if not np.all(np.isfinite(arr)):
        return Comparison("not finite", math.inf, arr.shape, expected.shape, arr)
    ok, err = close(tol, expected, arr)
    return Comparison(None if ok else "differs", err, arr.shape, expected.shape, arr)
