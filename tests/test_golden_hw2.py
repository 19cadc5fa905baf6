"""Golden tests particular to HW2 (its messages and details). The points and
status of every check of every sample are compared with ``tests/golden/hw2/*.yaml`` by
``tests/test_golden.py``; both grade the batch once, in a folder every test process shares.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.cli import main
from tests.golden.support import (
    checks,
    graded,
    result,
)


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return graded("hw2", tmp_path_factory)


def test_messages_name_the_case_in_words(batch: Path) -> None:
    conv = checks(result(batch, "pad_zero_slice"))["conv_backward_naive"]
    assert conv["details"]["case"] == "batch of one, C = 1, pad 0, stride 2"
    assert "dx has shape (1, 1, 0, 0) but should have shape (1, 1, 4, 4)" in conv["message"]
    pool = checks(result(batch, "pool_assign_not_add"))["max_pool_backward_naive"]
    assert "overlapping" in pool["details"]["case"] and "dx differs" in pool["message"]
    rescaled = checks(result(batch, "dropout_backward_rescales"))["dropout_backward"]
    assert "what your dropout_forward multiplied x by" in rescaled["message"]
    bn = checks(result(batch, "bn_no_writeback"))["batchnorm_forward"]
    assert "running_mean" in bn["message"] and "written back" in bn["message"]
    soft = checks(result(batch, "softmax_no_max_shift"))["softmax_loss"]
    assert soft["details"]["case"] == "large scores (around 1000)"
    reshape = checks(result(batch, "dx_not_reshaped"))["affine_backward"]
    assert "dx has shape (2, 12) but should have shape (2, 3, 4)" in reshape["message"]
    drop = checks(result(batch, "dropout_p_as_drop"))["dropout_forward"]
    assert "KEEPING" in drop["message"]
    missing = checks(result(batch, "missing_function"))["max_pool_backward_naive"]
    assert missing["message"] == "layers.py defines no function max_pool_backward_naive"


def test_messages_name_the_family_and_the_smallest_failing_case(batch: Path) -> None:
    """A function wrong on exactly the cases of one family (reference/hw2.py's conv and
    pool families) is told so, with the smallest such case's inputs to rebuild it."""
    conv = checks(result(batch, "conv_out_h_for_w"))["conv_forward_naive"]
    assert conv["details"]["family"] == "non-square output"
    assert conv["message"].startswith("wrong only on the 'non-square output' cases (2 of 5)")
    assert "(x (2, 1, 4, 4), w (2, 1, 2, 3), b (2,), stride 1, pad 0)" in conv["message"]
    assert "conv_forward_naive raised" in conv["message"]
    # Its backward is right but got no cache from the raising forward: that is not the
    # backward's family.
    backward = checks(result(batch, "conv_out_h_for_w"))["conv_backward_naive"]
    assert "could not be tested because its forward" in backward["message"]
    assert "family" not in backward["details"]
    own = checks(result(batch, "conv_backward_out_h_for_w"))["conv_backward_naive"]
    assert own["details"]["family"] == "non-square output"
    assert set(own["details"]["failing_cases"]) == {
        "non-square filter, non-square output, C = 1, pad 0",
        "non-square input, non-square output, batch of one",
    }
    for check in ("max_pool_forward_naive", "max_pool_backward_naive"):
        pool = checks(result(batch, "pool_height_for_width"))[check]
        assert pool["details"]["family"] == "non-square window"
        assert "pool_height 2, pool_width 3, stride 1" in pool["message"]
    padded = checks(result(batch, "pad_zero_slice"))["conv_backward_naive"]
    assert padded["message"].startswith("wrong only on the 'pad 0' cases (2 of 5)")
    soft = checks(result(batch, "softmax_no_max_shift"))["softmax_loss"]
    assert soft["details"]["family"] == "large logits"
    assert "family" not in checks(result(batch, "dx_not_reshaped"))["affine_backward"]["details"]


def test_module_problems_reach_every_check_and_the_execution_report(batch: Path) -> None:
    slow = result(batch, "trains_at_import")
    message = "importing layers.py took longer than 20 s: does it train at import?"
    assert slow["execution"]["module_problem"] == message
    assert all(message in c["message"] for c in checks(slow).values())
    syntax = result(batch, "syntax_error")
    assert "syntax error on line" in syntax["execution"]["module_problem"]
    absent = result(batch, "misnamed_module")
    assert absent["execution"]["module"] is None
    for check in checks(absent).values():
        assert "no layers.py in the submission (found: layer.py, notes.txt)" in check["message"]
    assert result(batch, "solution")["execution"]["module"] == "layers.py"


def test_no_rule_the_handout_does_not_state(batch: Path) -> None:
    """hw2.md says nothing about in-place changes: the samples that change their inputs
    keep every point, and no check message mentions it."""
    for student in ("relu_in_place", "relu_dout_in_place", "softmax_shift_in_place"):
        record = result(batch, student)
        assert record["score"] == 130
        assert not any("in place" in c["message"] for c in checks(record).values())


def test_validate_hw2_solution_earns_full_marks() -> None:
    assert main(["validate", "hw2"]) == 0
