"""Golden tests particular to HW4B (its messages and details). The points and
status of every check of every sample are compared with ``tests/golden/hw4b/*.yaml`` by
``tests/test_golden.py``; both grade the batch once, in a folder every test process shares.

HW4-B is graded from one notebook per student: the (test loss, test accuracy) of six
training configurations, each a band claim against the reference's own re-trainings over
seeds 0-4, the counts of the course CNN, and two essays.
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
    return graded("hw4b", tmp_path_factory)


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
    # The seed's "almost perfect" 6-epoch accuracy: above the band, so it fails (the
    # handout's rule). How far above depends on the band, which differs by a few
    # thousandths between torch builds and CPUs, so only the side is asserted.
    made_up = checks(result(batch, "made_up_accuracy"))["q2_epochs_6_accuracy"]
    details = made_up["details"]
    assert details["claimed"] == 0.9978
    assert details["claimed"] > details["band"][1] >= max(details["reference_runs"])
    assert made_up["status"] == "fail" and "outside the band" in made_up["message"]
    error = checks(result(batch, "notebook_error"))["q4_batchnorm_accuracy"]
    assert "TypeError" in error["message"] and "batchnorm" in error["message"]


def test_bands_come_from_the_cached_reference(batch: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The re-trainings are expected values: computed once per reference hash (here by
    the batch above) and read back from the cache, never per student."""
    import grader.reference
    from grader.reference import load_expected
    from grader.rubric import load_rubric

    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("the reference was computed again instead of read from the cache")

    monkeypatch.setattr(grader.reference, "compute_values", no_training)
    expected = load_expected(load_rubric("hw4b"))
    details = checks(result(batch, "swapped_loss_accuracy"))["q1_baseline_accuracy"]["details"]
    assert details["reference_runs"] == expected.values["q1_baseline_accuracy"]["runs"]


def test_validate_hw4b_solution_earns_full_marks() -> None:
    from grader.validate import validate_rubric

    assert validate_rubric("hw4b", log=lambda _: None) == []
