"""Golden tests particular to HW3 (its messages and details). The points and
status of every check of every sample are compared with ``tests/golden/hw3/*.yaml`` by
``tests/test_golden.py``; both grade the batch once, in a folder every test process shares.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.golden.support import (
    checks,
    graded,
    load_golden,
    result,
)


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return graded("hw3", tmp_path_factory)


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


def test_reports_of_the_sample_batch(batch: Path, tmp_path: Path) -> None:
    """One PDF per student and a summary; each names the student, the score and every
    check's status in words."""
    from pypdf import PdfReader

    from grader.report.render import load_records, render_all
    from grader.report.view import STATUS_WORDS

    golden = load_golden("hw3")
    # Rendered into a folder of its own: the graded batch is shared with other processes.
    written = render_all(load_records(batch / "results"), tmp_path, jobs=2)
    assert sorted(p.stem for p in (tmp_path / "reports").glob("*.pdf")) == sorted(golden)
    assert tmp_path / "summary.pdf" in written
    for student, expectation in golden.items():
        reader = PdfReader(tmp_path / "reports" / f"{student}.pdf")
        text = " ".join(page.extract_text() for page in reader.pages)
        flat = " ".join(text.split())
        assert student in flat
        assert f"{expectation.total:g} / 90" in flat
        for status in {status for _, status in expectation.checks.values()}:
            assert STATUS_WORDS[status] in flat, (student, status)
