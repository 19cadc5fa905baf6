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
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from grader.cli import main
from grader.results import validate

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = yaml.safe_load((ROOT / "tests" / "golden" / "hw4_expected.yaml").read_text())
STUDENTS = sorted(k for k in GOLDEN if k != "totals")


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("graded")
    code = main(
        [
            str(ROOT / "submissions" / "hw4"),
            "--rubric",
            "hw4",
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
