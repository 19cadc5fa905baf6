"""Given cells (grader/integrity/given.py): matched by position and content, changes
warned in the result and report, and with ``run_original`` the original cells run."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

import grader.batch
from grader.batch import grade_batch
from grader.discover import discover
from grader.integrity.given import CellChange, GivenCell, GivenCheck, compare_cells
from grader.models import ExecutionReport, NotebookRun, Submission
from grader.progress import Reporter
from grader.reference import Expected
from grader.report.summary import summary_view
from grader.report.view import student_view
from grader.results import read_result, record_to_dict, validate
from grader.rubric import Rubric, load_rubric
from grader.sandbox import (
    AnswerRequest,
    Executed,
    ExecutionLimits,
    ExecutionRequest,
    NotebookTask,
    SubmissionFiles,
    execute,
)
from grader.sandbox.protections import detect_protections
from tests.integrity.batch import SETUP, write_batch, write_rubric

GIVEN = [
    GivenCell(2, "import numpy as np"),
    GivenCell(5, "X = np.ones(3)"),
    GivenCell(9, "check(X)"),
]


def code(*sources: str, tags: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    return [{"cell_type": "code", "source": s, "metadata": {"tags": list(tags)}} for s in sources]


def md(text: str) -> dict[str, Any]:
    return {"cell_type": "markdown", "source": text, "metadata": {}}


def test_unchanged_given_cells_are_found_among_inserted_cells() -> None:
    cells = [
        md("# intro"),
        *code("import numpy as np\n"),  # a trailing newline is no change
        *code("import matplotlib.pyplot as plt", "x = 1"),  # inserted by the student
        *code("X = np.ones(3)", "def f(): ...", "check(X)  "),
    ]
    assert compare_cells(GIVEN, cells) == []


def test_an_edited_cell_is_named_by_its_position_in_the_submission() -> None:
    cells = [
        *code("import numpy as np", "print('mine')"),
        *code("X = np.ones(4)"),  # edited, one cell later than in the student version
        *code("check(X)"),
    ]
    assert compare_cells(GIVEN, cells) == [CellChange(5, 3, "edited")]


def test_a_rewritten_cell_still_tagged_given_is_edited_and_an_absent_one_deleted() -> None:
    cells = [
        *code("import numpy as np"),
        *code("Y = 7  # something else entirely", tags=("given",)),
        *code("def my_own(): return 1"),
    ]
    assert compare_cells(GIVEN, cells) == [
        CellChange(5, 2, "edited"),
        CellChange(9, None, "deleted"),
    ]


class SeenExecution:
    """The execution stage: records the notebook each student's run was given."""

    def __init__(self) -> None:
        self.notebooks: dict[str, dict[str, Any]] = {}

    def __call__(self, sub: Submission, rubric: Rubric, expected: Expected, **_: Any) -> Executed:
        nb_path = next(p for p in sub.files if p.suffix == ".ipynb")
        nb = json.loads(nb_path.read_text(encoding="utf-8"))
        self.notebooks[sub.student] = nb
        markdown = tuple(
            "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
            for c in nb["cells"]
            if c["cell_type"] == "markdown"
        )
        report = ExecutionReport(
            "losses.ipynb", len(nb["cells"]), len(nb["cells"]), (), (), False, False, None, (), 0.1
        )
        return Executed(NotebookRun(report, {}, markdown), None, report, None, None)


def grade(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, policy: str) -> SeenExecution:
    seen = SeenExecution()
    monkeypatch.setattr(grader.batch, "execute_submission", seen)
    monkeypatch.setattr(grader.batch, "preflight", lambda *a, **k: None)
    monkeypatch.setattr(grader.batch, "sandbox_warnings", lambda mode: ())
    subs = write_batch(tmp_path / "subs", ("alice", "frank"))
    rubric = load_rubric(write_rubric(tmp_path / "rubric", policy=policy))
    grade_batch(subs, rubric, tmp_path / "out", reporter=Reporter(lambda _: None))
    return seen


def setup_cell(nb: dict[str, Any]) -> str:
    source = nb["cells"][1]["source"]
    return "".join(source) if isinstance(source, list) else str(source)


@pytest.mark.parametrize("policy", ["warn", "run_original"])
def test_an_edited_given_cell_is_warned_and_with_run_original_the_original_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, policy: str
) -> None:
    seen = grade(tmp_path, monkeypatch, policy)
    out = tmp_path / "out"
    frank = read_result(out / "results" / "frank.json")
    alice = read_result(out / "results" / "alice.json")
    assert alice.integrity is None
    assert frank.integrity is not None
    given = frank.integrity["given_cells"]
    assert [{k: c[k] for k in ("given", "cell", "change")} for c in given["cells"]] == [
        {"given": 2, "cell": 2, "change": "edited"}
    ]
    original = hashlib.sha256(SETUP.strip("\n").encode()).hexdigest()
    assert given["cells"][0]["given_sha256"] == original
    assert given["cells"][0]["cell_sha256"] not in (original, None)
    assert given["ran_original"] is (policy == "run_original")
    validate(record_to_dict(frank))
    # the report names the cell and what ran; the summary lists the student
    notes = student_view(frank)["integrity"]
    assert len(notes) == 1 and "cell 2 (given cell 2) was edited" in notes[0]
    assert ("original given cells were run" in notes[0]) is (policy == "run_original")
    assert [g["student"] for g in summary_view([alice, frank])["given_cells"]] == ["frank"]
    # what ran: the student's edit, or the original cell; the student's file is untouched
    ran = setup_cell(seen.notebooks["frank"])
    if policy == "run_original":
        assert ran == SETUP
    else:
        assert "size=(4, 5)" in ran
    on_disk = json.loads((tmp_path / "subs" / "frank" / "losses.ipynb").read_text())
    assert "size=(4, 5)" in setup_cell(on_disk)
    assert setup_cell(seen.notebooks["alice"]) == SETUP
    # grading is otherwise the same: never a score change from integrity
    assert frank.score == alice.score


def test_with_run_original_the_sandbox_runs_the_original_given_cell(tmp_path: Path) -> None:
    """The prepared copy goes through the sandbox's one entry like any submission: the
    data frank's edit shrank to 4 rows has the student version's 8 again."""
    mode = "strict" if os.geteuid() == 0 and detect_protections().complete else "off"
    subs = {s.student: s for s in discover(write_batch(tmp_path / "subs", ("frank",)))}
    rubric_path = write_rubric(tmp_path / "rubric", policy="run_original")
    rubric = load_rubric(rubric_path)
    check = GivenCheck.for_rubric(
        rubric.path, rubric.similarity.starter, rubric.similarity.given_cells, rubric.notebook
    )
    rows = {}
    for label, sub in (
        ("student", subs["frank"]),
        ("original", check.prepare(subs["frank"], tmp_path / "out")),
    ):
        executed = execute(
            ExecutionRequest(
                files=SubmissionFiles(
                    root=sub.path,
                    paths=tuple(p.relative_to(sub.path).as_posix() for p in sub.files),
                ),
                notebook=NotebookTask("losses.ipynb", harvest=(AnswerRequest("X"),)),
                limits=ExecutionLimits(cell_timeout=60, harvest_timeout=60),
                mode=mode,
            )
        )
        assert executed.run is not None and not executed.execution.failures
        rows[label] = executed.run.answers["X"].value.shape
    assert rows == {"student": (4, 5), "original": (8, 5)}


def test_a_moved_given_cell_is_not_a_change() -> None:
    cells = code("X = np.ones(3)", "import numpy as np", "check(X)")
    assert compare_cells(GIVEN, cells) == []
