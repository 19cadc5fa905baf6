"""``type: statistical``: the derived bounds, the usual mistakes, and an empirical check
of the false-fail rate with a correct dropout run in-process under thousands of seeds."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError
from scipy.stats import binom

from grader.checks.binomial import binomial_interval
from grader.checks.statistical import StatisticalSpec, describe, evaluate, grade_statistical
from grader.checks.statistical_design import Planned, bounds, mistakes, plan
from grader.models import CallResult, ExecutionReport
from grader.rubric import load_rubric
from tests.conftest import make_ctx

Dropout = Callable[..., Any]


def make_spec(**overrides: Any) -> StatisticalSpec:
    raw: dict[str, Any] = {
        "id": "dropout",
        "type": "statistical",
        "function": "dropout",
        "points": 10,
        "rates": [0.2, 0.7],
        "identity": [{"p": 0.0}],
    }
    raw.update(overrides)
    return StatisticalSpec.model_validate(raw)


def hw1_spec() -> StatisticalSpec:
    """The dropout check exactly as rubrics/hw1.yaml states it."""
    spec = next(c for c in load_rubric("hw1").checks() if c.id == "dropout")
    assert isinstance(spec, StatisticalSpec)
    return spec


# --- dropouts, as students write them ----------------------------------------------------


def correct(p: float, h1: np.ndarray) -> np.ndarray:
    return h1 * (np.random.rand(*h1.shape) >= p) / (1 - p)


def one_over_p(p: float, h1: np.ndarray) -> np.ndarray:
    return h1 * (np.random.rand(*h1.shape) < 1 - p) / p


def not_scaled(p: float, h1: np.ndarray) -> np.ndarray:
    return h1 * (np.random.rand(*h1.shape) >= p)


def binomial_mask(p: float, h1: np.ndarray) -> np.ndarray:  # keeps with probability p
    return h1 * np.random.binomial(1, p, size=h1.shape) / (1 - p)


def in_place(p: float, h1: np.ndarray) -> np.ndarray:
    h1 *= np.random.rand(*h1.shape) >= p
    h1 /= 1 - p
    return h1


def zeros_at_p0(p: float, h1: np.ndarray) -> np.ndarray:
    if p == 0:
        return np.zeros_like(h1)
    return correct(p, h1)


def fixed_seed(p: float, h1: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(0)
    return h1 * (rng.random(h1.shape) >= p) / (1 - p)


def flattened(p: float, h1: np.ndarray) -> np.ndarray:
    return correct(p, h1).ravel()


def raises(p: float, h1: np.ndarray) -> np.ndarray:
    raise ValueError("p must be a tensor")


def dropout_forward(x: np.ndarray, param: dict[str, Any]) -> tuple[np.ndarray, Any]:
    """HW2's CS231n-style contract: p = probability of KEEPING, survivors divided by p."""
    if param["mode"] == "test":
        return x, None
    mask = (np.random.rand(*x.shape) < param["p"]) / param["p"]
    return x * mask, mask


def run_calls(planned: Sequence[Planned], fn: Dropout, salt: int = 0) -> dict[str, CallResult]:
    """What the worker does, in-process: seed, call on a copy, report in-place changes."""
    results: dict[str, CallResult] = {}
    for item in planned:
        call = item.call
        args = [a.copy() if isinstance(a, np.ndarray) else a for a in call.args]
        before = [a.copy() if isinstance(a, np.ndarray) else None for a in args]
        assert call.seed is not None
        np.random.seed((call.seed + 7919 * salt) % 2**32)
        try:
            value = fn(*args, **call.kwargs)
        except Exception as exc:
            results[call.id] = CallResult(call.id, "error", message=f"raised {exc!r}")
            continue
        if isinstance(value, tuple):
            value = [np.asarray(v) if isinstance(v, np.ndarray) else v for v in value]
        mutated = tuple(
            i
            for i, (old, new) in enumerate(zip(before, args, strict=True))
            if old is not None and not np.array_equal(old, new)
        )
        results[call.id] = CallResult(call.id, "ok", value=value, mutated=mutated)
    return results


def run_lean(planned: Sequence[Planned], fn: Dropout, salt: int) -> dict[str, CallResult]:
    """``run_calls`` without the copies and the in-place comparison (for many runs of a
    function that does not modify its input): the same seeds, the same outputs."""
    results: dict[str, CallResult] = {}
    for item in planned:
        call = item.call
        assert call.seed is not None
        np.random.seed((call.seed + 7919 * salt) % 2**32)
        results[call.id] = CallResult(call.id, "ok", value=fn(*call.args))
    return results


def grade(spec: StatisticalSpec, fn: Dropout) -> Any:
    ctx = dataclasses.replace(make_ctx(), calls=run_calls(plan(spec), fn))
    return grade_statistical(spec, ctx)


# --- the bounds ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "q", "tail"), [(20000, 0.2, 2.5e-7), (20000, 0.7, 2.5e-7), (500, 0.35, 1e-3)]
)
def test_interval_is_the_narrowest_with_exact_tails(n: int, q: float, tail: float) -> None:
    low, high, outside = binomial_interval(n, q, tail)
    assert binom.cdf(low - 1, n, q) <= tail < binom.cdf(low, n, q)
    assert binom.sf(high, n, q) <= tail < binom.sf(high - 1, n, q)
    expected = binom.cdf(low - 1, n, q) + binom.sf(high, n, q)
    assert outside == pytest.approx(expected, rel=1e-8)


def test_hw1_design_fails_a_correct_dropout_below_1e6_and_the_mistakes_above_1_minus_1e6() -> None:
    spec = hw1_spec()
    assert spec.false_fail == 1e-6
    design = bounds(spec)
    assert design.false_fail < 1e-6
    # at 0.2 and 0.7, the intervals are about ±1.4 and ±1.6 points around the rate
    (r02, r07) = design.rates
    assert (r02.n, r02.low, r02.high) == (20000, 3718, 4287)
    assert (r07.n, r07.low, r07.high) == (20000, 13673, 14324)
    found = {m.name: m.pass_probability for m in mistakes(spec)}
    assert set(found) == {
        "p read as the probability to keep a unit",
        "survivors scaled by 1/p instead of 1/(1−p)",
        "survivors not scaled",
    }
    for probability in found.values():
        assert probability < 1e-6  # each mistake fails with probability > 1 − 1e-6
    # the same figure for "p read as keep", independently with SciPy
    keep_read = 1.0
    for rate in design.rates:
        q = 1 - rate.zero_probability
        keep_read *= binom.cdf(rate.high, rate.n, q) - binom.cdf(rate.low - 1, rate.n, q)
    assert keep_read < 1e-6


def test_design_that_cannot_tell_the_mistakes_apart_is_refused() -> None:
    with pytest.raises(ValidationError, match="keep a unit' would pass with probability 1 "):
        make_spec(rates=[0.5])  # at 0.5, keep = drop (and 1/p = 1/(1-p))
    at_half = make_spec().model_copy(update={"rates": [0.5]})  # skips the validator
    assert {m.name: m.pass_probability for m in mistakes(at_half)} == {
        "p read as the probability to keep a unit": pytest.approx(1.0),
        "survivors scaled by 1/p instead of 1/(1−p)": 1.0,
        "survivors not scaled": pytest.approx(0.0),
    }
    with pytest.raises(ValidationError, match="draw more values"):
        make_spec(rates=[0.45], draws=1, shape=[20])
    with pytest.raises(ValidationError, match="strictly between 0 and 1"):
        make_spec(rates=[0.0, 0.3])
    with pytest.raises(ValidationError, match=r"\$x"):
        make_spec(args=["$p", "h1"])


def test_calls_have_distinct_seeds_and_inputs_without_zeros() -> None:
    spec = hw1_spec()
    planned = plan(spec)
    assert len(planned) == 2 * 10 + 1
    assert len({p.call.id for p in planned}) == len(planned)
    assert len({p.call.seed for p in planned}) == len(planned)
    assert all(np.all(np.abs(p.x) >= 0.5) for p in planned)
    assert planned[-1].call.args[0] == 0.0  # the identity case, p = 0
    # the arguments are copies: nothing the worker does can touch the grader's inputs
    assert planned[0].call.args[1] is not planned[0].x
    assert spec.compute_expected(np) == describe(spec)


# --- verdicts ------------------------------------------------------------------------------


def test_correct_dropout_passes() -> None:
    res = grade(hw1_spec(), correct)
    assert (res.score, res.status) == (10, "pass"), res.message
    assert [r["ok"] for r in res.details["rates"]] == [True, True]


@pytest.mark.parametrize(
    ("fn", "words"),
    [
        (one_over_p, "scaled by 1/p"),
        (not_scaled, "1 (no scaling)"),
        (binomial_mask, "KEEPING"),
        (in_place, "in place"),
        (zeros_at_p0, "unchanged"),
        (fixed_seed, "same units"),
        (flattened, "shape"),
    ],
)
@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")
def test_usual_mistakes_fail_with_a_message_naming_them(fn: Dropout, words: str) -> None:
    res = grade(hw1_spec(), fn)
    assert (res.score, res.status) == (0, "fail")
    assert words in res.message


def test_error_and_missing_function_and_module_problems() -> None:
    spec = hw1_spec()
    res = grade(spec, raises)
    assert res.status == "error" and "ValueError" in res.message
    missing = {
        p.call.id: CallResult(p.call.id, "missing_function", message="hw1.py has no dropout")
        for p in plan(spec)
    }
    res = grade_statistical(spec, dataclasses.replace(make_ctx(), calls=missing))
    assert (res.status, res.message) == ("fail", "hw1.py has no dropout")
    absent = dataclasses.replace(make_ctx(), module_problem="no hw1.py in the submission")
    assert grade_statistical(spec, absent).status == "fail"
    execution = ExecutionReport(None, 0, 0, (), (), False, False, None, (), 0.0, module="hw1.py")
    slow = dataclasses.replace(
        make_ctx(), execution=execution, module_problem="importing hw1.py took too long"
    )
    res = grade_statistical(spec, slow)
    assert res.status == "error" and "took too long" in res.message


def test_keep_semantics_of_hw2() -> None:
    spec = make_spec(
        function="dropout_forward",
        p_means="keep",
        rates=[0.3, 0.8],
        args=["$x", {"p": "$p", "mode": "train"}],
        output=0,
        identity=[{"p": 0.5, "args": ["$x", {"p": "$p", "mode": "test"}]}],
    )
    assert grade(spec, dropout_forward).status == "pass"

    def drop_semantics(x: np.ndarray, param: dict[str, Any]) -> tuple[np.ndarray, None]:
        return correct(param["p"], x) if param["mode"] == "train" else x, None

    res = grade(spec, drop_semantics)
    assert res.status == "fail" and "DROPPING" in res.message


# --- the empirical false-fail rate ------------------------------------------------------------


def test_empirical_false_fail_rate_of_a_correct_dropout() -> None:
    """3000 runs of a correct dropout (each with its own seeds) through the check's
    statistics, with the bound relaxed to 1e-3 so that failures are expected to occur
    (about 3): the count must stay under the level a 1e-3 rate exceeds with probability
    below 1e-6. The same runs under the rubric's 1e-6 bound must all pass, and a dropout
    whose rate is off by one point must fail far more often (the test has teeth)."""
    strict = hw1_spec()
    loose = strict.model_copy(update={"false_fail": 1e-3})
    planned = plan(loose)
    assert [(p.call.id, p.call.seed) for p in planned] == [
        (p.call.id, p.call.seed) for p in plan(strict)
    ]
    strict_bounds = bounds(strict).rates
    runs = 3000
    loose_failures = strict_failures = 0
    counts: list[list[int]] = []
    for salt in range(runs):
        verdict = evaluate(loose, planned, run_lean(planned, correct, salt))
        loose_failures += verdict.status != "pass"
        zeros = [r.zeros for r in verdict.details.rates or []]
        counts.append(zeros)
        strict_failures += any(
            not b.low <= z <= b.high for b, z in zip(strict_bounds, zeros, strict=True)
        )
    ceiling = int(binom.isf(1e-6, runs, 1e-3))
    assert loose_failures <= ceiling, (loose_failures, ceiling)
    assert strict_failures == 0
    # the seeded draws behave like the binomial model the bound assumes
    spread = np.asarray(counts, dtype=np.float64).std(axis=0)
    model = [np.sqrt(b.n * b.zero_probability * (1 - b.zero_probability)) for b in strict_bounds]
    assert spread == pytest.approx(model, rel=0.1)

    def biased(p: float, h1: np.ndarray) -> np.ndarray:  # drops with p + 0.01
        return correct(min(p + 0.01, 1.0) if p else 0.0, h1) * (1 - min(p + 0.01, 1)) / (1 - p)

    biased_runs = 100
    biased_failures = sum(
        evaluate(loose, planned, run_lean(planned, biased, salt)).status != "pass"
        for salt in range(biased_runs)
    )
    assert biased_failures > biased_runs // 2


def test_in_place_costs_nothing_unless_the_rubric_declares_it() -> None:
    """A check enforces only what its handout states: ``check_inplace`` defaults to off."""
    lenient = hw1_spec().model_copy(update={"check_inplace": False})
    assert grade(lenient, in_place).status == "pass"
    assert not any("in place" in rule for rule in lenient.rules())
    assert any("in place" in rule for rule in hw1_spec().rules())
