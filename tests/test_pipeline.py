"""One submission's stages (grader/pipeline.py) without a kernel: the request it hands
the sandbox, scoring over plain data, what survives a check's own bug, the record of a
submission the grader failed on, and the submission hash."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from grader.checks.base import REGISTRY, CheckContext
from grader.models import Answer, CheckResult, ExecutionReport, NotebookRun, Submission
from grader.pipeline import (
    crashed_record,
    execution_request,
    for_cache,
    grade_check,
    score_execution,
    submission_hash,
)
from grader.reference import Expected, load_expected
from grader.rubric import Rubric, load_rubric
from grader.sandbox import Executed

Q2 = ("q2_O", "q2_G", "q2_dL_dX", "q2_dL_dF")


@pytest.fixture(scope="module")
def hw3() -> tuple[Rubric, Expected]:
    rubric = load_rubric("hw3")
    return rubric, load_expected(rubric)


def folder(tmp_path: Path, files: dict[str, bytes]) -> Submission:
    root = tmp_path / "alice"
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    paths = tuple(sorted(root / name for name in files))
    return Submission("alice", root, paths)


def executed(answers: dict[str, Answer]) -> Executed:
    report = ExecutionReport.not_run("hw3.ipynb")
    run = NotebookRun(report, answers, code=("x = 1",), code_cells=((1, "x = 1"),))
    return Executed(run, None, report, None, None)


def test_the_submission_hash_covers_paths_and_bytes(tmp_path: Path) -> None:
    one = folder(tmp_path / "a", {"hw3.ipynb": b"{}", "data/x.txt": b"1"})
    same = folder(tmp_path / "b", {"hw3.ipynb": b"{}", "data/x.txt": b"1"})
    edited = folder(tmp_path / "c", {"hw3.ipynb": b"{}", "data/x.txt": b"2"})
    moved = folder(tmp_path / "d", {"hw3.ipynb": b"{}", "data/y.txt": b"1"})
    assert submission_hash(one) == submission_hash(same)  # the folder's place does not count
    assert len({submission_hash(s) for s in (one, edited, moved)}) == 3


def test_the_request_names_the_files_the_answers_and_the_limits(
    tmp_path: Path, hw3: tuple[Rubric, Expected]
) -> None:
    rubric, expected = hw3
    sub = folder(tmp_path, {"hw3.ipynb": b"{}", "notes/readme.md": b"hi"})
    request = execution_request(sub, rubric, expected, sandbox="permissive")
    assert request.files.root == sub.path and not request.files.single_file
    assert sorted(request.files.paths) == ["hw3.ipynb", "notes/readme.md"]
    assert request.notebook is not None and request.notebook.wanted == "hw3.ipynb"
    assert {r.name for r in request.notebook.harvest} >= set(Q2)
    assert request.module is None  # HW3 is a notebook alone
    assert request.limits.cell_timeout == rubric.limits.cell_timeout
    assert request.mode == "permissive"

    single = Submission("bob", tmp_path / "bob.ipynb", (tmp_path / "bob.ipynb",), True)
    (tmp_path / "bob.ipynb").write_text("{}")
    lone = execution_request(single, rubric, expected)
    assert lone.files.single_file and lone.files.paths == ("bob.ipynb",)
    assert lone.files.root == tmp_path


def test_scoring_reads_only_the_plain_data(hw3: tuple[Rubric, Expected]) -> None:
    rubric, expected = hw3
    answers = {
        name: Answer(name, "ok", np.asarray(expected.values[name]), "ndarray") for name in Q2
    }
    answers["q2_G"] = Answer("q2_G", "ok", 0.5, "float")  # the handout's 0.25 is right
    record = score_execution(Submission("s", Path("s"), ()), rubric, expected, executed(answers), 0)
    checks = {c.id: c for q in record.questions for c in q.checks}
    assert [checks[n].status for n in Q2] == ["pass", "fail", "pass", "pass"]
    # Q2 is worth 4 + 2 + 7 + 7 points; q2_G's 2 are lost.
    q2 = next(q for q in record.questions if q.id == "q2")
    assert (q2.score, q2.max_score) == (18, 20)
    assert record.score == sum(q.score for q in record.questions)
    assert checks["q3_table"].status == "fail"  # never harvested: missing, not an error


def test_a_check_that_raises_becomes_an_error_result(
    hw3: tuple[Rubric, Expected], monkeypatch: pytest.MonkeyPatch
) -> None:
    rubric, expected = hw3
    spec = next(c for c in rubric.checks() if c.id == "q2_O")

    def broken(spec: object, ctx: CheckContext) -> CheckResult:
        raise ZeroDivisionError("a bug in the check")

    monkeypatch.setitem(REGISTRY, "value", dataclasses.replace(REGISTRY["value"], grade=broken))
    ctx = CheckContext(answers={}, expected=expected.values, markdown=(), execution=None)
    res = grade_check(spec, ctx)
    assert (res.status, res.score, res.max_score) == ("error", 0.0, 4)
    assert "ZeroDivisionError: a bug in the check" in res.message
    assert res.details is not None and "traceback" in res.details


def test_the_cache_keeps_no_student_code() -> None:
    kept = for_cache(executed({}))
    assert kept.run is not None and kept.run.code == () and kept.run.code_cells == ()
    nothing = Executed(None, "no notebook", ExecutionReport.not_run(), None, None)
    assert for_cache(nothing) is nothing


def test_a_submission_the_grader_failed_on_scores_nothing_and_says_so(
    hw3: tuple[Rubric, Expected],
) -> None:
    rubric, expected = hw3
    record = crashed_record(
        Submission("s", Path("s"), ()), rubric, expected, RuntimeError("disk full")
    )
    assert record.score == 0 and record.max_score == 90
    assert (
        "the grader failed on this submission (RuntimeError: disk full)"
        in (record.execution.warnings[0])
    )
    assert all(c.score == 0 for q in record.questions for c in q.checks)
