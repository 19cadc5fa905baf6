"""Done-when of issue 16: a Canvas download of an HW1 class, graded end to end.

The zip is built here in Canvas's naming from the HW1 samples: John Smith
(naive_softmax, on time), Jane Doe (rounding_accuracy, marked LATE, 34 h after the due
time), Ann Lee (first notebook_crashes, then resubmitted as gupta_seed: ``hw1-1``), Wei
Zhang (short_essay, not on the roster), and Max Mustermann on the roster with nothing
handed in. Expected points per check come from the hand-written golden files of those
samples; the penalty is worked out below by hand.
"""

from __future__ import annotations

import csv
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from grader.cli import main
from grader.results import validate
from tests.golden.support import ROOT, load_golden, points_and_statuses

SAMPLES = ROOT / "submissions" / "hw1"
When = tuple[int, int, int, int, int, int]
ON_TIME: When = (2026, 9, 15, 20, 0, 0)
LATE: When = (2026, 9, 17, 10, 0, 0)  # 34 h 1 min after 2026-09-15T23:59Z

# Canvas user id → (sample graded, display name in the download)
CLASS = {
    "1001": ("naive_softmax", "smithjohn"),
    "1002": ("rounding_accuracy", "doejane"),
    "1003": ("gupta_seed", "leeann"),
    "1005": ("short_essay", "zhangwei"),
}
ROSTER = (
    "id,name,email,sis_id,login_id\n"
    "1001,John Smith,js@x.edu,S1001,jsmith\n"
    "1002,Jane Doe,jd@x.edu,S1002,jdoe\n"
    "1003,Ann Lee,al@x.edu,S1003,alee\n"
    "1004,Max Mustermann,mm@x.edu,S1004,mmuster\n"
)
POLICY = (
    "late:\n  due: 2026-09-15T23:59:00Z\n  penalty_percent: 10\n  per: day\n  cap_percent: 30\n"
)


def canvas_zip(path: Path) -> Path:
    def put(zf: zipfile.ZipFile, name: str, src: Path, when: When) -> None:
        zf.writestr(zipfile.ZipInfo(name, date_time=when), src.read_bytes())

    with zipfile.ZipFile(path, "w") as zf:
        for fid, f in ((5000, "hw1.ipynb"), (5001, "hw1.py")):
            put(zf, f"smithjohn_1001_{fid}_{f}", SAMPLES / "naive_softmax" / f, ON_TIME)
            put(zf, f"doejane_LATE_1002_{fid + 1000}_{f}", SAMPLES / "rounding_accuracy" / f, LATE)
            put(zf, f"leeann_1003_{fid + 2000}_{f}", SAMPLES / "notebook_crashes" / f, ON_TIME)
            resub = f.replace(".", "-1.")
            put(zf, f"leeann_1003_{fid + 2100}_{resub}", SAMPLES / "gupta_seed" / f, ON_TIME)
            put(zf, f"zhangwei_1005_{fid + 4000}_{f}", SAMPLES / "short_essay" / f, ON_TIME)
    return path


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("lms")
    rubric = (ROOT / "rubrics" / "hw1.yaml").read_text(encoding="utf-8")
    rubric = rubric.replace("solution: ../submissions/hw1/solution\n", "")
    (tmp / "hw1.yaml").write_text(rubric.replace("limits:\n", POLICY + "limits:\n", 1))
    (tmp / "roster.csv").write_text(ROSTER)
    out = tmp / "out"
    argv = [str(canvas_zip(tmp / "submissions.zip")), "--rubric", str(tmp / "hw1.yaml")]
    argv += ["--roster", str(tmp / "roster.csv"), "--out", str(out), "--no-reports"]
    assert main([*argv, "--jobs", "2"]) == 0
    return out


def result(out: Path, student: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((out / "results" / f"{student}.json").read_text())
    return data


def test_one_result_per_canvas_user_id(graded: Path) -> None:
    for path in (graded / "results").glob("*.json"):
        validate(json.loads(path.read_text()))  # late and lms sections as published
    names = sorted(p.stem for p in (graded / "results").glob("*.json"))
    assert names == ["1001", "1002", "1003", "1004", "1005"]
    golden = load_golden("hw1")
    for student, (sample, _) in CLASS.items():
        # the resubmission (gupta_seed) is what 1003 is graded on, not notebook_crashes
        assert points_and_statuses(result(graded, student)) == golden[sample].checks, student
    assert result(graded, "1003")["lms"]["name"] == "Ann Lee"  # the roster's name
    assert result(graded, "1005")["lms"]["name"] == "zhangwei"  # the download's


def test_the_late_student_loses_what_the_rubric_says(graded: Path) -> None:
    jane = result(graded, "1002")
    # 34 h 1 min late → 2 started days × 10 % of 85 = 17 points (under the 30 % cap)
    assert jane["late"]["units_late"] == 2 and jane["late"]["lms_late_mark"] is True
    assert jane["late"]["penalty"] == 17.0
    assert jane["score"] == 65 - 17  # rounding_accuracy's golden total, less the penalty
    assert result(graded, "1001")["late"]["penalty"] == 0 and result(graded, "1001")["score"] == 75


def test_roster_zero_row_and_stranger_flag(graded: Path) -> None:
    max_ = result(graded, "1004")
    assert (max_["score"], max_["lms"]["no_submission"], max_["lms"]["flags"]) == (
        0.0, True, ["no submission"],
    )  # fmt: skip
    assert result(graded, "1005")["lms"]["flags"] == ["not on the roster"]
    with (graded / "gradebook.csv").open() as fh:
        rows = {r["student"]: r for r in csv.DictReader(fh)}
    assert (rows["1002"]["late_penalty"], rows["1002"]["total"]) == ("17", "48")
    assert rows["1004"]["total"] == "0"


def test_canvas_export_targets_the_named_column(
    graded: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["export", str(graded), "--format", "canvas", "--column", "HW1 (55501)"]) == 0
    assert "manual check(s)" in capsys.readouterr().err  # Q2 awaits review
    with (graded / "canvas.csv").open() as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "HW1 (55501)"]
    body = {r[1]: r for r in rows[2:]}
    assert body["1002"] == ["Jane Doe", "1002", "S1002", "jdoe", "", "48"]
    assert body["1004"][-1] == "0" and body["1005"][:2] == ["zhangwei", "1005"]


def test_feedback_exports_warn_about_unreviewed_answers_too(
    graded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "feedback"
    assert main(["export", str(graded), "--format", "canvas-feedback", "--output", str(out)]) == 0
    assert "manual check(s)" in capsys.readouterr().err  # Q2 awaits review


def test_an_override_waives_the_penalty_and_the_gradebook_follows(graded: Path) -> None:
    (graded / "overrides.yaml").write_text(
        "- {student: '1002', check: late, points: 0, comment: medical note}\n"
    )
    try:
        assert main(["export", str(graded), "--format", "csv"]) == 0
        with (graded / "checks.csv").open() as fh:
            jane = next(r for r in csv.DictReader(fh) if r["student"] == "1002")
        assert (jane["late_penalty"], jane["total"], jane["unreviewed"]) == ("0", "65", "1")
    finally:
        (graded / "overrides.yaml").unlink()
