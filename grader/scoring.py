"""Pure arithmetic from check results to question and total points."""

from __future__ import annotations

from collections.abc import Sequence

from grader.models import CheckResult, QuestionResult


def points(value: float) -> float:
    """Points as stored everywhere: rounded to 2 decimals."""
    return round(value + 0.0, 2)


def question_result(qid: str, title: str, checks: Sequence[CheckResult]) -> QuestionResult:
    """A question's score is the sum of its checks' scores."""
    return QuestionResult(
        id=qid,
        title=title,
        score=points(sum(c.score for c in checks)),
        max_score=points(sum(c.max_score for c in checks)),
        checks=tuple(checks),
    )


def total(questions: Sequence[QuestionResult]) -> tuple[float, float]:
    """(score, max_score) over all questions."""
    return (
        points(sum(q.score for q in questions)),
        points(sum(q.max_score for q in questions)),
    )
