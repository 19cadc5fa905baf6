"""Time for training (cell budgets by tag and by heading) and data sets bound read-only,
run through the sandbox's one entry."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import numpy as np
import pytest

from grader import datasets
from grader.sandbox import (
    AnswerRequest,
    ExecutionLimits,
    ExecutionRequest,
    NotebookTask,
    SubmissionFiles,
    execute,
)
from grader.sandbox.limits import CellBudget, matching_budgets
from grader.sandbox.protections import detect_protections

CONFINED = os.geteuid() == 0 and detect_protections().complete
MODE = "strict" if CONFINED else "off"
needs_sandbox = pytest.mark.skipif(not CONFINED, reason="binds need root, bwrap and cgroups")


def notebook(cells: list[tuple[str, str] | str]) -> str:
    """A notebook of code cells (``"src"``), tagged cells (``("train", "src")``) and
    Markdown cells (``"md:## Q7"``)."""
    nb = nbformat.v4.new_notebook()  # type: ignore[no-untyped-call]
    for cell in cells:
        if isinstance(cell, tuple):
            made = nbformat.v4.new_code_cell(cell[1])  # type: ignore[no-untyped-call]
            made.metadata["tags"] = [cell[0]]
        elif cell.startswith("md:"):
            made = nbformat.v4.new_markdown_cell(cell[3:])  # type: ignore[no-untyped-call]
        else:
            made = nbformat.v4.new_code_cell(cell)  # type: ignore[no-untyped-call]
        nb.cells.append(made)
    return str(nbformat.writes(nb))  # type: ignore[no-untyped-call]


def submission(tmp_path: Path, text: str) -> SubmissionFiles:
    root = tmp_path / "student"
    root.mkdir()
    (root / "hw.ipynb").write_text(text)
    return SubmissionFiles(root, ("hw.ipynb",))


def test_budgets_match_tags_and_enclosing_headings_largest_wins() -> None:
    nb = nbformat.reads(  # type: ignore[no-untyped-call]
        notebook(
            [
                "md:# Homework",
                "a = 1",
                "md:## Q7 (b) Training",
                ("train", "fit()"),
                "b = 2",
                "md:## Q8",
                ("train", "fit()"),
                "c = 3",
            ]
        ),
        as_version=4,
    )
    rules = (
        CellBudget(tag="train", timeout=600),
        CellBudget(heading="Q7", timeout=900),
        CellBudget(heading="Q7b", timeout=30),
    )
    code = (2, 4, 5, 7, 8)  # the code cells' positions
    found = {i: sorted(matching_budgets(rules, nb.cells, i)) for i in code}
    assert found == {
        2: [],  # under "# Homework" only
        4: [30, 600, 900],  # tagged, and under "Q7 (b)": Q7 and Q7b both match
        5: [30, 900],
        7: [600],  # under Q8 now
        8: [],
    }


def test_a_budget_names_a_tag_or_a_heading() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        CellBudget(timeout=5)
    with pytest.raises(ValueError, match="exactly one"):
        CellBudget(tag="train", heading="Q7", timeout=5)


def test_a_tagged_training_cell_gets_its_budget_and_one_past_it_is_stopped(
    tmp_path: Path,
) -> None:
    cells: list[tuple[str, str] | str] = [
        "import time\na = 1",
        ("train", "time.sleep(3)\nb = 2"),  # past the 1 s cell limit, within its 10 s
        "md:## Q7 Long training",
        "c = 3",
        "time.sleep(60)\nd = 4",  # under Q7: 2 s, then stopped
        "md:## Q8",
        "e = 5",
    ]
    limits = ExecutionLimits(
        cell_timeout=1,
        interrupt_grace=3,
        cells=(CellBudget(tag="train", timeout=10), CellBudget(heading="Q7", timeout=2)),
    )
    request = ExecutionRequest(
        files=submission(tmp_path, notebook(cells)),
        notebook=NotebookTask("hw.ipynb", harvest=tuple(AnswerRequest(n) for n in "abcde")),
        limits=limits,
        mode=MODE,
    )
    got = execute(request)
    assert got.run is not None
    assert [(f.cell, f.kind, f.evalue) for f in got.execution.failures] == [
        (5, "timeout", "the cell did not finish within 2 s and was stopped"),
    ]
    answers = {n: a.value for n, a in got.run.answers.items() if a.status == "ok"}
    assert answers == {"a": 1, "b": 2, "c": 3, "e": 5}  # d never got its value


def test_the_notebook_budget_caps_a_cells_budget(tmp_path: Path) -> None:
    request = ExecutionRequest(
        files=submission(tmp_path, notebook(["a = 1", ("train", "import time; time.sleep(60)")])),
        notebook=NotebookTask("hw.ipynb", harvest=(AnswerRequest("a"),)),
        limits=ExecutionLimits(
            cell_timeout=1,
            notebook_timeout=3,
            interrupt_grace=3,
            cells=(CellBudget(tag="train", timeout=600),),
        ),
        mode=MODE,
    )
    got = execute(request)
    assert got.run is not None and got.run.answers["a"].value == 1
    assert [(f.cell, f.kind) for f in got.execution.failures] == [(2, "timeout")]
    assert "600" not in got.execution.failures[0].evalue


def tiny_mnist(path: Path) -> Path:
    """A tiny MNIST as Keras stores it (``mnist.npz``: x_train, y_train, x_test, y_test)."""
    rng = np.random.default_rng(0)
    np.savez(
        path,
        x_train=rng.integers(0, 256, (12, 28, 28), dtype=np.uint8),
        y_train=np.arange(12, dtype=np.uint8) % 10,
        x_test=rng.integers(0, 256, (5, 28, 28), dtype=np.uint8),
        y_test=np.arange(5, dtype=np.uint8),
    )
    return path


READ = """
import json, os
where = json.loads(os.environ["GRADER_DATASETS"])
with np.load(os.path.join(where["mnist"], "mnist.npz"), allow_pickle=False) as f:
    n_train, first_label = int(f["x_train"].shape[0]), int(f["y_train"][1])
"""
WRITE = """
try:
    open(os.path.join(where["mnist"], "mine.txt"), "w").write("x")
    wrote = "yes"
except OSError as exc:
    wrote = type(exc).__name__
try:
    os.remove(os.path.join(where["mnist"], "mnist.npz"))
    removed = "yes"
except OSError as exc:
    removed = type(exc).__name__
"""
OTHERS = """
others = sorted(os.listdir("/grader-data"))
secret_seen = os.path.exists(os.path.join(SECRET_DIR, "secret.npz"))
"""


@needs_sandbox
def test_only_the_named_data_sets_are_bound_read_only(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    mnist = datasets.add("mnist", tiny_mnist(tmp_path / "mnist.npz"), cache)
    secret = tmp_path / "secret"
    secret.mkdir()
    tiny_mnist(secret / "secret.npz")
    other = datasets.add("cifar", secret, cache)
    cells = [
        "import numpy as np",
        READ,
        WRITE,
        OTHERS.replace("SECRET_DIR", repr(str(other.folder))),
    ]
    request = ExecutionRequest(
        files=submission(tmp_path, notebook(cells)),
        notebook=NotebookTask(
            "hw.ipynb",
            harvest=tuple(
                AnswerRequest(n)
                for n in ("n_train", "first_label", "wrote", "removed", "others", "secret_seen")
            ),
        ),
        datasets=(mnist.bind(),),
        limits=ExecutionLimits(cell_timeout=30),
        mode="strict",
    )
    got = execute(request)
    assert got.run is not None, got.problem
    values = {n: a.value for n, a in got.run.answers.items()}
    assert values == {
        "n_train": 12,
        "first_label": 1,
        "wrote": "OSError",  # a read-only file system (EROFS)
        "removed": "OSError",
        "others": ["mnist"],  # cifar is in the cache, not named: not there
        "secret_seen": False,  # nor at its own path on the grader's machine
    }
    assert (mnist.folder / "mnist.npz").exists()


def test_the_runner_reports_each_cell_it_starts(tmp_path: Path) -> None:
    from grader.sandbox import CELL_PROGRESS

    seen: list[tuple[int, int]] = []
    request = ExecutionRequest(
        files=submission(tmp_path, notebook(["a = 1", "md:## Q1", "b = 2", "c = 3"])),
        notebook=NotebookTask("hw.ipynb"),
        mode=MODE,
    )
    token = CELL_PROGRESS.set(lambda n, total: seen.append((n, total)))
    try:
        execute(request)
    finally:
        CELL_PROGRESS.reset(token)
    assert seen == [(1, 3), (2, 3), (3, 3)]  # code cells only


def test_with_the_sandbox_off_the_kernel_is_told_the_cache_folder(tmp_path: Path) -> None:
    mnist = datasets.add("mnist", tiny_mnist(tmp_path / "mnist.npz"), tmp_path / "cache")
    request = ExecutionRequest(
        files=submission(tmp_path, notebook(["import numpy as np", READ])),
        notebook=NotebookTask(
            "hw.ipynb", harvest=(AnswerRequest("n_train"), AnswerRequest("where"))
        ),
        datasets=(mnist.bind(),),
        mode="off",
    )
    got = execute(request)
    assert got.run is not None
    assert got.run.answers["n_train"].value == 12
    assert got.run.answers["where"].value == {"mnist": str(mnist.folder)}  # nothing bound
