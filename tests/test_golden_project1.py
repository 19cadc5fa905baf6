"""Golden tests: grade the sample Project 1 batch as a user would and compare every
check's points and status with ``tests/golden/project1_expected.yaml``, written by hand
from the handout (never captured from the grader's output).

All tests that need the graded batch live in this module so the batch runs once.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from grader.cli import main
from grader.results import validate
from tests.golden.support import (
    checks,
    golden_mismatches,
    grade_samples,
    load_golden,
    result,
    students,
)

GOLDEN = load_golden("project1")
STUDENTS = students(GOLDEN)


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return grade_samples("project1", tmp_path_factory.mktemp("graded"), "--jobs", "2")


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
        assert {"fc", "lc", "cnn", "training"} <= set(row)


def test_messages_name_the_mistakes(batch: Path) -> None:
    shared = checks(result(batch, "lc_shared_weights"))["lc_model"]["message"]
    assert "171,194" in shared and "33,177,770" in shared
    made_up = checks(result(batch, "made_up_accuracy"))["fc_claimed_accuracy"]
    assert made_up["details"]["claimed"] == 0.995
    keras = checks(result(batch, "keras_weight_layout"))["fc_trained_accuracy"]["message"]
    assert "(256, 128)" in keras and "(128, 256)" in keras


def test_validate_command() -> None:
    assert main(["validate", "project1"]) == 0
