"""``type: statistical`` — a randomised function (dropout) judged by its statistics.

The student's function (of their module, or defined by their notebook: ``source:``, as
for ``function`` checks) is called many times inside the sandbox, each call with
its own seed, on inputs the grader generates (no exact zeros, so a zero in the output
can only come from the mask). The outputs come back as plain arrays and every statistic
is computed here, in the grader:

* deterministic properties, which a correct function never violates: the output has the
  input's shape, is finite, the input is not modified in place (when the rubric sets
  ``check_inplace``, as HW1's handout asks), every output value is
  either 0 or the input times the rule's scale, the calls named under ``identity`` (HW1:
  ``p = 0``) return the input unchanged, and two calls do not drop exactly the same
  units (a generator reseeded with a constant inside the function);
* one random property per rate: the number of zeros among the ``n`` values drawn at that
  rate, which for a correct function is ``Binomial(n, q)`` with ``q`` the probability of
  dropping a unit. The accepted interval ``[low, high]`` is derived from the rubric's
  ``false_fail`` bound with exact binomial tails (log-space, NumPy only): each rate gets an
  equal share of the bound, split between its two tails, so a correct function fails
  with probability below ``false_fail`` (the union bound over rates and the repeated-mask
  test).

The same arithmetic gives the probability that each usual mistake *passes*
(:func:`grader.checks.statistical_design.mistakes`): ``p`` read the other way round
(keep for drop), survivors scaled by ``1/p`` instead of ``1/(1−p)``, no scaling at all.
The rubric loader refuses a design in which any of them passes with probability above
``false_fail``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from grader.checks.base import (
    CallingSpec,
    CheckContext,
    Details,
    StrictModel,
    register,
    result,
)
from grader.checks.statistical_design import (
    P_TOKEN,
    X_TOKEN,
    Planned,
    bounds,
    contains,
    mistakes,
    plan,
    x_position,
)
from grader.checks.tolerance import within
from grader.models import Call, CallResult, CheckResult
from grader.normalize import FloatArray, NotNumeric, to_array

_MAX_VALUES = 2_000_000  # values drawn per rate: keeps payloads and the tail sums small


# --------------------------------------------------------------------------------------
# The rubric's description
# --------------------------------------------------------------------------------------


class IdentityCase(StrictModel):
    """A call whose output must equal the input unchanged (``p = 0``; test mode)."""

    p: float = Field(ge=0, le=1)
    """The rate of this call (0: nothing dropped)."""
    args: list[Any] | None = None
    """Positional arguments of this call, if other than the check's (with $x for the input, $p
    for the rate), e.g. with mode test."""
    kwargs: dict[str, Any] | None = None
    """Keyword arguments of this call, if other than the check's."""


class StatisticalSpec(CallingSpec):
    """A dropout-like function: zero each value with some probability, scale survivors."""

    type: Literal["statistical"]
    function: str = Field(min_length=1, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    """The student's randomised function (dropout_forward)."""
    points: float = Field(ge=0)
    """Points when every property holds (all or nothing)."""
    p_means: Literal["drop", "keep"] = "drop"
    """What the function's p is the probability of: dropping a unit or keeping it."""
    scale: Literal["inverted", "none"] = "inverted"
    """What survivors are multiplied by: 1/P(keep) (inverted dropout) or nothing."""
    rates: list[float] = Field(min_length=1)
    """The values of p tried, each strictly between 0 and 1."""
    draws: int = Field(default=10, ge=1)
    """Calls per rate, each with its own seed."""
    shape: list[int] = Field(default_factory=lambda: [40, 50], min_length=1)
    """The shape of the grader-made input (no exact zeros in it)."""
    args: list[Any] = Field(default_factory=lambda: [P_TOKEN, X_TOKEN])
    """The call's positional arguments: $x stands for the input, $p for the rate; other values
    are passed as written."""
    kwargs: dict[str, Any] = Field(default_factory=dict)
    """The call's keyword arguments ($x and $p as in args)."""
    output: int | None = None
    """Which element of a returned tuple is the output (0 for (out, cache)); none: the return
    value itself."""
    identity: list[IdentityCase] = Field(default_factory=list)
    """Calls whose output must equal the input unchanged (p = 0, test mode)."""
    false_fail: float = Field(default=1e-6, gt=0, lt=0.5)
    """The largest probability that a correct function fails; the accepted intervals of zero
    counts are derived from it, and a design under which a usual mistake passes more often
    is refused."""
    rtol: float = Field(default=1e-6, ge=0)
    """Relative tolerance of kept values against input × scale."""
    atol: float = Field(default=1e-9, ge=0)
    """Absolute tolerance of kept values against input × scale."""
    seed: int = Field(default=0, ge=0)
    """Base seed of the inputs and of the calls."""
    # Off unless the handout forbids changing the input (HW1's dropout does).
    check_inplace: bool = False
    """The function must not modify its input: turn it on only where the handout says so."""

    def rules(self) -> list[str]:
        """What the calls must satisfy besides the zero rate, each from a rubric key."""
        keep = "1/(1 - p)" if self.p_means == "drop" else "1/p"
        found = [
            f"p is the probability of {'DROPPING' if self.p_means == 'drop' else 'KEEPING'} "
            f"a unit; the zero count at each rate lies in its exact binomial interval "
            f"(false_fail {self.false_fail:g})",
            "every output value is 0 or the input times "
            + (keep if self.scale == "inverted" else "1 (scale: none)"),
            "calls with different seeds do not drop exactly the same units",
        ]
        if self.identity:
            found.append("the identity calls (identity:) return the input unchanged")
        if self.check_inplace:
            found.append(f"{self.function} must not modify its input in place (check_inplace)")
        return found

    def max_points(self, expected: Mapping[str, Any]) -> float:
        """All or nothing."""
        return self.points

    def calls(self, expected: Mapping[str, Any]) -> list[Call]:
        """Every call of the student's function this check needs."""
        return [planned.call for planned in plan(self)]

    def compute_expected(self, reference: ModuleType) -> Any:
        """The rule and the derived intervals: everything comes from the rubric entry."""
        return describe(self)

    @model_validator(mode="after")
    def _sound_design(self) -> StatisticalSpec:
        if any(not 0.0 < r < 1.0 for r in self.rates):
            raise ValueError("rates: every rate must lie strictly between 0 and 1")
        if any(d <= 0 for d in self.shape):
            raise ValueError("shape: every dimension must be positive")
        if x_position(self.args) is None:
            raise ValueError(f"args: {X_TOKEN!r} must be one of the positional arguments")
        if not contains(self.args, P_TOKEN) and not contains(self.kwargs, P_TOKEN):
            raise ValueError(f"args/kwargs: {P_TOKEN!r} must appear in the call")
        for case in self.identity:
            if case.args is not None and x_position(case.args) is None:
                raise ValueError(f"identity: {X_TOKEN!r} must be a positional argument")
        if self.values_per_rate > _MAX_VALUES:
            raise ValueError(
                f"draws × shape gives {self.values_per_rate} values per rate "
                f"(at most {_MAX_VALUES})"
            )
        design = bounds(self)
        if design.false_fail > self.false_fail:
            raise ValueError(
                f"a correct function would fail with probability {design.false_fail:.2g} "
                f"> false_fail {self.false_fail:g}: draw more values"
            )
        for mistake in mistakes(self):
            if mistake.pass_probability > self.false_fail:
                raise ValueError(
                    f"the mistake '{mistake.name}' would pass with probability "
                    f"{mistake.pass_probability:.2g} > {self.false_fail:g}: draw more values "
                    "or use rates further from 0.5"
                )
        return self

    @property
    def values_per_rate(self) -> int:
        """Values drawn at each rate: ``draws`` calls of ``prod(shape)`` values."""
        return self.draws * math.prod(self.shape)

    def zero_probability(self, p: float) -> float:
        """The probability that a correct function zeroes a value, given its argument p."""
        return p if self.p_means == "drop" else 1.0 - p

    def scale_for(self, p: float) -> float:
        """The factor a correct function applies to the values it keeps."""
        return 1.0 / (1.0 - self.zero_probability(p)) if self.scale == "inverted" else 1.0

    def p_text(self) -> str:
        """What p means, in the handout's words."""
        return "DROPPING a unit" if self.p_means == "drop" else "KEEPING a unit"

    def scale_text(self) -> str:
        """The scale rule in words."""
        if self.scale == "none":
            return "survivors unchanged"
        return "survivors × 1/(1−p)" if self.p_means == "drop" else "survivors × 1/p"


# --------------------------------------------------------------------------------------
# Judging the outputs
# --------------------------------------------------------------------------------------


class RateVerdict(StrictModel):
    """The zeros counted at one rate against the interval a correct function lands in
    (``ok`` is None when an unusable output left the count incomplete)."""

    p: float
    values: int
    zeros: int
    zero_fraction: float
    expected_zero_fraction: float
    accepted: list[float]
    ok: bool | None


class StatisticalDetails(Details):
    """Every rate's zero count and the kinds of problem found (``inplace``, ``scale``,
    ``rate``, ``output``, ``identity``, ``repeat``); or the one call that decided the
    verdict (``call``, and the shape it returned)."""

    rates: list[RateVerdict] | None = None
    false_fail_bound: float | None = None
    problems: list[str] | None = None
    call: str | None = None
    got_shape: list[int] | None = None


@dataclass(frozen=True)
class Verdict:
    """The statistics' conclusion: status, message, details."""

    status: Literal["pass", "fail", "error"]
    message: str
    details: StatisticalDetails


def _call_text(spec: StatisticalSpec, planned: Planned) -> str:
    shape = "×".join(str(d) for d in planned.x.shape)
    return f"{spec.function}(p={planned.p:g}) on a {shape} input"


def _unusable(spec: StatisticalSpec, planned: Planned, got: CallResult | None) -> Verdict | None:
    """A verdict for a call that gave no usable value, or None."""
    if got is not None and got.status == "ok":
        return None
    where = _call_text(spec, planned)
    if got is None or got.status == "not_run":
        reason = got.message if got is not None and got.message else "it was not run"
        return Verdict(
            "error", f"{where} gave no result: {reason}", StatisticalDetails(call=planned.call.id)
        )
    if got.status == "missing_function":
        return Verdict(
            "fail",
            got.message or f"the module defines no function {spec.function}",
            StatisticalDetails(call=planned.call.id),
        )
    if got.status in ("error", "timeout"):
        what = "took too long" if got.status == "timeout" else "raised an error"
        detail = f": {got.message}" if got.message else ""
        return Verdict(
            "error",
            f"{where} {what}{detail}",
            StatisticalDetails(call=planned.call.id, traceback=got.traceback[-4000:]),
        )
    if got.status == "unsupported":
        return Verdict(
            "fail",
            got.message or f"{where} returned a value the grader cannot read: return an array",
            StatisticalDetails(call=planned.call.id),
        )
    return None


def _output(spec: StatisticalSpec, planned: Planned, got: CallResult) -> FloatArray | Verdict:
    value = got.value
    if spec.output is not None:
        if not isinstance(value, list | tuple) or len(value) <= spec.output:
            return Verdict(
                "fail",
                f"{_call_text(spec, planned)} should return a tuple whose element "
                f"{spec.output} is the output",
                StatisticalDetails(call=planned.call.id),
            )
        value = value[spec.output]
    try:
        out = to_array(value)
    except NotNumeric as exc:
        return Verdict(
            "fail",
            f"{_call_text(spec, planned)} did not return an array of numbers: {exc}",
            StatisticalDetails(call=planned.call.id),
        )
    if out.shape != planned.x.shape:
        return Verdict(
            "fail",
            f"{_call_text(spec, planned)} returned shape {out.shape}: the output must have "
            f"the input's shape {planned.x.shape}",
            StatisticalDetails(call=planned.call.id, got_shape=list(out.shape)),
        )
    if not np.all(np.isfinite(out)):
        return Verdict(
            "fail",
            f"{_call_text(spec, planned)} returned NaN or infinite values",
            StatisticalDetails(call=planned.call.id),
        )
    return out


def _scale_hint(spec: StatisticalSpec, p: float, ratios: FloatArray) -> str:
    """Name the scale the student seems to use, from the ratios output / input."""
    if ratios.size == 0:
        return ""
    typical = float(np.median(ratios))
    right = spec.scale_for(p)
    names = {
        "1/p": 1.0 / p,
        "1/(1−p)": 1.0 / (1.0 - p),
        "1 (no scaling)": 1.0,
        "p": p,
        "1−p": 1.0 - p,
    }
    for name, factor in names.items():
        if math.isclose(typical, factor, rel_tol=1e-6) and not math.isclose(
            factor, right, rel_tol=1e-9
        ):
            return f": the kept values look scaled by {name}"
    return f": the kept values are scaled by about {typical:.4g}"


def evaluate(
    spec: StatisticalSpec, planned: Sequence[Planned], results: Mapping[str, CallResult]
) -> Verdict:
    """Judge the outputs of every planned call; pure, so tests can run it many times.

    A call that raised, timed out or was not run decides at once (status ``error``).
    Otherwise every kind of problem found is reported, in this order: the input modified
    in place, kept values wrongly scaled, a zero rate outside its interval, an output that
    is not a finite array of the input's shape, an identity call that changed its input,
    masks repeated across calls.
    """
    design = bounds(spec)
    by_rate = {r.p: r for r in design.rates}
    zeros: dict[float, int] = {p: 0 for p in by_rate}
    masks: dict[float, set[bytes]] = {p: set() for p in by_rate}
    problems: dict[str, str] = {}  # kind → first message of that kind, in priority order
    repeated: list[float] = []
    unjudged: set[float] = set()  # rates with an unusable output: no zero count
    for item in planned:
        got = results.get(item.call.id)
        bad = _unusable(spec, item, got)
        if bad is not None:
            return bad
        assert got is not None
        out = _output(spec, item, got)
        if spec.check_inplace and item.x_position in got.mutated:
            problems.setdefault(
                "inplace",
                f"{_call_text(spec, item)} modified its input in place: work on a copy "
                "(h1 * mask makes a new array, h1 *= mask does not)",
            )
        if isinstance(out, Verdict):  # not an array of the input's shape, or not finite
            problems.setdefault("output", out.message)
            if item.kind == "rate":
                unjudged.add(item.p)
            continue
        if item.kind == "identity":
            same = within(out, item.x, atol=spec.atol, rtol=spec.rtol)
            changed = int(np.count_nonzero(~same))
            if changed:
                problems.setdefault(
                    "identity",
                    f"{_call_text(spec, item)} should return its input unchanged, but "
                    f"{changed} of "
                    f"{item.x.size} values differ",
                )
            continue
        scale = spec.scale_for(item.p)
        zero = within(out, 0.0, atol=spec.atol, rtol=0.0)
        kept = within(out, item.x * scale, atol=spec.atol, rtol=spec.rtol)
        other = ~(zero | kept)
        if np.any(other):
            problems.setdefault(
                "scale",
                f"{_call_text(spec, item)}: {int(other.sum())} of {item.x.size} values are "
                "neither 0 nor the "
                f"input × {scale:.6g} ({spec.scale_text()})"
                + _scale_hint(spec, item.p, (out / item.x)[other]),
            )
        zeros[item.p] += int(zero.sum())
        digest = hashlib.sha256(np.packbits(zero).tobytes()).digest()
        if digest in masks[item.p]:
            repeated.append(item.p)
        masks[item.p].add(digest)
    rates: list[RateVerdict] = []
    for p, bound in by_rate.items():
        fraction = zeros[p] / bound.n
        ok = bound.low <= zeros[p] <= bound.high
        rates.append(
            RateVerdict(
                p=p,
                values=bound.n,
                zeros=zeros[p],
                zero_fraction=round(fraction, 6),
                expected_zero_fraction=bound.zero_probability,
                accepted=[round(bound.low / bound.n, 6), round(bound.high / bound.n, 6)],
                ok=ok if p not in unjudged else None,
            )
        )
        if not ok and p not in unjudged and "rate" not in problems:
            hint = ""
            if abs(fraction - (1 - bound.zero_probability)) < abs(
                fraction - bound.zero_probability
            ):
                flipped = "KEEPING" if spec.p_means == "drop" else "DROPPING"
                hint = f": is p read as the probability of {flipped} a unit?"
            problems["rate"] = (
                f"at p = {p:g}, {fraction:.1%} of {bound.n} values were zeroed where p is the "
                f"probability of {spec.p_text()}, so about {bound.zero_probability:.0%} should "
                f"be (accepted {bound.low / bound.n:.2%}–{bound.high / bound.n:.2%})" + hint
            )
    if repeated:
        problems["repeat"] = (
            f"at p = {repeated[0]:g}, two calls with different seeds dropped exactly the same "
            f"units: {spec.function} must draw a new mask on every call (do not create the "
            "random generator with a fixed seed inside the function)"
        )
    details = StatisticalDetails(
        rates=rates,
        false_fail_bound=design.false_fail,
        problems=sorted(problems, key=_PRIORITY.index),
    )
    if problems:
        ordered = [problems[k] for k in _PRIORITY if k in problems]
        message = ordered[0] + "".join(f"; also, {m}" for m in ordered[1:])
        return Verdict("fail", message, details)
    shown = ", ".join(f"p = {r.p:g}: {r.zero_fraction:.1%} zeroed" for r in rates)
    return Verdict(
        "pass",
        f"{spec.function} drops values at the right rate and scales the rest correctly ({shown})",
        details,
    )


_PRIORITY = ("inplace", "scale", "rate", "output", "identity", "repeat")


def describe(spec: StatisticalSpec) -> dict[str, Any]:
    """The rule, the accepted zero fractions and the bounds, as shown in results."""
    design = bounds(spec)
    return {
        "rule": f"p is the probability of {spec.p_text()}; {spec.scale_text()}",
        "accepted_zero_fractions": {
            f"{r.p:g}": [round(r.low / r.n, 6), round(r.high / r.n, 6)] for r in design.rates
        },
        "values_per_rate": spec.values_per_rate,
        "false_fail_bound": design.false_fail,
    }


@register("statistical", StatisticalSpec, details=StatisticalDetails)
def grade_statistical(spec: StatisticalSpec, ctx: CheckContext) -> CheckResult:
    """Call the function many times and judge its statistics, all or nothing."""
    top = spec.points
    missing = spec.calls_unavailable(ctx, spec.function)
    if missing is not None:
        return missing
    verdict = evaluate(spec, plan(spec), spec.call_results(ctx))
    score = top if verdict.status == "pass" else 0.0
    status, message = verdict.status, verdict.message
    return result(
        spec, top, score, status, message, expected=describe(spec), details=verdict.details
    )
