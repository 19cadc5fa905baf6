"""Golden tests particular to HW1 (its messages and details). The points and
status of every check of every sample are compared with ``tests/golden/hw1/*.yaml`` by
``tests/test_golden.py``; both grade the batch once, in a folder every test process shares.

HW1 is graded from two files per student: ``hw1.py`` (imported in a sandboxed worker,
its functions called on grader-made inputs) and ``hw1.ipynb`` (run in a kernel, its
``trained_variables`` re-measured by the grader on the held-out split).
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
    return graded("hw1", tmp_path_factory)


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
