"""``type: claim``: the student's weights re-measured by the reference on the held-out
split, against a threshold and against the accuracy the student claims."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from grader.checks.claim import ClaimSpec, grade_claim, resolve_measure
from grader.models import CheckResult
from reference import hw1
from tests.conftest import make_ctx

Weights = dict[str, np.ndarray]


@pytest.fixture(scope="module")
def weights() -> Weights:
    """A two-layer net trained on the training rows only (mini-batch SGD, ~0.5 s)."""
    x_train, _, y_train, _ = hw1.digits_split()
    targets = np.eye(10)[y_train]
    rng = np.random.default_rng(0)
    w: Weights = {
        "layer_1_weights": rng.normal(0, np.sqrt(2 / 64), (64, 100)),
        "layer_1_bias": np.zeros(100),
        "layer_2_weights": rng.normal(0, 0.1, (100, 10)),
        "layer_2_bias": np.zeros(10),
    }
    for _ in range(20):
        order = rng.permutation(len(x_train))
        for start in range(0, len(order), 32):
            batch = order[start : start + 32]
            x = x_train[batch]
            z1 = x @ w["layer_1_weights"] + w["layer_1_bias"]
            h1 = np.maximum(z1, 0)
            dz2 = (hw1.forward_pass(w, x) - targets[batch]) / len(batch)
            dh1 = dz2 @ w["layer_2_weights"].T * (z1 > 0)
            w["layer_2_weights"] = w["layer_2_weights"] - 0.1 * h1.T @ dz2
            w["layer_2_bias"] = w["layer_2_bias"] - 0.1 * dz2.sum(axis=0)
            w["layer_1_weights"] = w["layer_1_weights"] - 0.1 * x.T @ dh1
            w["layer_1_bias"] = w["layer_1_bias"] - 0.1 * dh1.sum(axis=0)
    return w


def threshold(**overrides: Any) -> ClaimSpec:
    raw: dict[str, Any] = {
        "id": "trained_accuracy",
        "type": "claim",
        "answer": "trained_variables",
        "measure": "hw1.evaluate_accuracy",
        "quantity": "test accuracy",
        "min": 0.9,
        "points": 10,
    }
    raw.update(overrides)
    return ClaimSpec.model_validate(raw)


def claimed(**overrides: Any) -> ClaimSpec:
    raw: dict[str, Any] = {"id": "claimed_accuracy", "min": None, "claim": "test_accuracy"}
    raw["tolerance"] = 0.01
    raw.update(overrides)
    return threshold(**raw)


def grade(spec: ClaimSpec, **answers: Any) -> CheckResult:
    return grade_claim(spec, make_ctx(answers))


def measured(weights: Weights) -> float:
    """The figure the grader computes, independently of the reference's forward pass."""
    _, x_test, _, y_test = hw1.digits_split()
    h = np.maximum(x_test @ weights["layer_1_weights"] + weights["layer_1_bias"], 0)
    scores = h @ weights["layer_2_weights"] + weights["layer_2_bias"]
    return float(np.mean(scores.argmax(axis=1) == y_test))


def test_the_split_is_the_handouts() -> None:
    x_train, x_test, y_train, y_test = hw1.digits_split()
    assert x_train.shape == (1347, 64) and x_test.shape == (450, 64)
    assert x_test.max() <= 1.0 and len(y_train) == 1347 and len(y_test) == 450


def test_trained_weights_pass_the_threshold(weights: Weights) -> None:
    accuracy = measured(weights)
    assert accuracy > 0.93
    assert hw1.evaluate_accuracy(weights) == pytest.approx(accuracy)
    res = grade(threshold(), trained_variables=weights)
    assert (res.score, res.status) == (10, "pass")
    assert res.got == pytest.approx(accuracy)


def test_below_the_threshold_fails(weights: Weights) -> None:
    res = grade(threshold(min=0.99), trained_variables=weights)
    assert (res.score, res.status) == (0, "fail")
    assert "below the required 0.99" in res.message
    upper = grade(threshold(min=None, max=0.5), trained_variables=weights)
    assert upper.status == "fail" and "above the allowed 0.5" in upper.message


def test_claim_within_tolerance_passes_and_outside_fails(weights: Weights) -> None:
    accuracy = measured(weights)
    assert grade(claimed(), trained_variables=weights, test_accuracy=accuracy + 0.009).status == (
        "pass"
    )
    res = grade(claimed(), trained_variables=weights, test_accuracy=accuracy - 0.02)
    assert (res.score, res.status) == (0, "fail")
    assert res.details["difference"] == pytest.approx(0.02)
    percent = grade(claimed(), trained_variables=weights, test_accuracy=100 * accuracy)
    assert percent.status == "fail" and "percentage" in percent.message
    as_text = grade(claimed(), trained_variables=weights, test_accuracy=f"{accuracy:.4f}")
    assert as_text.status == "pass"  # a number written as a string is still a number
    words = grade(claimed(), trained_variables=weights, test_accuracy="about ninety percent")
    assert words.status == "fail" and "not a number" in words.message


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda w: {**w, "layer_1_weights": w["layer_1_weights"].T}, "looks transposed"),
        (lambda w: {**w, "layer_2_weights": w["layer_2_weights"].T}, "looks transposed"),
        (lambda w: {**w, "layer_1_bias": w["layer_1_bias"][:50]}, "layer_1_bias"),
        (lambda w: {**w, "layer_2_bias": np.zeros(9)}, "C = 10 classes"),
        (lambda w: {k: v for k, v in w.items() if k != "layer_2_bias"}, "no 'layer_2_bias'"),
        (lambda w: {**w, "layer_1_weights": w["layer_1_weights"] * np.nan}, "NaN or infinite"),
        (lambda w: {**w, "layer_2_bias": np.full(10, np.inf)}, "NaN or infinite"),
        (lambda w: list(w.values()), "should be a dict"),
        (lambda w: {**w, "layer_1_bias": "zeros"}, "not an array of numbers"),
    ],
)
def test_weights_that_do_not_fit_the_handout_fail_both_checks(
    weights: Weights, change: Any, words: str
) -> None:
    bad = change(weights)
    for spec in (threshold(), claimed()):
        res = grade(spec, trained_variables=bad, test_accuracy=0.95)
        assert (res.score, res.status) == (0, "fail")
        assert words in res.message
        assert "cannot measure" in res.message


def test_bias_as_a_row_is_accepted(weights: Weights) -> None:
    row = {**weights, "layer_1_bias": weights["layer_1_bias"][None, :]}
    assert grade(threshold(), trained_variables=row).status == "pass"


def test_missing_or_crashed_answers(weights: Weights) -> None:
    missing = grade_claim(threshold(), make_ctx({}))
    assert missing.status == "fail" and "trained_variables" in missing.message
    crashed = grade_claim(
        claimed(),
        make_ctx(
            {"test_accuracy": 0.9},
            statuses={"trained_variables": ("error", "assigned in cell 5, which raised")},
        ),
    )
    assert (crashed.status, crashed.message) == ("error", "assigned in cell 5, which raised")
    no_claim = grade_claim(claimed(), make_ctx({"trained_variables": weights}))
    assert no_claim.status == "fail" and "test_accuracy" in no_claim.message
    no_notebook = grade_claim(threshold(), make_ctx(problem="no notebook in the submission"))
    assert no_notebook.status == "fail" and "no notebook" in no_notebook.message


def test_spec_validation() -> None:
    with pytest.raises(ValidationError, match="claim and tolerance go together"):
        threshold(claim="test_accuracy")
    with pytest.raises(ValidationError, match="needs min, max, or claim"):
        threshold(min=None)
    with pytest.raises(ValidationError, match="no reference module 'hw9'"):
        threshold(measure="hw9.evaluate_accuracy")
    with pytest.raises(ValidationError, match="measure"):
        threshold(measure="evaluate_accuracy")  # module.function
    assert [r.name for r in claimed().requests()] == ["trained_variables", "test_accuracy"]
    assert [r.name for r in threshold().requests()] == ["trained_variables"]


def test_measure_is_the_reference_function_and_unknown_names_are_grader_errors() -> None:
    assert resolve_measure("hw1.evaluate_accuracy").__name__ == "evaluate_accuracy"
    with pytest.raises(AttributeError, match="no function nothing_here"):
        resolve_measure("hw1.nothing_here")


def test_options_reach_the_measure(weights: Weights) -> None:
    """A HW4-style measure takes keyword options from the rubric."""
    spec = threshold(measure="hw1.evaluate_accuracy", options={"unknown": 1})
    with pytest.raises(TypeError, match="unknown"):
        grade(spec, trained_variables=weights)
