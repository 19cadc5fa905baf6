"""``type: claim`` — a result the student reports, re-measured by the grader.

The student's notebook leaves behind plain data (HW1: ``trained_variables``, a dict of
four weight arrays, and the ``test_accuracy`` it claims). The grader hands that data to a
*measure*, a function of the trusted reference code (``measure: hw1.evaluate_accuracy``
names ``evaluate_accuracy`` in ``reference/hw1.py``), which computes the figure itself in
the grader's process on data the student never saw scored (the held-out split). No
student code runs here: the measure receives arrays and validates them (shapes,
finiteness) before use, raising ``ValueError`` with a message for the student when they
cannot be used.

The check then compares:

* ``min`` / ``max``: the measured figure must reach a threshold (``trained_accuracy``);
* ``claim`` + ``tolerance``: the student's reported number must agree with the measured
  one (``claimed_accuracy``).

``options`` are passed to the measure as keyword arguments. HW4's hyper-parameter search
(the best trial re-trained by the reference trainer) is its own check type, ``search``.

Band mode (``k``, HW4-B): the student reports only a figure of a named training
configuration (a test loss, a test accuracy), nothing the grader could measure per
student. The reference re-trains that configuration over several seeds in its
``compute()`` (so once per reference hash and batch, never per student), giving the
check's expected value ``{"runs": [...], "seeds": [...], "config": {...}}``; the claim
must lie in ``mean ± max(k·std, min_half_width)`` of those runs (sample std), the band
the ``search`` check uses. A made-up figure falls outside.
"""

from __future__ import annotations

import importlib.util
import math
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from grader.checks.base import CheckContext, CheckSpec, Details, Real, register, result, unavailable
from grader.checks.tolerance import band_of_runs
from grader.models import AnswerRequest, CheckResult
from grader.normalize import NotNumeric, to_number

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


class ClaimSpec(CheckSpec):
    """A figure re-measured by a reference function, against a threshold or a claim."""

    type: Literal["claim"]
    answer: str | None = Field(default=None, min_length=1)
    """The name of the plain data the notebook leaves (trained weights, predictions) handed to
    the measure."""
    measure: str | None = Field(default=None, pattern=rf"^{_IDENT}\.{_IDENT}$")
    """The function that measures the figure from the answer, as <module>.<function> of the
    grader's reference/ folder (hw1.evaluate_accuracy: reference/hw1.py); it runs in the
    grader, never in the sandbox."""
    options: dict[str, Any] = Field(default_factory=dict)
    """Keyword arguments passed to the measure."""
    quantity: str = Field(default="score", min_length=1)
    """What the measured figure is, for messages (accuracy, loss)."""
    points: float = Field(ge=0)
    """Points when every condition set (min, max, claim) holds."""
    min: float | None = None
    """The measured figure must be at least this."""
    max: float | None = None
    """The measured figure must be at most this (a loss, an error)."""
    claim: str | None = None
    """The name of the number the student reports; it must agree with the measured figure
    within tolerance, or, in band mode, lie in the band."""
    tolerance: float | None = Field(default=None, ge=0)
    """How far the reported number may be from the measured one: |claim − measured| ≤
    tolerance."""
    # Band mode: the claim against the reference's own runs (expected value), no measure.
    k: float | None = Field(default=None, gt=0, le=3.0)
    """Band mode (no measure): the claim must lie in mean ± max(k·std, min_half_width) of the
    reference's own re-trainings, its expected value."""
    min_half_width: float = Field(default=0.0, ge=0)
    """Band mode: the band's smallest half-width."""

    @field_validator("measure")
    @classmethod
    def _measure_exists(cls, value: str | None) -> str | None:
        from grader.reference import REFERENCE_DIR

        if value is None:
            return value
        module = value.split(".")[0]
        if not (REFERENCE_DIR / f"{module}.py").is_file():
            raise ValueError(f"no reference module {module!r} (looked for reference/{module}.py)")
        return value

    @model_validator(mode="after")
    def _something_to_compare(self) -> ClaimSpec:
        if self.k is not None:
            if self.claim is None:
                raise ValueError("a band claim (k) needs the claim it checks")
            extra = [
                name
                for name in ("answer", "measure", "tolerance", "min", "max")
                if getattr(self, name) is not None
            ] + (["options"] if self.options else [])
            if extra:
                raise ValueError(
                    "a band claim (k) compares the claim with the reference's runs; it takes "
                    f"no {', '.join(extra)}"
                )
            return self
        if self.min_half_width:
            raise ValueError("min_half_width belongs to a band claim (k)")
        if self.answer is None or self.measure is None:
            raise ValueError("a claim check needs answer and measure, or k (a band claim)")
        if (self.claim is None) != (self.tolerance is None):
            raise ValueError("claim and tolerance go together: name the claim and its tolerance")
        if self.claim is None and self.min is None and self.max is None:
            raise ValueError("a claim check needs min, max, or claim with tolerance")
        return self

    def max_points(self, expected: Mapping[str, Any]) -> float:
        """All or nothing."""
        return self.points

    def requests(self) -> list[AnswerRequest]:
        """The measured answer (none in band mode), and the claimed number when there is one."""
        names = [n for n in (self.answer, self.claim) if n is not None]
        return [AnswerRequest(name=n) for n in names]


class ClaimDetails(Details):
    """The figure the grader measured and the one claimed, their difference and the
    tolerance; in band mode the claim, the reference's runs (their seeds and training
    configuration), their mean and sample std and the band."""

    measured: Real | None = None
    claimed: float | None = None
    difference: Real | None = None
    tolerance: float | None = None
    reference_runs: list[float] | None = None
    seeds: Any = None
    config: Any = None
    mean: float | None = None
    std: float | None = None
    band: list[float] | None = None


# ----------------------------------------------------------------------- the measures

_LOCK = threading.Lock()
_MODULES: dict[tuple[Path, int], ModuleType] = {}


def _reference_module(name: str) -> ModuleType:
    """``reference/<name>.py``, imported once per content version (trusted code)."""
    from grader.reference import REFERENCE_DIR

    path = REFERENCE_DIR / f"{name}.py"
    key = (path, path.stat().st_mtime_ns)
    with _LOCK:
        module = _MODULES.get(key)
        if module is None:
            spec = importlib.util.spec_from_file_location(f"grader_measure_{name}", path)
            if spec is None or spec.loader is None:
                raise ImportError(f"{path} cannot be imported")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            _MODULES[key] = module
    return module


def resolve_measure(dotted: str) -> Callable[..., Any]:
    """The reference function named ``module.function``."""
    module_name, function = dotted.split(".")
    fn = getattr(_reference_module(module_name), function, None)
    if not callable(fn):
        raise AttributeError(f"reference/{module_name}.py has no function {function}")
    return fn  # type: ignore[no-any-return]


# ------------------------------------------------------------------------- the check


def _fmt(value: float) -> str:
    return f"{value:.4f}".rstrip("0").rstrip(".") if math.isfinite(value) else str(value)


def _claimed_number(spec: ClaimSpec, ctx: CheckContext, name: str) -> float | CheckResult:
    """The finite number the student reports under ``name``, or the failing result."""
    missing = unavailable(spec, ctx, name, spec.points)
    if missing is not None:
        return missing
    raw = ctx.answers[name].value
    try:
        claimed = to_number(raw)
    except NotNumeric as exc:
        return result(spec, spec.points, 0, "fail", f"{name} is not a number: {exc}", got=raw)
    if not math.isfinite(claimed):
        return result(spec, spec.points, 0, "fail", f"{name} is {claimed}", got=claimed)
    return claimed


@register("claim", ClaimSpec, details=ClaimDetails)
def grade_claim(spec: ClaimSpec, ctx: CheckContext) -> CheckResult:
    """Re-measure the student's result in the grader and compare, all or nothing."""
    if spec.k is not None:
        return _grade_band(spec, ctx)
    assert spec.answer is not None and spec.measure is not None  # the spec's validator
    top = spec.points
    missing = unavailable(spec, ctx, spec.answer, top)
    if missing is not None:
        return missing
    claimed: float | None = None
    if spec.claim is not None:
        number = _claimed_number(spec, ctx, spec.claim)
        if isinstance(number, CheckResult):
            return number
        claimed = number
    try:
        measured = float(
            resolve_measure(spec.measure)(ctx.answers[spec.answer].value, **spec.options)
        )
    except ValueError as exc:  # the measure's way of saying the answer cannot be used
        return result(
            spec,
            top,
            0,
            "fail",
            f"the grader cannot measure the {spec.quantity} of {spec.answer}: {exc}",
        )
    details = ClaimDetails(measured=measured)
    if spec.min is not None and not measured >= spec.min:
        return result(
            spec,
            top,
            0,
            "fail",
            f"the grader measures a {spec.quantity} of {_fmt(measured)} for {spec.answer}, "
            f"below the required {_fmt(spec.min)}",
            expected={"min": spec.min},
            got=measured,
            details=details,
        )
    if spec.max is not None and not measured <= spec.max:
        return result(
            spec,
            top,
            0,
            "fail",
            f"the grader measures a {spec.quantity} of {_fmt(measured)} for {spec.answer}, "
            f"above the allowed {_fmt(spec.max)}",
            expected={"max": spec.max},
            got=measured,
            details=details,
        )
    if claimed is None:
        bound = f"at least {_fmt(spec.min)}" if spec.min is not None else ""
        if spec.max is not None:
            bound += (" and " if bound else "") + f"at most {_fmt(spec.max)}"
        return result(
            spec,
            top,
            top,
            "pass",
            f"the grader measures a {spec.quantity} of {_fmt(measured)} for {spec.answer} "
            f"({bound})",
            expected={"min": spec.min, "max": spec.max},
            got=measured,
            details=details,
        )
    assert spec.tolerance is not None and spec.claim is not None
    gap = abs(claimed - measured)
    details = ClaimDetails(
        measured=measured, claimed=claimed, difference=gap, tolerance=spec.tolerance
    )
    expected = {"measured": measured, "tolerance": spec.tolerance}
    if gap <= spec.tolerance + 1e-12:
        return result(
            spec,
            top,
            top,
            "pass",
            f"{spec.claim} = {_fmt(claimed)} agrees with the grader's {spec.quantity} of "
            f"{_fmt(measured)} (within {_fmt(spec.tolerance)})",
            expected=expected,
            got=claimed,
            details=details,
        )
    hint = ""
    if 1.0 < claimed <= 100.0 and abs(claimed / 100.0 - measured) <= spec.tolerance:
        hint = ": it looks like a percentage, give it as a fraction (0.95, not 95)"
    return result(
        spec,
        top,
        0,
        "fail",
        f"{spec.claim} = {_fmt(claimed)} but the grader measures a {spec.quantity} of "
        f"{_fmt(measured)} for {spec.answer} (allowed difference {_fmt(spec.tolerance)})" + hint,
        expected=expected,
        got=claimed,
        details=details,
    )


def _grade_band(spec: ClaimSpec, ctx: CheckContext) -> CheckResult:
    """The claim inside mean ± max(k·std, min_half_width) of the reference's runs."""
    assert spec.claim is not None and spec.k is not None  # the spec's validator
    top = spec.points
    claimed = _claimed_number(spec, ctx, spec.claim)
    if isinstance(claimed, CheckResult):
        return claimed
    ref = ctx.expected[spec.reference_key]
    runs = [float(r) for r in ref["runs"]]
    if len(runs) < 2:
        raise ValueError(f"{spec.reference_key}: a band needs at least two reference runs")
    found = band_of_runs(runs, spec.k, spec.min_half_width)
    mean, low, high = found.mean, found.low, found.high
    inside = found.contains(claimed)
    details = ClaimDetails(
        claimed=claimed,
        reference_runs=runs,
        seeds=ref.get("seeds"),
        config=ref.get("config"),
        mean=mean,
        std=found.std,
        band=[low, high],
    )
    message = (
        f"{spec.claim} = {_fmt(claimed)} is {'inside' if inside else 'outside'} the band "
        f"[{_fmt(low)}, {_fmt(high)}] of the {spec.quantity} over the reference's "
        f"{len(runs)} re-trainings (mean {_fmt(mean)} ± {spec.k:g}·std)"
    )
    if not inside and 1.0 < claimed <= 100.0 and low <= claimed / 100.0 <= high:
        message += ": it looks like a percentage, give it as a fraction (0.95, not 95)"
    return result(
        spec,
        top,
        top if inside else 0,
        "pass" if inside else "fail",
        message,
        expected={"band": [low, high], "mean": mean, "k": spec.k},
        got=claimed,
        details=details,
    )
