from types import SimpleNamespace

import numpy as np
import pytest

from grader.checks.text import TextSpec
from grader.marks import calibrate
from grader.marks.calibrate import (
    _fit_predict,
    group_answers,
    marks_from_overrides,
    review_order,
    suggest,
)
from tests.marks.conftest import BagOfWords

SPEC = TextSpec.model_validate(
    {
        "id": "Q1d",
        "type": "text",
        "heading": "Q1d",
        "points": 3,
        "concepts": [
            {
                "name": "smoother",
                "points": 1.5,
                "any": ["smoother"],
                "means": ["full batch smoother"],
            },
            {"name": "noisy", "points": 1.5, "any": ["noisy"], "means": ["mini batch noisy"]},
        ],
    }
)


def unlike(n: int) -> np.ndarray:
    """Answer vectors that are nobody's neighbours (so only the regression speaks)."""
    return np.eye(n, dtype=np.float32)


def test_separable_toy_set_is_learned() -> None:
    # One feature decides the mark (0 or 3); the scheme's prior says 1.5 for all.
    rng = np.random.default_rng(0)
    x = np.c_[np.repeat([0.0, 1.0], 10), rng.normal(0, 0.01, 20)]
    truth = 3.0 * x[:, 0]
    vectors = unlike(20)
    marked = [0, 1, 2, 10, 11, 12]
    calibrate_alpha = calibrate._ALPHA
    try:
        calibrate._ALPHA = 1.0  # the toy set has 6 marks; the default prior is stronger
        pred, confidence = _fit_predict(x, np.full(20, 1.5), vectors, marked, truth[marked], 3.0)
    finally:
        calibrate._ALPHA = calibrate_alpha
    assert np.all(pred[:10] < 1.0) and np.all(pred[10:] > 2.0)
    assert confidence.shape == (20,)


def test_the_default_prior_moves_toward_the_marks() -> None:
    x = np.c_[np.repeat([0.0, 1.0], 10)]
    vectors = unlike(20)
    marked = [0, 1, 2, 10, 11, 12]
    pred, _ = _fit_predict(x, np.full(20, 1.5), vectors, marked, 3.0 * x[marked, 0], 3.0)
    assert pred[:10].mean() < 1.5 < pred[10:].mean()


ANSWERS = {
    "ann": "full batch smoother",
    "bob": "full batch smoother",
    "cat": "mini batch noisy",
    "dan": "full batch smoother mini batch noisy",
    "eve": "the weather is nice",
    "fay": "mini batch noisy",
}


def test_suggest_is_the_scheme_until_enough_marks(bag: BagOfWords) -> None:
    got = suggest(SPEC, ANSWERS, {"ann": 3.0}, encoder=bag)
    assert got["dan"].mark == 3 and got["eve"].mark == 0 and not got["dan"].calibrated
    assert got["ann"].instructor_mark == 3.0
    ev = {e.concept: e for e in got["dan"].evidence}
    assert ev["smoother"].found and ev["smoother"].via == "phrase" and ev["smoother"].sentence


def test_suggest_calibrates_from_min_marks(bag: BagOfWords) -> None:
    marks = {"ann": 3.0, "bob": 3.0, "cat": 1.0, "eve": 0.0, "fay": 1.0}
    got = suggest(SPEC, ANSWERS, marks, encoder=bag, min_marks=5)
    assert got["dan"].calibrated and 0 <= got["dan"].mark <= 3
    assert 0.0 <= got["dan"].confidence <= 1.0


def test_review_order_covers_kinds_of_answer_first(bag: BagOfWords) -> None:
    order = review_order(SPEC, ANSWERS, {"ann": 3.0}, encoder=bag)
    assert sorted(order) == ["bob", "cat", "dan", "eve", "fay"]
    # bob repeats ann's marked answer word for word: nothing to learn from it first.
    assert order[-1] == "bob" or order.index("bob") > order.index("cat")
    assert order.index("fay") > order.index("cat")  # the second of two alike comes later


def test_groups_gather_alike_answers(bag: BagOfWords) -> None:
    groups = group_answers(SPEC, ANSWERS, encoder=bag)
    assert ["ann", "bob"] in groups and ["cat", "fay"] in groups
    assert sorted(s for g in groups for s in g) == sorted(ANSWERS)


def test_marks_from_overrides_reads_only_that_check(tmp_path: pytest.TempPathFactory) -> None:
    path = tmp_path / "overrides.yaml"  # type: ignore[operator]
    path.write_text(
        "- {student: ann, check: Q1d, points: 2}\n- {student: bob, check: Q1c, points: 1}\n",
        encoding="utf-8",
    )
    assert marks_from_overrides(tmp_path, "Q1d") == {"ann": 2.0}  # type: ignore[arg-type]
    assert marks_from_overrides(tmp_path / "missing", "Q1d") == {}  # type: ignore[operator]


def test_answers_from_records_reads_the_found_answers() -> None:
    from grader.models import CheckResult, QuestionResult

    def record(student: str, details: dict[str, object] | None) -> SimpleNamespace:
        check = CheckResult("Q1d", "text", 0, 3, "manual", "", details=details)
        return SimpleNamespace(
            student=student, questions=(QuestionResult("q1", "Q1", 0, 3, (check,)),)
        )

    records = [
        record("ann", {"type": "text", "answer": "full batch smoother"}),
        record("bob", None),  # no heading found: no answer
    ]
    assert calibrate.answers_from_records(records, "Q1d") == {"ann": "full batch smoother"}  # type: ignore[arg-type]
