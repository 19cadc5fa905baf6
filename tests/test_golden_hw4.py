"""Golden tests: grade the sample HW4 batch as a user would and compare every check's
points and status with ``tests/golden/hw4_expected.yaml``, written by hand from the
handout (never captured from the grader's output).

HW4 is graded from two files per student: ``hw4.py`` (``batchnorm_forward`` and
``gradcam``, called in a sandboxed worker; ``gradcam`` receives a torch model the worker
builds from plain data) and ``hw4.ipynb`` (the search, the shape table, the other named
answers). All tests that need the graded batch live in this module so the batch runs once.
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

GOLDEN = load_golden("hw4")
STUDENTS = students(GOLDEN)


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return grade_samples("hw4", tmp_path_factory.mktemp("graded"), "--jobs", "2")


def test_one_result_per_student(batch: Path) -> None:
    assert sorted(p.stem for p in (batch / "results").glob("*.json")) == STUDENTS


@pytest.mark.parametrize("student", STUDENTS)
def test_points_and_status_of_every_check(batch: Path, student: str) -> None:
    assert not golden_mismatches(batch, GOLDEN, student)
    assert result(batch, student)["max_score"] == 68


@pytest.mark.parametrize("student", STUDENTS)
def test_results_match_published_schema(batch: Path, student: str) -> None:
    validate(result(batch, student))


def test_gradebook(batch: Path) -> None:
    with (batch / "gradebook.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [r["student"] for r in rows] == STUDENTS
    for row in rows:
        assert float(row["total"]) == GOLDEN["totals"][row["student"]]
        assert {"q1", "q3", "q5", "q6", "q7"} <= set(row)


def test_search_band_and_messages(batch: Path) -> None:
    solution = checks(result(batch, "solution"))["q1_search"]["details"]["retrain"]
    assert solution["config"] == "hidden_units=64,learning_rate=0.02"
    assert len(solution["reference_runs"]) == 5 and solution["seeds"] == [0, 1, 2, 3, 4]
    low, high = solution["band"]
    assert low <= solution["claimed"] <= high
    assert high - low <= 2 * 3 * solution["std"] + 1e-12
    inflated = checks(result(batch, "inflated_claim"))["q1_search"]
    band = inflated["details"]["retrain"]["band"]
    assert inflated["details"]["retrain"]["claimed"] > band[1]
    assert "outside the band" in inflated["message"]
    assert "largest" in checks(result(batch, "tuner_best_not_argmax"))["q1_search"]["message"]
    outside = checks(result(batch, "search_outside_space"))["q1_search"]["message"]
    assert "256" in outside and "5 trials" in outside


def test_seed_table_names_its_mistakes(batch: Path) -> None:
    table = checks(result(batch, "ansari_seed"))["q5_table"]
    rows = table["details"]["rows"]
    assert rows[1]["got_shape"] == [124, 124, 32] and not rows[1]["shape_ok"]
    assert [r["shape_ok"] for r in rows[-2:]] == [True, True]  # "invalid" recognised
    assert "multiply by the number of filters" in table["message"]


def test_validate_hw4_solution_earns_full_marks() -> None:
    from grader.validate import validate_rubric

    assert validate_rubric("hw4", log=lambda _: None) == []
