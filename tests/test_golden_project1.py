"""Golden tests particular to PROJECT1 (its messages and details). The points and
status of every check of every sample are compared with ``tests/golden/project1/*.yaml`` by
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
    return graded("project1", tmp_path_factory)


def test_messages_name_the_mistakes(batch: Path) -> None:
    shared = checks(result(batch, "lc_shared_weights"))["lc_model"]["message"]
    assert "171,194" in shared and "33,177,770" in shared
    made_up = checks(result(batch, "made_up_accuracy"))["fc_claimed_accuracy"]
    assert made_up["details"]["claimed"] == 0.995
    keras = checks(result(batch, "keras_weight_layout"))["fc_trained_accuracy"]["message"]
    assert "(256, 128)" in keras and "(128, 256)" in keras


def test_validate_command() -> None:
    assert main(["validate", "project1"]) == 0
