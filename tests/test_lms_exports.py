"""The LMS facts on a record and the exports built from them (no kernel runs here)."""

from __future__ import annotations

import csv
import dataclasses
import zipfile
from pathlib import Path

import pytest

from grader.feedback import canvas_feedback_folder, moodle_feedback_zip
from grader.gradebook import export_canvas, export_moodle, export_plain, unreviewed_warning
from grader.intake import Handin
from grader.late import LatePolicy
from grader.lms import finalize, no_submission, with_roster
from grader.models import GradeRecord
from grader.overrides import Override, OverridesError, apply_overrides
from grader.report.samples import sample_grade_record
from grader.roster import RosterEntry

POLICY = LatePolicy.model_validate({"due": "2026-09-15T23:59:00Z", "penalty_percent": 10})
LATE_HANDIN = Handin("1002", "doejane", (), True, "2026-09-16T05:00:00+00:00", "metadata")


def base(student: str = "1002") -> GradeRecord:
    return sample_grade_record(student, seed=1)


def late_record() -> GradeRecord:
    entry = RosterEntry("1002", "Jane Doe", "jd@x.edu", "S1002", "jdoe")
    return finalize(base(), LATE_HANDIN, layout="canvas", entry=entry, on_roster=True,
                    policy=POLICY)  # fmt: skip


def rows(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.reader(fh))


def test_finalize_takes_the_penalty_off_once_however_often_applied() -> None:
    raw = base().score
    once = late_record()
    assert once.late is not None and once.late["units_late"] == 1
    penalty = round(0.1 * once.max_score, 2)
    assert once.late["penalty"] == penalty and once.score == round(raw - penalty, 2)
    again = finalize(once, LATE_HANDIN, layout="canvas", entry=None, on_roster=False,
                     policy=POLICY)  # fmt: skip
    assert again.score == once.score  # recomputed from the checks, not stacked
    assert again.lms is not None and again.lms["flags"] == ["not on the roster"]


def test_an_override_replaces_the_penalty_and_checks_stay_net_of_it() -> None:
    record = late_record()
    waived = apply_overrides(record, [Override("1002", "late", 0.0, "medical")])
    assert waived.score == base().score and waived.late is not None
    assert (waived.late["waived"], waived.late["comment"]) == (True, "medical")
    check = record.questions[0].checks[0]
    marked = apply_overrides(record, [Override("1002", check.id, 0.0)])
    assert marked.score == round(record.score - check.score, 2)  # penalty still off
    with pytest.raises(OverridesError, match="exceed the late penalty"):
        apply_overrides(record, [Override("1002", "late", 1000.0)])
    with pytest.raises(OverridesError, match="no late penalty"):
        apply_overrides(base(), [Override("1002", "late", 0.0)])


def test_canvas_export_uses_canvas_ids_and_the_named_column(tmp_path: Path) -> None:
    out = tmp_path / "canvas.csv"
    export_canvas([late_record(), base("alice")], out, column="HW1 (55501)")
    got = rows(out)
    assert got[0][-1] == "HW1 (55501)" and len(got[0]) == 6  # no extra columns, ever
    assert got[2] == ["Jane Doe", "1002", "S1002", "jdoe", "", f"{late_record().score:g}"]
    assert got[3][:5] == ["alice", "", "alice", "alice", ""]  # a plain folder: old rule


def test_moodle_worksheet_and_plain_csv(tmp_path: Path) -> None:
    record = late_record()
    export_moodle([record], tmp_path / "m.csv")
    head, row = rows(tmp_path / "m.csv")
    assert head[:4] == ["Identifier", "Full name", "Email address", "Grade"]
    assert row[:3] == ["Participant 1002", "Jane Doe", "jd@x.edu"]
    assert row[-1] == f"late penalty -{record.late['penalty']:g} points"  # type: ignore[index]
    export_plain([record], tmp_path / "p.csv")
    head, row = rows(tmp_path / "p.csv")
    data = dict(zip(head, row, strict=True))
    checks = [c.id for q in record.questions for c in q.checks]
    assert head[4 : 4 + len(checks)] == checks
    manual = sum(1 for q in record.questions for c in q.checks if c.status == "manual")
    assert data["unreviewed"] == str(manual) and data["total"] == f"{record.score:g}"
    warning = unreviewed_warning([record])
    assert (warning is not None) == (manual > 0)


def test_roster_at_export_time_fills_the_sis_ids() -> None:
    record = finalize(base(), Handin("1002", "doejane", ()), layout="canvas", entry=None,
                      on_roster=None, policy=None)  # fmt: skip
    filled = with_roster(record, RosterEntry("1002", "Jane Doe", sis_id="S1002"))
    assert filled.lms is not None and (filled.lms["name"], filled.lms["sis_id"]) == (
        "Jane Doe", "S1002",
    )  # fmt: skip


def test_feedback_files_for_moodle_and_canvas(tmp_path: Path) -> None:
    record = late_record()
    zero = no_submission("1004", RosterEntry("1004", "Max M"), layout="canvas",
                         assignment="hw1", title="HW1", course="", max_score=85,
                         provenance=record.provenance)  # fmt: skip
    no_report = dataclasses.replace(base("1003"), lms={**(record.lms or {}), "name": "Ann"})
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "1002.pdf").write_bytes(b"%PDF jane")
    count, missing = moodle_feedback_zip([record, zero, no_report], tmp_path, tmp_path / "f.zip")
    assert (count, missing) == (1, ["1003"])  # no report rendered for 1003; 1004 sent none
    with zipfile.ZipFile(tmp_path / "f.zip") as zf:
        assert zf.namelist() == ["Jane Doe_1002_assignsubmission_file_/hw3-feedback.pdf"]
    count, missing = canvas_feedback_folder([record], tmp_path, tmp_path / "canvas")
    assert (tmp_path / "canvas" / "1002.pdf").read_bytes() == b"%PDF jane" and count == 1
