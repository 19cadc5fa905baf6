"""``type: claim`` in band mode (``k``): a reported figure against the reference's own
re-trainings, mean ± max(k·std, min_half_width), with no per-student measure."""

from __future__ import annotations

import statistics
from typing import Any

import pytest
from pydantic import ValidationError

from grader.checks.claim import ClaimSpec, grade_claim
from grader.models import CheckResult
from tests.conftest import make_ctx

RUNS = [0.90, 0.92, 0.91, 0.93, 0.89]  # mean 0.91, sample std 0.0158
MEAN, STD = statistics.fmean(RUNS), statistics.stdev(RUNS)
EXPECTED = {"q_acc": {"runs": RUNS, "seeds": [0, 1, 2, 3, 4], "config": {"epochs": 3}}}


def band(**overrides: Any) -> ClaimSpec:
    raw: dict[str, Any] = {
        "id": "q_acc",
        "type": "claim",
        "claim": "q_acc",
        "quantity": "test accuracy",
        "k": 3,
        "points": 2,
    }
    raw.update(overrides)
    return ClaimSpec.model_validate(raw)


def grade(spec: ClaimSpec, expected: Any = EXPECTED, **answers: Any) -> CheckResult:
    return grade_claim(spec, make_ctx(answers, expected=expected))


def test_inside_the_band_passes_at_its_edges() -> None:
    for claimed in (MEAN, MEAN + 3 * STD, MEAN - 3 * STD, RUNS[0]):
        res = grade(band(), q_acc=claimed)
        assert (res.score, res.status) == (2, "pass"), res.message
    res = grade(band(), q_acc=0.9)
    assert res.details["band"] == pytest.approx([MEAN - 3 * STD, MEAN + 3 * STD])
    assert res.details["reference_runs"] == RUNS and res.details["seeds"] == [0, 1, 2, 3, 4]
    assert "inside the band" in res.message and "5 re-trainings" in res.message


def test_a_made_up_figure_fails() -> None:
    res = grade(band(), q_acc=MEAN + 3 * STD + 0.001)
    assert (res.score, res.status) == (0, "fail")
    assert "outside the band" in res.message
    assert grade(band(), q_acc=MEAN + 0.05).status == "fail"  # 5 points above


def test_k_and_min_half_width_set_the_width() -> None:
    assert grade(band(k=1), q_acc=MEAN + 2 * STD).status == "fail"
    assert grade(band(k=1, min_half_width=0.05), q_acc=MEAN + 0.04).status == "pass"
    same = {"q_acc": {"runs": [0.5] * 5}}  # identical runs: a zero-width band
    assert grade(band(), same, q_acc=0.5).status == "pass"
    assert grade(band(), same, q_acc=0.5001).status == "fail"


def test_percentages_strings_and_non_numbers() -> None:
    percent = grade(band(), q_acc=91.0)
    assert percent.status == "fail" and "percentage" in percent.message
    assert grade(band(), q_acc="0.91").status == "pass"
    words = grade(band(), q_acc="about ninety percent")
    assert words.status == "fail" and "not a number" in words.message
    assert grade(band(), q_acc=float("nan")).status == "fail"


def test_missing_or_crashed_claims() -> None:
    missing = grade_claim(band(), make_ctx({}, expected=EXPECTED))
    assert missing.status == "fail" and "q_acc" in missing.message
    crashed = grade_claim(
        band(),
        make_ctx(expected=EXPECTED, statuses={"q_acc": ("error", "cell 4 raised TypeError")}),
    )
    assert (crashed.score, crashed.status) == (0, "error")


def test_spec_validation() -> None:
    assert [r.name for r in band().requests()] == ["q_acc"]
    with pytest.raises(ValidationError, match="needs the claim"):
        band(claim=None)
    with pytest.raises(ValidationError, match="takes no measure"):
        band(measure="hw1.evaluate_accuracy")
    with pytest.raises(ValidationError, match="takes no answer, tolerance"):
        band(answer="weights", tolerance=0.01)
    with pytest.raises(ValidationError, match="k"):
        band(k=4)  # at most 3 standard deviations
    with pytest.raises(ValidationError, match="needs answer and measure, or k"):
        band(k=None, tolerance=0.01)
    with pytest.raises(ValidationError, match="min_half_width belongs to a band claim"):
        ClaimSpec.model_validate(
            {
                "id": "c",
                "type": "claim",
                "answer": "w",
                "measure": "hw1.evaluate_accuracy",
                "min": 0.9,
                "points": 1,
                "min_half_width": 0.1,
            }
        )
