"""Gradebook exports from :class:`GradeRecord`'s (instructor overrides applied by the caller).

* :func:`write_gradebook` — ``gradebook.csv``: one row per student, one column per
  question id (in rubric order), then ``total`` and ``max``.
  A ``late_penalty`` column (points taken off, already out of ``total``) comes before
  ``total`` when any student has a late section.
* :func:`export_canvas` — a CSV that Canvas's gradebook import accepts: the identifying
  columns ``Student``, ``ID``, ``SIS User ID``, ``SIS Login ID``, ``Section``, then one
  score column (``--column "HW3 (12345)"`` names an existing one). A Canvas download
  gives the Canvas user id (``ID``) and the display name; the SIS ids come from the
  roster (the result's ``lms`` section). Results of plain folders (no LMS ids) keep the
  old rule: the student id in ``Student`` and both SIS columns. A ``Points Possible``
  row sets the maximum of a newly created column.
* :func:`export_moodle` — Moodle's grading worksheet (``Identifier`` = ``Participant N``).
* :func:`export_plain` — every check's points, the late penalty, flags and the number of
  manual checks still unreviewed.

:func:`unreviewed` counts manual checks with no instructor mark: every export warns
about them (the plain CSV also in a column; never an extra Canvas column, which Canvas
would import as a new assignment).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from grader.atomic import write_text_atomic
from grader.lms import info_of, late_of
from grader.models import GradeRecord

CANVAS_ID_COLUMNS = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]


def _question_order(records: Sequence[GradeRecord]) -> list[str]:
    order: list[str] = []
    for record in records:
        for q in record.questions:
            if q.id not in order:
                order.append(q.id)
    return order


def gradebook_frame(records: Sequence[GradeRecord]) -> pd.DataFrame:
    """The gradebook as a DataFrame indexed by nothing, sorted by student."""
    questions = _question_order(records)
    rows = []
    for record in records:
        row: dict[str, Any] = {"student": record.student}
        scores = {q.id: q.score for q in record.questions}
        for qid in questions:
            row[qid] = scores.get(qid)
        row["late_penalty"] = penalty(record)
        row["total"] = record.score
        row["max"] = record.max_score
        rows.append(row)
    late = ["late_penalty"] if any(r.late is not None for r in records) else []
    frame = pd.DataFrame(rows, columns=["student", *questions, *late, "total", "max"])
    return frame.sort_values("student", kind="stable").reset_index(drop=True)


def penalty(record: GradeRecord) -> float | None:
    """The late penalty (points) of a record with a late section, else None."""
    late = late_of(record)
    return None if late is None else late.penalty


def unreviewed(record: GradeRecord) -> int:
    """How many of a record's manual checks no instructor has marked yet."""
    return sum(
        1 for q in record.questions for c in q.checks if c.status == "manual" and c.override is None
    )


def unreviewed_warning(records: Sequence[GradeRecord]) -> str | None:
    """The export warning, or None when every manual check is marked."""
    pending = {r.student: unreviewed(r) for r in records if unreviewed(r)}
    if not pending:
        return None
    total = sum(pending.values())
    return (
        f"{total} manual check(s) of {len(pending)} student(s) are not reviewed yet: their "
        "points are the automatic suggestion (mark them in overrides.yaml and export again)"
    )


def write_gradebook(records: Sequence[GradeRecord], out_csv: Path) -> None:
    """Write ``gradebook.csv``: student, one column per question id, total, max.

    Scores are the records' points (overrides already applied by the caller); a question
    missing from a record is left empty. UTF-8, comma separated, no index column;
    written atomically.
    """
    write_text_atomic(out_csv, gradebook_frame(records).to_csv(index=False, float_format="%g"))


def canvas_column(records: Sequence[GradeRecord]) -> str:
    """The score column's name: the assignment's title, else its id."""
    for record in records:
        if record.title.strip():
            return record.title.strip()
    for record in records:
        if record.assignment:
            return record.assignment
    return "Assignment"


def export_canvas(
    records: Sequence[GradeRecord],
    out_csv: Path,
    *,
    column: str | None = None,
    points_possible: bool = True,
) -> None:
    """Write a Canvas gradebook-import CSV with one score column named after the assignment.

    ``column`` overrides the column name (default: :func:`canvas_column`); set it to the
    exact name of an existing Canvas assignment, e.g. ``"HW3 (123456)"``, to update that
    column instead of creating a new one. ``points_possible`` adds Canvas's second row
    ``Points Possible`` with the assignment's maximum. Raises ``ValueError`` when the
    records are for more than one assignment.
    """
    assignments = {r.assignment for r in records}
    if len(assignments) > 1:
        raise ValueError(f"records from several assignments: {', '.join(sorted(assignments))}")
    name = column or canvas_column(records)
    rows: list[dict[str, Any]] = []
    if points_possible and records:
        top = max(float(r.max_score) for r in records)
        rows.append({"Student": "Points Possible", name: top})
    for record in sorted(records, key=lambda r: r.student):
        rows.append({**_canvas_ids(record), name: record.score})
    frame = pd.DataFrame(rows, columns=[*CANVAS_ID_COLUMNS, name])
    write_text_atomic(out_csv, frame.to_csv(index=False, float_format="%g"))


def _canvas_ids(record: GradeRecord) -> dict[str, str]:
    """Canvas's identifying columns for one record (see the module's docstring)."""
    info = info_of(record)
    layout = info.get("layout", "plain")
    if layout == "plain" and not info.get("sis_id"):
        student = record.student
        return {"Student": student, "ID": "", "SIS User ID": student, "SIS Login ID": student,
                "Section": ""}  # fmt: skip
    return {
        "Student": str(info.get("name") or record.student),
        "ID": record.student if layout == "canvas" else "",
        "SIS User ID": str(info.get("sis_id", "")),
        "SIS Login ID": str(info.get("login_id", "")),
        "Section": str(info.get("section", "")),
    }


MOODLE_COLUMNS = [
    "Identifier",
    "Full name",
    "Email address",
    "Grade",
    "Maximum Grade",
    "Grade can be changed",
    "Feedback comments",
]


def export_moodle(records: Sequence[GradeRecord], out_csv: Path) -> None:
    """Write Moodle's grading worksheet ("Upload grading worksheet"): Moodle matches rows
    on ``Identifier`` (``Participant <id>``) and reads ``Grade`` and ``Feedback
    comments``; the comment names a late penalty and a missing submission."""
    rows = []
    for record in sorted(records, key=lambda r: r.student):
        info = info_of(record)
        notes = []
        late = late_of(record)
        if late is not None and late.penalty:
            notes.append(f"late penalty -{late.penalty:g} points")
        if info.get("no_submission"):
            notes.append("no submission")
        rows.append(
            {
                "Identifier": f"Participant {record.student}",
                "Full name": str(info.get("name") or record.student),
                "Email address": str(info.get("email", "")),
                "Grade": record.score,
                "Maximum Grade": record.max_score,
                "Grade can be changed": "Yes",
                "Feedback comments": "; ".join(notes),
            }
        )
    frame = pd.DataFrame(rows, columns=MOODLE_COLUMNS)
    write_text_atomic(out_csv, frame.to_csv(index=False, float_format="%g"))


def export_plain(records: Sequence[GradeRecord], out_csv: Path) -> None:
    """Write a CSV with every check's points: ``student``, ``name``, ``sis_id``,
    ``email``, one column per check id (rubric order), ``late_penalty``, ``total``,
    ``max``, ``unreviewed`` (manual checks not yet marked) and ``flags``."""
    checks: list[str] = []
    for record in records:
        for q in record.questions:
            for c in q.checks:
                if c.id not in checks:
                    checks.append(c.id)
    rows = []
    for record in sorted(records, key=lambda r: r.student):
        info = info_of(record)
        late = late_of(record)
        scores = {c.id: c.score for q in record.questions for c in q.checks}
        flags = [*info.get("flags", ()), *(late.flags if late else ())]
        rows.append(
            {
                "student": record.student,
                "name": info.get("name", ""),
                "sis_id": info.get("sis_id", ""),
                "email": info.get("email", ""),
                **{cid: scores.get(cid) for cid in checks},
                "late_penalty": penalty(record),
                "total": record.score,
                "max": record.max_score,
                "unreviewed": unreviewed(record),
                "flags": "; ".join(flags),
            }
        )
    columns = ["student", "name", "sis_id", "email", *checks, "late_penalty", "total", "max",
               "unreviewed", "flags"]  # fmt: skip
    frame = pd.DataFrame(rows, columns=columns)
    write_text_atomic(out_csv, frame.to_csv(index=False, float_format="%g"))
