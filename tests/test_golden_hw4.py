"""Golden tests particular to HW4 (its messages and details). The points and
status of every check of every sample are compared with ``tests/golden/hw4/*.yaml`` by
``tests/test_golden.py``; both grade the batch once, in a folder every test process shares.

HW4 is graded from two files per student: ``hw4.py`` (``batchnorm_forward`` and
``gradcam``, called in a sandboxed worker; ``gradcam`` receives a torch model the worker
builds from plain data) and ``hw4.ipynb`` (the search, the shape table, the other named
answers).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.golden.support import (
    checks,
    graded,
    result,
)


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return graded("hw4", tmp_path_factory)


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
