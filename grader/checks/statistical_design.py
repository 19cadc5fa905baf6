"""What a ``statistical`` check asks of the student's function: the calls, and the
acceptance intervals derived from the rubric's ``false_fail`` bound.

Each rate gets an equal share of the bound, split between its two tails, so a correct
function fails with probability below ``false_fail`` (the union bound over rates and the
repeated-mask test). The same arithmetic gives the probability that each usual mistake
*passes* (:func:`mistakes`), which the spec's validator holds below ``false_fail``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from grader.checks.binomial import binomial_interval, binomial_mass
from grader.models import Call
from grader.normalize import FloatArray

if TYPE_CHECKING:  # the spec validates its design with this module
    from grader.checks.statistical import StatisticalSpec

P_TOKEN = "$p"
X_TOKEN = "$x"


# --------------------------------------------------------------------------------------
# The derived bounds and the usual mistakes' chances
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RateBound:
    """The accepted number of zeros among the ``n`` values drawn at one rate."""

    p: float  # the argument the function receives
    zero_probability: float  # under the handout's rule
    n: int
    low: int
    high: int
    false_fail: float  # exact P(zeros ∉ [low, high]) for a correct function


@dataclass(frozen=True)
class Design:
    """Every rate's interval and the bound on a correct function's failure."""

    rates: tuple[RateBound, ...]
    repeat: float  # bound on P(two calls at one rate draw the same mask)
    false_fail: float  # bound on P(a correct function fails): Σ tails + repeat


@dataclass(frozen=True)
class Mistake:
    """A usual mistake and the probability that it passes the check anyway."""

    name: str
    pass_probability: float


def bounds(spec: StatisticalSpec) -> Design:
    """The acceptance intervals derived from ``spec.false_fail``."""
    per_call = math.prod(spec.shape)
    return _bounds(
        tuple(spec.rates), spec.values_per_rate, per_call, spec.draws, spec.p_means, spec.false_fail
    )


@lru_cache(maxsize=64)
def _bounds(
    rates: tuple[float, ...], n: int, per_call: int, draws: int, p_means: str, false_fail: float
) -> Design:
    repeat = 0.0
    for p in rates:
        q = p if p_means == "drop" else 1.0 - p
        # Two independent masks of `per_call` values coincide with probability
        # (q² + (1−q)²)^per_call; a union bound over the pairs of calls at this rate.
        same = (q * q + (1.0 - q) * (1.0 - q)) ** per_call
        repeat += draws * (draws - 1) / 2 * same
    share = max(false_fail - repeat, 0.0) / len(rates)
    found = []
    for p in rates:
        q = p if p_means == "drop" else 1.0 - p
        low, high, outside = binomial_interval(n, q, share / 2)
        found.append(RateBound(p, q, n, low, high, outside))
    total = sum(r.false_fail for r in found) + repeat
    return Design(tuple(found), repeat, total)


def mistakes(spec: StatisticalSpec) -> list[Mistake]:
    """The usual mistakes and their probability of passing this check's design.

    A mistake passes only if every rate's zero count lands in its interval and no
    kept value betrays a wrong scale (rates are independent, so probabilities multiply).
    """
    design = bounds(spec)
    read_other_way = 1.0
    no_survivor = 1.0  # every value zeroed: the only way a wrong scale goes unseen
    for rate in design.rates:
        read_other_way *= binomial_mass(rate.n, 1.0 - rate.zero_probability, rate.low, rate.high)
        no_survivor *= rate.zero_probability**rate.n
    other = "keep" if spec.p_means == "drop" else "drop"
    found = [Mistake(f"p read as the probability to {other} a unit", read_other_way)]
    if spec.scale == "inverted":
        wrong = "1/p" if spec.p_means == "drop" else "1/(1−p)"
        right = "1/(1−p)" if spec.p_means == "drop" else "1/p"
        distinct = any(
            not math.isclose(1.0 / r.p, 1.0 / (1.0 - r.p), rel_tol=10 * spec.rtol)
            for r in design.rates
        )
        found.append(
            Mistake(
                f"survivors scaled by {wrong} instead of {right}", no_survivor if distinct else 1
            )
        )
        found.append(Mistake("survivors not scaled", no_survivor))
    else:
        found.append(Mistake("survivors scaled although the rule keeps them", no_survivor))
    return found


# --------------------------------------------------------------------------------------
# The calls
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Planned:
    """A call and what the grader knows about it."""

    call: Call
    kind: Literal["rate", "identity"]
    p: float
    x: FloatArray
    x_position: int


def contains(template: Any, token: str) -> bool:
    """``token`` occurs in a call template (nested lists and dicts included)."""
    if isinstance(template, str):
        return template == token
    if isinstance(template, list | tuple):
        return any(contains(t, token) for t in template)
    if isinstance(template, dict):
        return any(contains(t, token) for t in template.values())
    return False


def x_position(args: Sequence[Any]) -> int | None:
    """The position of the input ``$x`` among positional arguments, if it is there once."""
    positions = [i for i, a in enumerate(args) if a == X_TOKEN]
    return positions[0] if len(positions) == 1 else None


def _fill(template: Any, p: float, x: FloatArray) -> Any:
    if isinstance(template, str):
        if template == P_TOKEN:
            return p
        if template == X_TOKEN:
            return x.copy()
        return template
    if isinstance(template, list | tuple):
        return [_fill(t, p, x) for t in template]
    if isinstance(template, dict):
        return {k: _fill(v, p, x) for k, v in template.items()}
    return template


def inputs(spec: StatisticalSpec, count: int) -> list[FloatArray]:
    """``count`` inputs of ``spec.shape``: magnitudes in [0.5, 2], random signs, no zeros."""
    rng = np.random.default_rng(spec.seed)
    shape = (count, *spec.shape)
    magnitude = rng.uniform(0.5, 2.0, size=shape)
    sign = np.where(rng.random(shape) < 0.5, -1.0, 1.0)
    return list(magnitude * sign)


def call_seed(spec: StatisticalSpec, index: int) -> int:
    """A distinct seed per call, derived from the check's own seed."""
    return 1_000_003 * (spec.seed + 1) + index


def plan(spec: StatisticalSpec) -> list[Planned]:
    """Every call, in order: ``draws`` per rate, then the identity cases."""
    total = len(spec.rates) * spec.draws + len(spec.identity)
    xs = inputs(spec, total)
    planned: list[Planned] = []
    position = x_position(spec.args)
    assert position is not None  # the validator made sure
    for ri, p in enumerate(spec.rates):
        for d in range(spec.draws):
            i = ri * spec.draws + d
            planned.append(
                Planned(
                    Call(
                        id=f"{spec.id}/p={p:g}/{d}",
                        function=spec.function,
                        args=tuple(_fill(spec.args, p, xs[i])),
                        kwargs=_fill(spec.kwargs, p, xs[i]),
                        seed=call_seed(spec, i),
                    ),
                    "rate",
                    p,
                    xs[i],
                    position,
                )
            )
    for ci, case in enumerate(spec.identity):
        i = len(spec.rates) * spec.draws + ci
        args = case.args if case.args is not None else spec.args
        kwargs = case.kwargs if case.kwargs is not None else spec.kwargs
        where = x_position(args)
        assert where is not None
        planned.append(
            Planned(
                Call(
                    id=f"{spec.id}/identity/{ci}",
                    function=spec.function,
                    args=tuple(_fill(args, case.p, xs[i])),
                    kwargs=_fill(kwargs, case.p, xs[i]),
                    seed=call_seed(spec, i),
                ),
                "identity",
                case.p,
                xs[i],
                where,
            )
        )
    return planned
