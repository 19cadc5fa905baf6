"""Late penalties, computed by hand from the rubric's late: policy."""

from __future__ import annotations

from datetime import datetime

import pytest
from pydantic import ValidationError

from grader.late import LatePolicy, assess

DUE = "2026-09-15T23:59:00-04:00"


def policy(**kw: object) -> LatePolicy:
    return LatePolicy.model_validate({"due": DUE, "penalty_percent": 10, **kw})


def penalty(p: LatePolicy | None, at: str | None, *, mark: bool = False, ext: float = 0) -> float:
    late = assess(
        p,
        raw_score=80,
        max_score=100,
        submitted_at=at,
        time_source="metadata",
        late_mark=mark,
        extension_hours=ext,
    )
    assert late is not None
    return late.penalty


def test_per_started_day_with_grace_and_cap() -> None:
    p = policy(grace_minutes=15, cap_percent=25)
    assert penalty(p, "2026-09-16T00:10:00-04:00") == 0  # 11 min late: within grace
    assert penalty(p, "2026-09-16T00:20:00-04:00") == 10  # 6 min past grace: day 1
    assert penalty(p, "2026-09-17T00:20:00-04:00") == 20  # 1 day 6 min: day 2
    assert penalty(p, "2026-09-20T00:00:00-04:00") == 25  # day 5, capped at 25 %
    assert penalty(p, "2026-09-16T03:00:00Z") == 0  # 23:00 in New York: on time


def test_per_hour_and_extension() -> None:
    p = policy(per="hour", penalty_percent=2)
    assert penalty(p, "2026-09-16T02:30:00-04:00") == 6  # 2 h 31 min → 3 hours
    assert penalty(p, "2026-09-16T02:30:00-04:00", ext=48) == 0  # a roster extension


def test_cutoff_zeroes_but_never_below_zero() -> None:
    p = policy(cutoff="2026-09-18T23:59:00-04:00")
    assert penalty(p, "2026-09-19T00:00:00-04:00") == 80  # all of the 80 earned
    # due moved to 09-16 23:59: 2 days 1 min late = 3 started days, not cut off
    assert penalty(p, "2026-09-19T00:00:00-04:00", ext=24) == 30


def test_a_late_mark_without_a_time_costs_one_unit_and_is_flagged() -> None:
    late = assess(policy(), raw_score=80, max_score=100, submitted_at=None, time_source=None,
                  late_mark=True)  # fmt: skip
    assert late is not None and late.penalty == 10 and late.units_late == 1
    assert "without a time" in late.flags[0]


def test_a_late_mark_without_a_policy_is_recorded_not_charged() -> None:
    late = assess(None, raw_score=80, max_score=100, submitted_at=None, time_source=None,
                  late_mark=True)  # fmt: skip
    assert late is not None and late.penalty == 0 and late.lms_late_mark and late.due is None
    assert "no `late:` due time" in late.flags[0]
    nothing = assess(None, raw_score=80, max_score=100, submitted_at=None, time_source=None,
                     late_mark=False)  # fmt: skip
    assert nothing is None


def test_a_due_time_needs_a_time_zone() -> None:
    with pytest.raises(ValidationError, match="time zone"):
        LatePolicy.model_validate({"due": datetime(2026, 9, 15, 23, 59)})
    with pytest.raises(ValidationError, match="per"):
        LatePolicy.model_validate({"due": DUE, "per": "week"})
