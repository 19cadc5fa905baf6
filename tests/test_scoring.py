"""Scoring: points as stored everywhere, question sums, the total."""

from __future__ import annotations

import math

from grader.models import CheckResult
from grader.scoring import points, question_result, total


def check(score: float, top: float, cid: str = "c") -> CheckResult:
    return CheckResult(cid, "value", score, top, "partial", "m")


def test_points_are_rounded_to_two_decimals() -> None:
    assert points(1 / 3) == 0.33
    assert points(2.675) == 2.67  # binary 2.67499…: rounding is of the stored float
    assert points(0.1 + 0.2) == 0.3
    assert points(7) == 7.0 and isinstance(points(7), float)
    assert math.copysign(1.0, points(-0.0)) == 1.0  # a zero score is written 0.0, not -0.0


def test_a_question_is_the_sum_of_its_checks() -> None:
    checks = [check(1 / 3, 1, "a"), check(1 / 3, 1, "b"), check(1 / 3, 1.005, "c")]
    q = question_result("q1", "Title", checks)
    assert (q.id, q.title, q.checks) == ("q1", "Title", tuple(checks))
    assert q.score == 1.0  # the sum rounded once, not three rounded terms (0.99)
    assert q.max_score == 3.0
    empty = question_result("q0", "", [])
    assert (empty.score, empty.max_score, empty.checks) == (0.0, 0.0, ())


def test_the_total_is_the_sum_of_the_questions() -> None:
    q1 = question_result("q1", "", [check(0.1, 0.5), check(0.2, 0.5)])
    q2 = question_result("q2", "", [check(2.005, 3)])
    assert total([q1, q2]) == (points(0.3 + q2.score), 4.0)
    assert total([]) == (0.0, 0.0)
