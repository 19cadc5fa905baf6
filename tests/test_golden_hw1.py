"""Golden tests: grade the sample HW1 batch as a user would and compare every check's
points and status with ``tests/golden/hw1_expected.yaml``, written by hand from the
handout (never captured from the grader's output).

HW1 is graded from two files per student: ``hw1.py`` (imported in a sandboxed worker,
its functions called on grader-made inputs) and ``hw1.ipynb`` (run in a kernel, its
``trained_variables`` re-measured by the grader on the held-out split). All tests that
need the graded batch live in this module so the batch runs once.
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

GOLDEN = load_golden("hw1")
STUDENTS = students(GOLDEN)


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return grade_samples("hw1", tmp_path_factory.mktemp("graded"), "--jobs", "3")


def test_one_result_per_student(batch: Path) -> None:
    assert sorted(p.stem for p in (batch / "results").glob("*.json")) == STUDENTS


@pytest.mark.parametrize("student", STUDENTS)
def test_points_and_status_of_every_check(batch: Path, student: str) -> None:
    assert not golden_mismatches(batch, GOLDEN, student)
    assert result(batch, student)["max_score"] == 85


@pytest.mark.parametrize("student", STUDENTS)
def test_results_match_published_schema(batch: Path, student: str) -> None:
    validate(result(batch, student))


def test_gradebook(batch: Path) -> None:
    with (batch / "gradebook.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [r["student"] for r in rows] == STUDENTS
    for row in rows:
        assert float(row["total"]) == GOLDEN["totals"][row["student"]]
        assert {"q1", "q1_training", "q2"} <= set(row)


def test_seed_students_messages_name_their_mistakes(batch: Path) -> None:
    got = checks(result(batch, "gupta_seed"))
    assert "inf or nan" in got["forward_pass"]["message"]
    assert "large" in got["forward_pass"]["message"]  # the large-logit case is named
    dropout = got["dropout"]["message"]
    assert "in place" in dropout and "1/p" in dropout
    # The measured accuracy comes from weights the sample trains in the sandbox with the
    # machine's own BLAS kernels: assert what the handout decides (the claim is more than
    # 0.01 from it), not its digits.
    claim = got["claimed_accuracy"]
    assert claim["details"]["claimed"] - claim["details"]["measured"] > 0.01


def test_dropout_statistics_are_reported(batch: Path) -> None:
    solution = checks(result(batch, "solution"))["dropout"]
    rates = solution["details"]["rates"]
    assert [r["p"] for r in rates] == [0.2, 0.7]
    for rate in rates:
        low, high = rate["accepted"]
        assert low <= rate["zero_fraction"] <= high
        assert rate["values"] == 20000
    assert solution["details"]["false_fail_bound"] < 1e-6
    wrong = checks(result(batch, "dropout_binomial_mask"))["dropout"]["message"]
    assert "KEEPING" in wrong and "p = 0.2" in wrong


def test_import_time_limit_and_claims(batch: Path) -> None:
    at_import = checks(result(batch, "trains_at_import"))
    assert "train at import" in at_import["forward_pass"]["message"]
    record = result(batch, "trains_at_import")
    assert record["execution"]["module_problem"]
    transposed = checks(result(batch, "transposed_weights"))["trained_accuracy"]["message"]
    assert "100×64" in transposed and "transposed" in transposed
    crashed = checks(result(batch, "notebook_crashes"))["trained_accuracy"]["message"]
    assert "ValueError" in crashed and "cell" in crashed
    honest = checks(result(batch, "solution"))["claimed_accuracy"]
    assert honest["details"]["difference"] <= 1e-9


def test_validate_hw1_solution_earns_full_marks() -> None:
    from grader.validate import validate_rubric

    assert validate_rubric("hw1", log=lambda _: None) == []
