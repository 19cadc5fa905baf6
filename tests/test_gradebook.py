"""gradebook.csv and the Canvas export."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import pandas as pd
import pytest

from grader.gradebook import CANVAS_ID_COLUMNS, export_canvas, write_gradebook
from grader.models import GradeRecord
from grader.report.samples import sample_grade_record


def records() -> list[GradeRecord]:
    return [sample_grade_record(s, seed=i) for i, s in enumerate(["carol", "alice", "bob"])]


def test_gradebook_columns_and_values(tmp_path: Path) -> None:
    recs = records()
    out = tmp_path / "gradebook.csv"
    write_gradebook(recs, out)
    frame = pd.read_csv(out)
    assert list(frame.columns) == ["student", "q1", "q2", "q3", "q4", "q5", "total", "max"]
    assert list(frame["student"]) == ["alice", "bob", "carol"]
    by = {r.student: r for r in recs}
    for _, row in frame.iterrows():
        rec = by[row["student"]]
        assert row["total"] == pytest.approx(rec.score)
        assert row["max"] == pytest.approx(rec.max_score)
        for q in rec.questions:
            assert row[q.id] == pytest.approx(q.score)


def test_gradebook_missing_question_left_empty(tmp_path: Path) -> None:
    recs = records()
    recs[0] = dataclasses.replace(recs[0], questions=recs[0].questions[:2])
    out = tmp_path / "g.csv"
    write_gradebook(recs, out)
    frame = pd.read_csv(out)
    carol = frame[frame["student"] == "carol"].iloc[0]
    assert pd.isna(carol["q5"])


def test_canvas_export_columns(tmp_path: Path) -> None:
    recs = records()
    out = tmp_path / "canvas.csv"
    export_canvas(recs, out)
    with out.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    title = recs[0].title
    assert rows[0] == [*CANVAS_ID_COLUMNS, title]
    assert rows[0][:5] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
    assert rows[1][0] == "Points Possible"
    assert float(rows[1][5]) == pytest.approx(recs[0].max_score)
    body = {r[0]: r for r in rows[2:]}
    assert sorted(body) == ["alice", "bob", "carol"]
    for rec in recs:
        row = body[rec.student]
        assert row[2] == row[3] == rec.student
        assert float(row[5]) == pytest.approx(rec.score)


def test_canvas_export_named_column_without_points_row(tmp_path: Path) -> None:
    out = tmp_path / "canvas.csv"
    export_canvas(records(), out, column="HW3 (98765)", points_possible=False)
    frame = pd.read_csv(out, dtype=str)
    assert list(frame.columns) == [*CANVAS_ID_COLUMNS, "HW3 (98765)"]
    assert "Points Possible" not in set(frame["Student"])


def test_canvas_export_rejects_mixed_assignments(tmp_path: Path) -> None:
    recs = records()
    recs[1] = dataclasses.replace(recs[1], assignment="hw2")
    with pytest.raises(ValueError, match="several assignments"):
        export_canvas(recs, tmp_path / "x.csv")
