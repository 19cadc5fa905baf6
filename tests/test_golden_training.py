"""End to end through ``grade``: training cells with their own time budget and a data
set read offline from the grader's data cache (issue 14, items 4 and 5).

The expected points are written by hand from the rubric below (2 + 3 + 5 = 10):
``n_train`` is read from the cached tiny MNIST (12 training images), ``weights`` is set
by the training cell, ``accuracy`` by the cell after it.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import numpy as np
import pytest

from grader import datasets
from grader.cli import main
from tests.sandbox.test_training import CONFINED

RUBRIC = """\
assignment: train
title: Training time
reference: ref.py
notebook: hw.ipynb
datasets: [tinymnist]
limits:
  cell_timeout: 1
  notebook_timeout: 120
  cells: [{tag: train, timeout: 10}]
questions:
  - id: q1
    checks:
      - {id: n_train, type: value, answer: n_train, points: 2}
      - {id: weights, type: value, answer: weights, points: 3}
      - {id: accuracy, type: value, answer: accuracy, points: 5}
"""
REFERENCE = """\
def compute():
    return {"n_train": 12, "weights": 6.0, "accuracy": 0.75}
"""
LOAD = """\
import json, os, time
import numpy as np
where = json.loads(os.environ["GRADER_DATASETS"])["tinymnist"]
with np.load(os.path.join(where, "mnist.npz"), allow_pickle=False) as f:
    n_train = int(f["x_train"].shape[0])
"""


def write_notebook(folder: Path, train_seconds: int, tagged: bool) -> None:
    nb = nbformat.v4.new_notebook()  # type: ignore[no-untyped-call]
    train = nbformat.v4.new_code_cell(  # type: ignore[no-untyped-call]
        f"time.sleep({train_seconds})  # the training loop\nweights = 6.0"
    )
    if tagged:
        train.metadata["tags"] = ["train"]
    nb.cells = [
        nbformat.v4.new_code_cell(LOAD),  # type: ignore[no-untyped-call]
        train,
        nbformat.v4.new_code_cell("accuracy = 0.75"),  # type: ignore[no-untyped-call]
    ]
    folder.mkdir(parents=True)
    nbformat.write(nb, folder / "hw.ipynb")  # type: ignore[no-untyped-call]


# student: (training seconds, tagged, {check: (points, status)}, total)
EXPECTED = {
    # 3 s of training past the 1 s cell limit, within the train tag's 10 s: full marks
    "solution": (
        3,
        True,
        {"n_train": (2, "pass"), "weights": (3, "pass"), "accuracy": (5, "pass")},
        10,
    ),
    # the same cell without the tag has the 1 s cell limit: stopped, weights never set;
    # the answers before (n_train) and after it (accuracy) still count
    "untagged": (
        3,
        False,
        {"n_train": (2, "pass"), "weights": (0, "error"), "accuracy": (5, "pass")},
        7,
    ),
    # tagged, but 60 s of training: stopped at its 10 s budget
    "too_slow": (
        60,
        True,
        {"n_train": (2, "pass"), "weights": (0, "error"), "accuracy": (5, "pass")},
        7,
    ),
}


@pytest.mark.skipif(not CONFINED, reason="data set binds need root, bwrap and cgroups")
def test_training_budgets_and_offline_data_earn_the_hand_written_points(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "data-cache"
    monkeypatch.setenv("GRADER_DATA", str(cache))
    monkeypatch.setenv("GRADER_CACHE", str(tmp_path / "grader-cache"))
    rng = np.random.default_rng(0)
    np.savez(
        tmp_path / "mnist.npz",
        x_train=rng.integers(0, 256, (12, 28, 28), dtype=np.uint8),
        y_train=np.arange(12, dtype=np.uint8) % 10,
        x_test=rng.integers(0, 256, (4, 28, 28), dtype=np.uint8),
        y_test=np.arange(4, dtype=np.uint8),
    )
    course = tmp_path / "course"
    course.mkdir()
    (course / "rubric.yaml").write_text(RUBRIC)
    (course / "ref.py").write_text(REFERENCE)
    subs = tmp_path / "subs"
    for student, (seconds, tagged, _, _) in EXPECTED.items():
        write_notebook(subs / student, seconds, tagged)
    out = tmp_path / "out"
    argv = [str(subs), "--rubric", str(course / "rubric.yaml"), "--out", str(out)]
    argv += ["--no-reports", "--quiet", "--jobs", "1"]
    assert main(argv) == 2  # the data set is not in the cache yet: refused, nothing runs
    datasets.add("tinymnist", tmp_path / "mnist.npz")
    assert main(argv) == 0
    for student, (_, _, checks, total) in EXPECTED.items():
        result = json.loads((out / "results" / f"{student}.json").read_text())
        got = {c["id"]: (c["score"], c["status"]) for q in result["questions"] for c in q["checks"]}
        assert got == checks, student
        assert result["score"] == total, student
