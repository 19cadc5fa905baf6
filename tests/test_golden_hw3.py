"""Golden tests: grade the sample HW3 batch as a user would and compare every check's
points and status with ``tests/golden/hw3_expected.yaml``, written by hand from the
handout (never captured from the grader's output).

All tests that need the graded batch live in this module so the batch runs once.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from grader.results import validate
from tests.golden.support import (
    checks,
    golden_mismatches,
    grade_samples,
    load_golden,
    result,
    students,
)

GOLDEN = load_golden("hw3")
STUDENTS = students(GOLDEN)


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return grade_samples("hw3", tmp_path_factory.mktemp("graded"))


def test_one_result_per_student(batch: Path) -> None:
    assert sorted(p.stem for p in (batch / "results").glob("*.json")) == STUDENTS


@pytest.mark.parametrize("student", STUDENTS)
def test_points_and_status_of_every_check(batch: Path, student: str) -> None:
    assert not golden_mismatches(batch, GOLDEN, student)


@pytest.mark.parametrize("student", STUDENTS)
def test_results_match_published_schema(batch: Path, student: str) -> None:
    validate(result(batch, student))


def test_gradebook(batch: Path) -> None:
    with (batch / "gradebook.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [r["student"] for r in rows] == STUDENTS
    for row in rows:
        assert float(row["total"]) == GOLDEN["totals"][row["student"]]
        assert {"q1", "q2", "q3", "q4", "q6", "q7"} <= set(row)


def test_crashing_cell_reported_and_later_cells_count(batch: Path) -> None:
    record = result(batch, "crash_in_cell")
    failures = record["execution"]["failures"]
    assert len(failures) == 1 and failures[0]["kind"] == "error"
    assert failures[0]["ename"] == "NameError"
    table = checks(record)["q3_table"]
    assert table["status"] == "error"
    assert f"cell {failures[0]['cell']}" in table["message"] and "NameError" in table["message"]
    assert checks(record)["q7_model"]["status"] == "pass"


def test_timeout_interrupted_and_run_continues(batch: Path) -> None:
    ex = result(batch, "infinite_loop")["execution"]
    assert ex["timed_out"] is True
    assert [f["kind"] for f in ex["failures"]] == ["timeout"]
    assert ex["cells_not_run"] == []
    assert checks(result(batch, "infinite_loop"))["q7_model"]["status"] == "pass"


def test_dead_kernel_keeps_earlier_answers(batch: Path) -> None:
    record = result(batch, "kernel_dies")
    ex = record["execution"]
    assert ex["kernel_died"] is True and ex["cells_not_run"]
    assert checks(record)["q2_dL_dX"]["status"] == "pass"
    assert checks(record)["q3_table"]["status"] == "error"
    assert "kernel died" in checks(record)["q3_table"]["message"]


def test_misnamed_notebook_warns(batch: Path) -> None:
    ex = result(batch, "misnamed_file")["execution"]
    assert ex["notebook"] == "HW3_final (1).ipynb"
    assert any("hw3.ipynb" in w and "HW3_final (1).ipynb" in w for w in ex["warnings"])


def test_not_json_and_no_notebook_messages(batch: Path) -> None:
    not_json = checks(result(batch, "not_json"))["q2_O"]["message"]
    assert "hw3.ipynb" in not_json and "JSON" in not_json
    none = checks(result(batch, "no_notebook"))["q2_O"]["message"]
    assert "no notebook" in none and "hw3.py" in none


def test_unreadable_types_are_told_the_accepted_forms(batch: Path) -> None:
    message = checks(result(batch, "unsupported_types"))["q2_O"]["message"]
    assert "Matrix, which the grader cannot read" in message
    for form in ("list or tuple (torch.Size", "NumPy array", "torch tensor"):
        assert form in message


def test_single_file_submission(batch: Path) -> None:
    record = result(batch, "lms_single_file")
    assert record["execution"]["notebook"] == "lms_single_file.ipynb"


def test_provenance(batch: Path) -> None:
    prov = result(batch, "solution")["provenance"]
    assert prov["torch"].startswith("2.13.0")
    assert prov["seeds"]["kernel"] == 0 and prov["seeds"]["probe:q4_model"] == 0
    assert (
        prov["submission_sha256"] != result(batch, "pool_ceil")["provenance"]["submission_sha256"]
    )


def test_reports_of_the_sample_batch(batch: Path) -> None:
    """One PDF per student and a summary; each names the student, the score and every
    check's status in words."""
    from pypdf import PdfReader

    from grader.report.render import load_records, render_all
    from grader.report.view import STATUS_WORDS

    written = render_all(load_records(batch / "results"), batch, jobs=2)
    assert sorted(p.stem for p in (batch / "reports").glob("*.pdf")) == STUDENTS
    assert batch / "summary.pdf" in written
    for student in STUDENTS:
        reader = PdfReader(batch / "reports" / f"{student}.pdf")
        text = " ".join(page.extract_text() for page in reader.pages)
        flat = " ".join(text.split())
        assert student in flat
        assert f"{GOLDEN['totals'][student]:g} / 90" in flat
        for status in {exp["status"] for exp in GOLDEN[student].values()}:
            assert STATUS_WORDS[status] in flat, (student, status)
