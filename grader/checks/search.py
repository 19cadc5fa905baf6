"""``type: search`` — a hyper-parameter search, checked and its best trial re-trained.

The student reports the trials of a search (``answer``: a list of dicts, each holding
the hyper-parameters and the score, e.g. ``{"hidden_units": 64, "learning_rate": 0.01,
"val_accuracy": 0.968}``) and the best one (``best``: a dict of the same keys). The
reference module declares the space, the number of trials and a trainer; the function
named by ``search:`` (run in the grader when expected values are computed, so cached per
reference hash and done once per batch, never per student) trains the reference on every
configuration of the space over several seeds and returns, per configuration, the mean
and sample standard deviation of the score.

Four parts, each worth its own points:

* ``space``: every trial has exactly the space's hyper-parameters, each set to one of
  the declared values, and a finite score;
* ``trials``: there are exactly the declared number of trials;
* ``best``: ``best`` is a trial of the list whose score is the largest (the arg-max over
  every trial with a numeric score, inside the space or not);
* ``retrain``: ``best``'s configuration is in the space and its claimed score lies in
  the band ``mean ± max(k·std, min_half_width)`` of the reference's runs of that
  configuration.

No student code runs here: the trials are plain data harvested from the notebook.

**Keras Tuner.** ``answer`` and ``best`` may also be Keras Tuner objects, converted to plain
trials inside the student's kernel (:func:`grader.harness.keras_adapter.plain_tuner`): the
tuner itself (its oracle's trials, each ``{**hyper-parameters, <objective>: score}``; as
``best``, its oracle's best trial), a ``Trial``, or a ``HyperParameters`` (no score of its
own: the score of the trial of ``answer`` with the same values). The tuner's objective
must be the handout's score key (``val_accuracy``); the trials are judged as any others,
so a search whose trials call the handout's trainer is graded like a hand-written loop.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import ModuleType
from typing import Any, Literal

from pydantic import Field

from grader.checks.base import (
    CheckContext,
    CheckSpec,
    Details,
    StrictModel,
    register,
    result,
    status_for,
    unavailable,
)
from grader.checks.tolerance import band
from grader.models import AnswerRequest, CheckResult
from grader.normalize import NotNumeric, to_number, to_plain


class SearchPoints(StrictModel):
    """Points of each part."""

    space: float = Field(default=0, ge=0)
    """Points when every trial uses exactly the space's hyper-parameters, each at a declared
    value, with a finite score."""
    trials: float = Field(default=0, ge=0)
    """Points when there are exactly the declared number of trials."""
    best: float = Field(default=0, ge=0)
    """Points when the reported best is the trial with the largest score."""
    retrain: float = Field(default=0, ge=0)
    """Points when the best configuration's claimed score lies in the band of the reference's
    own re-trainings."""


class SearchSpec(CheckSpec):
    """Trials inside the space, their number, the arg-max, the best re-trained."""

    type: Literal["search"]
    answer: str = Field(min_length=1)
    """The name of the student's list of trials (dicts of hyper-parameters and score)."""
    best: str = Field(min_length=1)
    """The name of the trial the student reports as best (a dict of the same keys)."""
    search: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    """The reference function that declares the space, the number of trials and the score key,
    and re-trains every configuration over several seeds."""
    points: SearchPoints
    """Points of each of the four parts."""
    k: float = Field(default=3.0, gt=0, le=3.0)
    """Half-width of the re-training band in sample standard deviations: mean ± max(k·std,
    min_half_width)."""
    min_half_width: float = Field(default=0.0, ge=0)
    """The band's smallest half-width, for configurations whose runs barely differ."""

    def max_points(self, expected: Mapping[str, Any]) -> float:
        """The four parts."""
        p = self.points
        return p.space + p.trials + p.best + p.retrain

    def requests(self) -> list[AnswerRequest]:
        """The trials and the best trial."""
        return [AnswerRequest(name=self.answer), AnswerRequest(name=self.best)]

    def compute_expected(self, reference: ModuleType) -> Any:
        """The space, the number of trials and every configuration's reference runs."""
        fn = getattr(reference, self.search, None)
        if not callable(fn):
            raise ValueError(f"the reference module has no function {self.search!r}")
        out = fn()
        for key in ("space", "n_trials", "score_key", "configs"):
            if key not in out:
                raise ValueError(f"{self.search}() returned no {key!r}")
        return out


class SearchPart(StrictModel):
    """One part's verdict and the points it earned."""

    ok: bool
    points: float
    message: str


class Retrain(StrictModel):
    """The best trial's configuration against the reference's runs of it."""

    config: str
    claimed: float
    reference_runs: list[float]
    seeds: Any = None
    mean: float
    std: float
    band: list[float]


class SearchDetails(Details):
    """The four parts (``space``, ``trials``, ``best``, ``retrain``) and the re-training
    band, when the best trial's configuration is in the space."""

    parts: dict[str, SearchPart] = Field(default_factory=dict)
    retrain: Retrain | None = None


TUNER_KEY = "keras_tuner"  # grader.harness.keras_adapter.TUNER_KEY


def _tuner(value: Any) -> Mapping[str, Any] | None:
    """The converted Keras Tuner object inside ``value`` (``{"keras_tuner": {...}}``)."""
    if isinstance(value, Mapping) and set(value) == {TUNER_KEY}:
        inner = value[TUNER_KEY]
        return inner if isinstance(inner, Mapping) else None
    return None


def _unwrap(trials: Any, best: Any, space: Mapping[str, list[Any]]) -> tuple[Any, Any]:
    """Plain trials and best from Keras Tuner objects (see the module docstring)."""
    tuner = _tuner(trials)
    if tuner is not None:
        trials = tuner.get("trials")
    chosen = _tuner(best)
    if chosen is not None:
        if "hyperparameters" in chosen:
            values = chosen["hyperparameters"]
            best = values
            if isinstance(values, Mapping) and isinstance(trials, list | tuple):
                best = next(
                    (
                        t
                        for t in trials
                        if isinstance(t, Mapping)
                        and all(_same(t.get(n), values.get(n)) for n in space)
                    ),
                    values,
                )
        else:
            best = chosen.get("best")
    return trials, best


def _same(a: Any, b: Any) -> bool:
    """Hyper-parameter values compared as numbers when both are numbers."""
    try:
        return math.isclose(to_number(a), to_number(b), rel_tol=1e-9, abs_tol=1e-12)
    except NotNumeric:
        return bool(a == b)


def _key(space: Mapping[str, list[Any]], config: Mapping[str, Any]) -> str | None:
    """The reference's key of ``config`` (its declared values), or None outside the space."""
    parts = []
    for name, values in space.items():
        if name not in config:
            return None
        match = next((v for v in values if _same(config[name], v)), None)
        if match is None:
            return None
        parts.append(f"{name}={match!r}")
    return ",".join(parts)


def _trial_problem(
    trial: Any, index: int, space: Mapping[str, list[Any]], score_key: str
) -> str | None:
    if not isinstance(trial, Mapping):
        return f"trial {index + 1} is a {type(trial).__name__}, not a dict"
    extra = sorted(set(trial) - set(space) - {score_key})
    if extra:
        return f"trial {index + 1} has keys outside the space: {', '.join(map(str, extra))}"
    for name, values in space.items():
        if name not in trial:
            return f"trial {index + 1} has no {name!r}"
        if not any(_same(trial[name], v) for v in values):
            return (
                f"trial {index + 1} sets {name} = {trial[name]!r}, outside the declared "
                f"values {values}"
            )
    try:
        score = to_number(trial.get(score_key))
    except NotNumeric:
        return f"trial {index + 1} has no numeric {score_key!r}"
    if not math.isfinite(score):
        return f"trial {index + 1} has {score_key} = {score}"
    return None


def _score(trial: Any, score_key: str) -> float | None:
    """A trial's finite score (whether or not it is inside the space), else None."""
    if not isinstance(trial, Mapping):
        return None
    try:
        value = to_number(trial.get(score_key))
    except NotNumeric:
        return None
    return value if math.isfinite(value) else None


@register("search", SearchSpec, details=SearchDetails)
def grade_search(spec: SearchSpec, ctx: CheckContext) -> CheckResult:
    """Score the four parts independently."""
    top = spec.max_points(ctx.expected)
    for name in (spec.answer, spec.best):
        missing = unavailable(spec, ctx, name, top)
        if missing is not None:
            return missing
    ref = ctx.expected[spec.reference_key]
    space: dict[str, list[Any]] = ref["space"]
    score_key: str = ref["score_key"]
    n_trials = int(ref["n_trials"])
    trials, best = _unwrap(ctx.answers[spec.answer].value, ctx.answers[spec.best].value, space)
    got = {"trials": to_plain(trials), "best": to_plain(best)}
    if not isinstance(trials, list | tuple):
        return result(
            spec,
            top,
            0,
            "fail",
            f"{spec.answer} must be a list of dicts (hyper-parameters and {score_key})",
            got=got,
        )
    parts: dict[str, SearchPart] = {}
    problems: list[str] = []

    def part(name: str, ok: bool, message: str) -> None:
        points = getattr(spec.points, name) if ok else 0.0
        parts[name] = SearchPart(ok=ok, points=points, message=message)
        if not ok:
            problems.append(message)

    trial_problems = [
        p
        for p in (_trial_problem(t, i, space, score_key) for i, t in enumerate(trials))
        if p is not None
    ]
    part(
        "space",
        not trial_problems and bool(trials),
        trial_problems[0] if trial_problems else "every trial is inside the declared space",
    )
    part(
        "trials",
        len(trials) == n_trials,
        f"{len(trials)} trials (the handout asks for {n_trials})",
    )
    scores = [_score(t, score_key) for t in trials]
    best_ok = False
    best_message = f"{spec.best} must be a dict with the hyper-parameters and {score_key}"
    best_score: float | None = None
    if isinstance(best, Mapping):
        try:
            best_score = to_number(best.get(score_key))
        except NotNumeric:
            best_score = None
        same_as = [
            t
            for t in trials
            if isinstance(t, Mapping)
            and all(_same(t.get(n), best.get(n)) for n in [*space, score_key])
        ]
        usable = [v for v in scores if v is not None]
        if not usable or len(usable) != len(trials):
            best_message = "the arg-max cannot be checked: some trials have no numeric score"
        elif not same_as:
            best_message = f"{spec.best} is not one of the trials in {spec.answer}"
        elif best_score is not None and best_score < max(usable) - 1e-12:
            best_message = (
                f"{spec.best} has {score_key} = {best_score:g} but a trial reached "
                f"{max(usable):g}: the best trial is the one with the largest score"
            )
        else:
            best_ok = True
            best_message = f"{spec.best} is the trial with the largest {score_key}"
    part("best", best_ok, best_message)
    retrain: Retrain | None = None
    retrain_ok = False
    key = _key(space, best) if isinstance(best, Mapping) else None
    if key is None:
        retrain_message = f"{spec.best}'s configuration is not in the declared space"
    elif best_score is None or not math.isfinite(best_score):
        retrain_message = f"{spec.best} has no numeric {score_key}"
    else:
        runs = ref["configs"][key]
        found = band(float(runs["mean"]), float(runs["std"]), spec.k, spec.min_half_width)
        mean, low, high = found.mean, found.low, found.high
        retrain = Retrain(
            config=key,
            claimed=best_score,
            reference_runs=runs["runs"],
            seeds=ref.get("seeds"),
            mean=mean,
            std=found.std,
            band=[low, high],
        )
        retrain_ok = found.contains(best_score)
        where = "inside" if retrain_ok else "outside"
        retrain_message = (
            f"the claimed {score_key} {best_score:.4f} of {key} is {where} the band "
            f"[{low:.4f}, {high:.4f}] of the reference's {len(runs['runs'])} re-trainings "
            f"(mean {mean:.4f} ± {spec.k:g}·std)"
        )
    part("retrain", retrain_ok, retrain_message)
    score = sum(p.points for p in parts.values())
    status = status_for(score, top)
    message = (
        "the search is inside the space, complete, its best is the arg-max and re-trains "
        "to the claimed score"
        if status == "pass"
        else "; ".join(problems)
    )
    return result(
        spec,
        top,
        score,
        status,
        message,
        expected={"space": space, "n_trials": n_trials},
        got=got,
        details=SearchDetails(parts=parts, **({"retrain": retrain} if retrain else {})),
    )
