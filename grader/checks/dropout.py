"""The dropout gradings of ``function`` checks: inverted dropout judged by its statistics.

``grading: dropout_forward`` / ``dropout_backward`` (HW2) judge a student's dropout
instead of comparing it element by element with a reference, whose mask could never
match: in train mode the number of kept units must lie in an interval that a correct
function misses with probability below ``false_fail`` (exact binomial tails, split over
the cases; see :func:`kept_bounds`), kept units must equal ``x / p``; in test mode the
output must equal ``x``; the backward must equal ``dout`` times the mask and scale of
the student's own forward call.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from grader.checks.binomial import binomial_interval
from grader.checks.function_grading import (
    Case,
    Problem,
    compare_value,
    grading,
    kind_text,
    shape_text,
)
from grader.normalize import FloatArray, NotNumeric, to_array

if TYPE_CHECKING:
    from grader.checks.function import FunctionSpec


def kept_bounds(n: int, p: float, tail: float) -> tuple[int, int]:
    """The narrowest ``[low, high]`` with P(K < low) ≤ tail and P(K > high) ≤ tail for
    K ~ Binomial(n, p): the statistical check's exact interval, shared."""
    low, high, _ = binomial_interval(n, p, tail)
    return low, high


def _dropout_param(case: Mapping[str, Any]) -> tuple[FloatArray, float, str]:
    x = to_array(case["args"][0])
    param = case["args"][1]
    return x, float(param["p"]), str(param.get("mode", "train"))


def _forward_rules(spec: FunctionSpec) -> list[str]:
    return [
        "train mode: the kept fraction lies in the exact binomial interval for p "
        "(false_fail) and kept units equal x / p; test mode returns x"
    ]


@grading("dropout_forward", rules=_forward_rules)
def grade_dropout_forward(spec: FunctionSpec, one: Case) -> Problem | None:
    """Train mode: kept fraction within the binomial bound, kept units exactly x / p;
    test mode: the output is x. Each case gets an equal share of ``false_fail``, split
    between the interval's two tails."""
    case, res, name = one.data, one.result, one.name
    tail = spec.false_fail / (2 * max(1, one.n_cases))
    fn = spec.student_function
    if spec.check_inplace and res.mutated:
        return Problem(name, f"{fn} modified its input x in place: work on a copy")
    x, p, mode = _dropout_param(case)
    got = res.value[0] if type(res.value) is list and res.value else None
    if type(res.value) is not list:
        return Problem(name, f"{fn} should return a tuple (out, cache), got {kind_text(res.value)}")
    if mode != "train":
        return compare_value(spec, "out in test mode (it should be x unchanged)", x, got, name)
    try:
        out = to_array(got)
    except NotNumeric as exc:
        return Problem(name, f"out could not be read as numbers: {exc}")
    if out.shape != x.shape:
        return Problem(
            name,
            f"out has shape {shape_text(out.shape)} but should have x's shape "
            f"{shape_text(x.shape)}",
            error="shape",
        )
    kept = out != 0
    n, count = x.size, int(kept.sum())
    low, high = kept_bounds(n, p, tail)
    if not low <= count <= high:
        return Problem(
            name,
            f"out keeps {count / n:.3f} of the units with p = {p:g}; p is the probability of "
            f"KEEPING a unit, so about {p:g} should survive (accepted: {low / n:.3f} to "
            f"{high / n:.3f})",
            error=round(count / n, 6),
        )
    problem = compare_value(spec, "the kept units", x[kept] / p, out[kept], name)
    if problem is not None:
        ratio = float(np.median(out[kept] / x[kept])) if count else math.nan
        return Problem(
            name,
            f"kept units are not x / p (inverted dropout divides survivors by p = {p:g}, i.e. "
            f"multiplies by {1 / p:.3g}; yours are multiplied by {ratio:.3g})",
            error=problem.error,
        )
    return None


def _backward_rules(spec: FunctionSpec) -> list[str]:
    return [
        f"dx equals dout times the multiplier the student's own {spec.forward} "
        "applied to x (out / x), whatever its mask and scale"
    ]


def _backward_requires(spec: FunctionSpec) -> str | None:
    if spec.forward is None:
        return "grading: dropout_backward needs `forward:` (its dropout_forward)"
    return None


@grading("dropout_backward", rules=_backward_rules, requires=_backward_requires)
def grade_dropout_backward(spec: FunctionSpec, one: Case) -> Problem | None:
    """dx must be dout times the multiplier the student's own forward applied to x.

    The handout asks for "a working forward, not a correct one": a backward that reuses
    its forward's mask (``dx = dout * mask`` where ``out = x * mask``) is right whatever
    that mask's scale, so the truth is ``dout * out / x`` element by element (the cases
    have no exact zeros in x), not the handout's ``1 / p``.
    """
    case, res, name = one.data, one.result, one.name
    assert one.forward is not None  # a backward case's forward call gave a value
    forward = one.forward
    x, _, mode = _dropout_param(case)
    fw_out = forward.value[0] if type(forward.value) is list and forward.value else None
    try:
        out = to_array(fw_out)
    except NotNumeric:
        return Problem(name, f"the output of {spec.forward} could not be read", "fail")
    if out.shape != x.shape:
        return Problem(
            name, f"{spec.forward} returned out of the wrong shape, so no mask to compare", "fail"
        )
    if not np.all(np.isfinite(out)):
        return Problem(name, f"{spec.forward} returned inf or nan, so no mask to compare", "fail")
    dout = to_array(case["dout"])
    expected = dout * (out / x) if mode == "train" else dout
    return compare_value(
        spec,
        f"dx (it should be dout times what your {spec.forward} multiplied x by: its mask "
        "and scale)",
        expected,
        res.value,
        name,
    )
