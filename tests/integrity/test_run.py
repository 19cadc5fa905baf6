"""The integrity stage in the commands (grader/integrity/run.py through grader/cli.py):
``grade`` writes the similarity files, ``grade report`` compares again from the index and
the summary PDF shows the flagged pair with its excerpts."""

from __future__ import annotations

from pathlib import Path

import pytest
from pypdf import PdfReader

import grader.batch
from grader.batch import grade_batch
from grader.cli import main
from grader.errors import RubricError
from grader.integrity.similarity import CSV_FILE, DETAILS_FILE, INDEX_FILE
from grader.progress import Reporter
from grader.rubric import load_rubric
from tests.integrity.batch import write_batch, write_rubric
from tests.integrity.test_given import SeenExecution


def test_a_batch_then_grade_report_show_the_copied_pair_in_the_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(grader.batch, "execute_submission", SeenExecution())
    monkeypatch.setattr(grader.batch, "preflight", lambda *a, **k: None)
    monkeypatch.setattr(grader.batch, "sandbox_warnings", lambda mode: ())
    subs = write_batch(tmp_path / "subs")
    rubric = load_rubric(write_rubric(tmp_path / "rubric"))
    out = tmp_path / "out"
    warnings: list[str] = []

    class Warnings(Reporter):
        def warning(self, message: str) -> None:
            warnings.append(message)

    grade_batch(subs, rubric, out, reporter=Warnings(lambda _: None))
    for name in (CSV_FILE, DETAILS_FILE, INDEX_FILE):
        assert (out / name).is_file()
    assert any("1 pair(s) of submissions flagged as similar" in w for w in warnings)
    csv_text = (out / CSV_FILE).read_text(encoding="utf-8")
    (out / CSV_FILE).unlink()

    assert main(["report", str(out), "--jobs", "1"]) == 0
    assert (out / CSV_FILE).read_text(encoding="utf-8") == csv_text
    text = "\n".join(page.extract_text() for page in PdfReader(out / "summary.pdf").pages)
    assert "Similar submissions" in text
    assert "alice" in text and "erin" in text
    assert "picked = probs[np.arange(len(labels)), labels]" in text
    assert "chosen = p[np.arange(len(y_idx)), y_idx]" in text
    assert "Given cells changed" in text and "frank" in text


def test_compare_with_a_folder_without_an_index_is_refused_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(tmp_path), "--compare-with", str(tmp_path / "old")]) == 2
    err = capsys.readouterr().err
    assert f"--compare-with {tmp_path / 'old'}: no {INDEX_FILE} there" in err


def test_the_output_folder_itself_is_no_earlier_batch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(tmp_path), "--compare-with", str(tmp_path)]) == 2
    assert "is the output folder itself" in capsys.readouterr().err


def test_a_missing_starter_file_is_named_before_grading(tmp_path: Path) -> None:
    rubric_path = write_rubric(tmp_path / "rubric", starter=False, extra="  starter: [nope.py]")
    with pytest.raises(RubricError, match=r"similarity.starter names nope.py, which does not"):
        grade_batch(
            write_batch(tmp_path / "subs", ("alice",)),
            load_rubric(rubric_path),
            tmp_path / "out",
            reporter=Reporter(lambda _: None),
        )
