"""Golden tests: grade the sample HW4-B batch as a user would and compare every check's
points and status with ``tests/golden/hw4b_expected.yaml``, written by hand from the
handout (never captured from the grader's output).

HW4-B is graded from one notebook per student: the (test loss, test accuracy) of six
training configurations, each a band claim against the reference's own re-trainings over
seeds 0-4, the counts of the course CNN, and two essays. All tests that need the graded
batch live in this module so the batch runs once.
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from grader.cli import main
from grader.results import validate

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = yaml.safe_load((ROOT / "tests" / "golden" / "hw4b_expected.yaml").read_text())
STUDENTS = sorted(k for k in GOLDEN if k != "totals")


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("graded")
    code = main(
        [
            str(ROOT / "submissions" / "hw4b"),
            "--rubric",
            "hw4b",
            "--out",
            str(out),
            "--no-reports",
            "--jobs",
            "2",
        ]
    )
    assert code == 0
    return out


def result(batch: Path, student: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((batch / "results" / f"{student}.json").read_text())
    return data


def checks(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for q in record["questions"] for c in q["checks"]}


def test_one_result_per_student(batch: Path) -> None:
    assert sorted(p.stem for p in (batch / "results").glob("*.json")) == STUDENTS


@pytest.mark.parametrize("student", STUDENTS)
def test_points_and_status_of_every_check(batch: Path, student: str) -> None:
    got = checks(result(batch, student))
    expected = GOLDEN[student]
    assert sorted(got) == sorted(expected)
    mismatches = {
        cid: {
            "expected": (exp["points"], exp["status"]),
            "got": (got[cid]["score"], got[cid]["status"]),
            "message": got[cid]["message"],
        }
        for cid, exp in expected.items()
        if (got[cid]["score"], got[cid]["status"]) != (exp["points"], exp["status"])
    }
    assert not mismatches
    assert result(batch, student)["score"] == GOLDEN["totals"][student]
    assert result(batch, student)["max_score"] == 46


@pytest.mark.parametrize("student", STUDENTS)
def test_results_match_published_schema(batch: Path, student: str) -> None:
    validate(result(batch, student))


def test_gradebook(batch: Path) -> None:
    with (batch / "gradebook.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [r["student"] for r in rows] == STUDENTS
    for row in rows:
        assert float(row["total"]) == GOLDEN["totals"][row["student"]]
        assert {"q1", "q2", "q3", "q4", "q5", "q6"} <= set(row)


def test_bands_and_messages(batch: Path) -> None:
    solution = checks(result(batch, "solution"))
    for check in solution.values():
        if check["type"] != "claim":
            continue
        details = check["details"]
        assert len(details["reference_runs"]) == 5 and details["seeds"] == [0, 1, 2, 3, 4]
        low, high = details["band"]
        assert low <= details["claimed"] <= high
        assert high - low == pytest.approx(2 * 3 * details["std"])
    made_up = checks(result(batch, "made_up_accuracy"))["q2_epochs_6_accuracy"]
    assert made_up["details"]["claimed"] >= made_up["details"]["band"][1] + 0.05
    assert "outside the band" in made_up["message"]
    error = checks(result(batch, "notebook_error"))["q4_batchnorm_accuracy"]
    assert "TypeError" in error["message"] and "batchnorm" in error["message"]


def test_bands_come_from_the_cached_reference(batch: Path) -> None:
    """The re-trainings are expected values: computed once per reference hash (here by
    the batch above) and read back from the cache, never per student."""
    from grader.reference import load_expected
    from grader.rubric import load_rubric

    start = time.perf_counter()
    expected = load_expected(load_rubric("hw4b"))
    assert time.perf_counter() - start < 5  # no training: five seeds take far longer
    details = checks(result(batch, "swapped_loss_accuracy"))["q1_baseline_accuracy"]["details"]
    assert details["reference_runs"] == expected.values["q1_baseline_accuracy"]["runs"]


def test_validate_hw4b_solution_earns_full_marks() -> None:
    from grader.validate import validate_rubric

    assert validate_rubric("hw4b", log=lambda _: None) == []
