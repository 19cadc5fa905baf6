import numpy as np

from grader.checks.base import preview
from grader.checks.value import ValueSpec, grade_value
from tests.conftest import make_ctx


def test_preview_keeps_small_values() -> None:
    assert preview([[1, 2], [3, 4]]) == [[1, 2], [3, 4]]
    assert preview("7/4") == "7/4"


def test_preview_shortens_huge_answers() -> None:
    text = preview("x" * 10_000_000)
    assert len(text) < 2100 and text.endswith("(10,000,000 characters)")
    assert preview(np.zeros((1000, 1000))) == {"shape": [1000, 1000], "note": "too large to show"}
    assert preview([[0] * 100] * 100) == {"length": 100, "note": "too large to show"}


def test_huge_wrong_answer_result_stays_small() -> None:
    spec = ValueSpec.model_validate({"id": "a", "type": "value", "answer": "a", "points": 1})
    res = grade_value(spec, make_ctx({"a": np.ones((300, 300))}, {"a": np.ones((2, 2))}))
    assert res.score == 0 and res.got == {"shape": [300, 300], "note": "too large to show"}
