"""The LMS's facts joined onto a graded record: who the student is, and how late.

:func:`finalize` is pure and idempotent: from a record (any earlier ``lms``/``late``
sections are recomputed, never stacked), the student's :class:`Handin`, roster entry and
the rubric's late policy it gives the record the batch writes. The result's ``lms``
section holds the display name and roster facts; the ``late`` section the evidence and
the penalty; ``score`` is the checks' total minus the penalty (a separate line everywhere
it is shown). :func:`no_submission` is the zero row of a roster student with no hand-in.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from grader import scoring
from grader.intake import Handin
from grader.late import Late, LatePolicy, assess
from grader.models import ExecutionReport, GradeRecord, Provenance
from grader.roster import RosterEntry

NO_SUBMISSION = "no submission"
NOT_ON_ROSTER = "not on the roster"


@dataclass(frozen=True)
class StudentInfo:
    """The result's ``lms`` section."""

    layout: str
    name: str
    email: str = ""
    sis_id: str = ""
    login_id: str = ""
    section: str = ""
    on_roster: bool | None = None  # None: graded without a roster
    no_submission: bool = False
    flags: tuple[str, ...] = ()

    def to_section(self) -> dict[str, Any]:
        """The plain dict the result file keeps."""
        out = asdict(self)
        out["flags"] = list(self.flags)
        return out


def info_of(record: GradeRecord) -> dict[str, Any]:
    """A record's ``lms`` section, or an empty dict for results graded without one."""
    return dict(record.lms) if isinstance(record.lms, Mapping) else {}


def late_of(record: GradeRecord) -> Late | None:
    """A record's ``late`` section as its record, or None."""
    return Late.from_section(record.late)


def penalty_of(record: GradeRecord) -> float:
    """The points a record's late section takes off (0 without one)."""
    late = late_of(record)
    return 0.0 if late is None else late.penalty


def net_score(raw: float, record: GradeRecord) -> float:
    """``raw`` (a sum of question scores) less the record's late penalty, never below 0."""
    return scoring.points(max(0.0, raw - penalty_of(record)))


def _info(
    layout: str, handin: Handin | None, entry: RosterEntry | None, on_roster: bool | None
) -> StudentInfo:
    flags = (NOT_ON_ROSTER,) if on_roster is False else ()
    name = (entry.name if entry else "") or (handin.name if handin else "")
    if entry is None:
        return StudentInfo(layout, name, on_roster=on_roster, flags=flags)
    return StudentInfo(
        layout,
        name,
        entry.email,
        entry.sis_id,
        entry.login_id,
        entry.section,
        on_roster=on_roster,
        flags=flags,
    )


def finalize(
    record: GradeRecord,
    handin: Handin | None,
    *,
    layout: str,
    entry: RosterEntry | None,
    on_roster: bool | None,
    policy: LatePolicy | None,
) -> GradeRecord:
    """``record`` with its ``lms`` and ``late`` sections and its net score."""
    raw, _ = scoring.total(record.questions)
    info = _info(layout, handin, entry, on_roster)
    late = assess(
        policy,
        raw_score=raw,
        max_score=record.max_score,
        submitted_at=handin.submitted_at if handin else None,
        time_source=handin.time_source if handin else None,
        late_mark=handin.late_mark if handin else False,
        extension_hours=entry.extension_hours if entry else 0.0,
    )
    section = None if late is None else late.to_section()
    out = dataclasses.replace(record, lms=info.to_section(), late=section)
    return dataclasses.replace(out, score=net_score(raw, out))


def no_submission(
    student: str,
    entry: RosterEntry,
    *,
    layout: str,
    assignment: str,
    title: str,
    course: str,
    max_score: float,
    provenance: Provenance,
) -> GradeRecord:
    """The zero row of a roster student who handed in nothing."""
    info = _info(layout, None, entry, True)
    info = dataclasses.replace(info, no_submission=True, flags=(NO_SUBMISSION,))
    return GradeRecord(
        student=student,
        assignment=assignment,
        title=title,
        course=course,
        score=0.0,
        max_score=max_score,
        questions=(),
        execution=ExecutionReport.not_run(warnings=(NO_SUBMISSION,)),
        provenance=provenance,
        lms=info.to_section(),
    )


def with_roster(record: GradeRecord, entry: RosterEntry | None) -> GradeRecord:
    """``record`` with the roster's name, email and SIS ids in its ``lms`` section (for an
    export given ``--roster`` after grading); unchanged when the roster lacks the id."""
    if entry is None:
        return record
    info = info_of(record)
    merged = {
        **info,
        "layout": info.get("layout", "plain"),
        "name": entry.name or info.get("name", ""),
        "email": entry.email or info.get("email", ""),
        "sis_id": entry.sis_id or info.get("sis_id", ""),
        "login_id": entry.login_id or info.get("login_id", ""),
        "section": entry.section or info.get("section", ""),
        "on_roster": True,
        "no_submission": bool(info.get("no_submission", False)),
        "flags": [f for f in info.get("flags", ()) if f != NOT_ON_ROSTER],
    }
    return dataclasses.replace(record, lms=merged)
