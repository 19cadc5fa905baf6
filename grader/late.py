"""Late policy: the rubric's ``late:`` section, and the pure arithmetic of a penalty.

A rubric may say::

    late:
      due: 2026-09-15T23:59:00-04:00   # ISO 8601 with a time zone (required)
      grace_minutes: 15                # not late within this (default 0)
      penalty_percent: 10              # of the maximum, per started unit late
      per: day                         # day | hour
      cap_percent: 50                  # at most this much in total (default 100)
      cutoff: 2026-09-22T23:59:00-04:00  # optional: after this (+ extension) zero points

The submission time comes from the LMS (:class:`grader.intake.Handin`); a roster
extension moves ``due`` and ``cutoff`` for that student. When the LMS marks a hand-in
late but gives no time, one unit is charged (and flagged). A LATE mark under a rubric
without ``late:`` is recorded and flagged, with no penalty. The penalty is kept in the
result's ``late`` section and subtracted from the total; an override of the pseudo-check
``late`` (``overrides.yaml``) replaces it (``points: 0`` waives it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import Field, field_validator

from grader.checks.base import StrictModel

#: The check id an override uses to replace a late penalty.
LATE_CHECK = "late"


class LatePolicy(StrictModel):
    """The rubric's ``late:`` section."""

    due: datetime
    """The due time, with a time zone (2026-09-15T23:59:00-04:00); a roster extension moves it."""
    grace_minutes: float = Field(default=0, ge=0)
    """Minutes after the due time that still count as on time."""
    penalty_percent: float = Field(default=0, ge=0, le=100)
    """Percent of the maximum score taken off per started unit (day or hour) late."""
    per: Literal["day", "hour"] = "day"
    """The unit the penalty counts: each started day or each started hour past due plus grace."""
    cap_percent: float = Field(default=100, ge=0, le=100)
    """The most the penalty may take off, in percent of the maximum score."""
    cutoff: datetime | None = None
    """Hand-ins after this time (with a time zone) score 0; a roster extension moves it too."""

    @field_validator("due", "cutoff")
    @classmethod
    def _zoned(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("needs a time zone, e.g. 2026-09-15T23:59:00-04:00 or ...Z")
        return value


@dataclass(frozen=True)
class Late:
    """The result's ``late`` section: the evidence and the penalty (points)."""

    submitted_at: str | None
    time_source: str | None  # metadata | file time | None
    lms_late_mark: bool
    due: str | None  # the student's due time, extension included
    extension_hours: float
    hours_late: float  # past due + grace; 0 when on time
    units_late: int
    penalty: float  # points taken off the total
    penalty_percent: float
    waived: bool = False
    comment: str = ""
    flags: tuple[str, ...] = ()

    def to_section(self) -> dict[str, Any]:
        """The plain dict the result file keeps."""
        out = asdict(self)
        out["flags"] = list(self.flags)
        return out

    @classmethod
    def from_section(cls, data: Any) -> Late | None:
        """The section read back (None when absent or not this shape)."""
        if not isinstance(data, Mapping):
            return None
        try:
            return cls(**{**data, "flags": tuple(data.get("flags", ()))})
        except TypeError:
            return None


def assess(
    policy: LatePolicy | None,
    *,
    raw_score: float,
    max_score: float,
    submitted_at: str | None,
    time_source: str | None,
    late_mark: bool,
    extension_hours: float = 0.0,
) -> Late | None:
    """The ``late`` section for one hand-in, or None when there is nothing to say (no
    policy and no LATE mark)."""
    if policy is None:
        if not late_mark:
            return None
        return Late(
            submitted_at, time_source, True, None, extension_hours, 0.0, 0, 0.0, 0.0,
            flags=("the LMS marks this late, but the rubric has no `late:` due time: "
                   "no penalty applied",),
        )  # fmt: skip
    flags: list[str] = []
    extension = timedelta(hours=extension_hours)
    due = policy.due + extension
    hours = 0.0
    units = 0
    when = _parse(submitted_at)
    if when is not None:
        past = when - due - timedelta(minutes=policy.grace_minutes)
        hours = max(0.0, past.total_seconds() / 3600)
        unit = 24.0 if policy.per == "day" else 1.0
        units = math.ceil(hours / unit - 1e-9) if hours > 0 else 0
        if time_source == "file time":
            flags.append("submission time from file times, not the LMS: check it")
        if late_mark and units == 0:
            flags.append("the LMS marks this late, but its time is within the due time")
    elif late_mark:
        units = 1
        flags.append("the LMS marks this late without a time: one unit charged")
    elif submitted_at is None:
        flags.append("no submission time known: no penalty")
    percent = min(units * policy.penalty_percent, policy.cap_percent)
    penalty = percent / 100 * max_score
    if when is not None and policy.cutoff is not None and when > policy.cutoff + extension:
        flags.append("submitted after the cut-off: zero points")
        percent, penalty = 100.0, max_score
    penalty = round(min(penalty, max(raw_score, 0.0)), 2)
    return Late(
        submitted_at,
        time_source,
        late_mark,
        due.isoformat(),
        extension_hours,
        round(hours, 2),
        units,
        penalty,
        percent,
        flags=tuple(flags),
    )


def _parse(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None
