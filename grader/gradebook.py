"""Gradebook exports from :class:`GradeRecord`'s (instructor overrides applied by the caller).

* :func:`write_gradebook` — ``gradebook.csv``: one row per student, one column per
  question id (in rubric order), then ``total`` and ``max``.
* :func:`export_canvas` — a CSV that Canvas's gradebook import accepts: the identifying
  columns ``Student``, ``ID``, ``SIS User ID``, ``SIS Login ID``, ``Section``, then one
  score column named after the assignment. The grader knows students only by their
  submission id, so it fills ``Student``, ``SIS User ID`` and ``SIS Login ID`` with it and
  leaves Canvas's internal ``ID`` and ``Section`` empty; Canvas matches rows on the SIS
  ids. A ``Points Possible`` row sets the maximum of a newly created column.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from grader.atomic import write_text_atomic
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
        row["total"] = record.score
        row["max"] = record.max_score
        rows.append(row)
    frame = pd.DataFrame(rows, columns=["student", *questions, "total", "max"])
    return frame.sort_values("student", kind="stable").reset_index(drop=True)


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
        student = record.student
        rows.append(
            {
                "Student": student,
                "ID": "",
                "SIS User ID": student,
                "SIS Login ID": student,
                "Section": "",
                name: record.score,
            }
        )
    frame = pd.DataFrame(rows, columns=[*CANVAS_ID_COLUMNS, name])
    write_text_atomic(out_csv, frame.to_csv(index=False, float_format="%g"))
