"""Golden tests for every rubric: grade each sample batch as a user would and compare
every check's points and status, and every total, with the expectations written by hand
from the handouts in ``tests/golden/<rubric>/<student>.yaml``.

A new assignment needs no new module here: its samples and expectation files are found
by :func:`tests.golden.support.golden_rubrics`. What is particular to one rubric (its
messages, its bands) lives in ``tests/test_golden_<rubric>.py``.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from grader.results import validate
from grader.rubric import load_rubric
from tests.golden.support import (
    golden_mismatches,
    golden_rubrics,
    graded,
    load_golden,
    result,
)

RUBRICS = golden_rubrics()
SAMPLES = [(r, s) for r in RUBRICS for s in load_golden(r)]


class Batches(dict[str, Path]):
    """Each rubric's graded batch, graded on first use."""

    def __init__(self, factory: pytest.TempPathFactory) -> None:
        super().__init__()
        self.factory = factory

    def __missing__(self, rubric: str) -> Path:
        self[rubric] = graded(rubric, self.factory)
        return self[rubric]


@pytest.fixture(scope="module")
def batches(tmp_path_factory: pytest.TempPathFactory) -> Batches:
    return Batches(tmp_path_factory)


def test_every_rubric_with_samples_has_expectations() -> None:
    samples = Path(__file__).resolve().parents[1] / "submissions"
    assert sorted(d.name for d in samples.iterdir() if d.is_dir()) == RUBRICS
    for rubric in RUBRICS:
        assert "solution" in load_golden(rubric), f"{rubric}: the solution's expectation"


@pytest.mark.parametrize("rubric", RUBRICS)
def test_one_result_per_sample(batches: dict[str, Path], rubric: str) -> None:
    results = sorted(p.stem for p in (batches[rubric] / "results").glob("*.json"))
    assert results == sorted(load_golden(rubric))


@pytest.mark.parametrize(("rubric", "student"), SAMPLES)
def test_points_and_status_of_every_check(
    batches: dict[str, Path], rubric: str, student: str
) -> None:
    expectation = load_golden(rubric)[student]
    assert not golden_mismatches(batches[rubric], expectation)
    # Every sample is graded out of what the rubric's own solution earns in full.
    solution = load_golden(rubric)["solution"]
    assert result(batches[rubric], student)["max_score"] == solution.total


@pytest.mark.parametrize(("rubric", "student"), SAMPLES)
def test_results_match_published_schema(
    batches: dict[str, Path], rubric: str, student: str
) -> None:
    validate(result(batches[rubric], student))


@pytest.mark.parametrize("rubric", RUBRICS)
def test_gradebook(batches: dict[str, Path], rubric: str) -> None:
    golden = load_golden(rubric)
    with (batches[rubric] / "gradebook.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [r["student"] for r in rows] == sorted(golden)
    questions = {q.id for q in load_rubric(rubric).questions}
    for row in rows:
        assert float(row["total"]) == golden[row["student"]].total
        assert questions <= set(row)
