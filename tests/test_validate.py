"""``grade validate``: the behavioural rules each check enforces, listed; and checks
treated by capability, not type name: a check that ``needs_review`` only has to find its
answer in the solution, and a check that does not ``needs_expected`` needs no value from
the reference."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.cli import main
from grader.models import (
    CellFailure,
    CheckResult,
    ExecutionReport,
    GradeRecord,
    Provenance,
    QuestionResult,
)
from grader.reference import missing_expected
from grader.rubric import Rubric, load_rubric
from grader.validate import execution_problems, rules_listing, solution_problems, validate_rubric


def _checks_with(rubric: str, words: str) -> set[str]:
    """Ids of the checks whose listed rules mention ``words``."""
    found: set[str] = set()
    current = ""
    for line in rules_listing(load_rubric(rubric)):
        if line.startswith("  ") and not line.startswith("    "):
            current = line.strip().split(" ")[0].split("/")[1]
        elif words in line:
            found.add(current)
    return found


def test_in_place_rules_only_where_the_handouts_state_them() -> None:
    # hw2.md says nothing about in-place changes; hw1.md says it of dropout alone
    # ("must not modify h1 in place"); hw4.md of batchnorm_forward ("The inputs must not
    # be modified in place"), not of Grad-CAM.
    assert _checks_with("hw2", "in place") == set()
    assert _checks_with("hw1", "in place") == {"dropout"}
    assert _checks_with("hw4", "in place") == {"batchnorm_forward"}


def test_every_check_is_listed_with_its_rules_or_none() -> None:
    rubric = load_rubric("hw2")
    lines = rules_listing(rubric)
    heads = [line for line in lines if line.startswith("  q")]
    assert len(heads) == len(rubric.checks())
    assert "  q1/relu_forward (function):" in lines
    dropout = lines[lines.index("  q1/dropout_backward (function):") + 2]
    assert "(out / x), whatever its mask and scale" in dropout


RUBRIC = """assignment: x
title: T
reference: hw3
notebook: x.ipynb
questions:
  - id: q1
    checks:
      - {id: essay, type: text, heading: Q1, points: 3}
      - {id: plot, type: figure, heading: Q2, points: 1}
      - {id: a, type: value, answer: a, points: 2}
"""


def rubric(tmp_path: Path) -> Rubric:
    path = tmp_path / "r.yaml"
    path.write_text(RUBRIC)
    return load_rubric(path)


def record(*checks: CheckResult) -> GradeRecord:
    execution = ExecutionReport(
        notebook="x.ipynb",
        cells_total=1,
        cells_run=1,
        cells_not_run=(),
        failures=(),
        timed_out=False,
        kernel_died=False,
        limit_hit=None,
        warnings=(),
        duration_s=0.1,
    )
    provenance = Provenance("0" * 64, "0" * 64, "0" * 64, "v", "3.11", "t", "n")
    score = sum(c.score for c in checks)
    top = sum(c.max_score for c in checks)
    question = QuestionResult("q1", "Q", score, top, checks)
    return GradeRecord("solution", "x", "T", "", score, top, (question,), execution, provenance)


def check(cid: str, ctype: str, score: float, top: float, status: str) -> CheckResult:
    return CheckResult(cid, ctype, score, top, status, f"{cid} says so")  # type: ignore[arg-type]


def test_a_review_check_needs_only_its_answer_found(tmp_path: Path) -> None:
    sound = record(
        check("essay", "text", 1.2, 3, "manual"),  # a low suggested mark is no problem
        check("plot", "figure", 1, 1, "pass"),
        check("a", "value", 2, 2, "pass"),
    )
    assert solution_problems(rubric(tmp_path), sound) == []


def test_a_review_check_whose_answer_is_missing_is_a_problem(tmp_path: Path) -> None:
    graded = record(
        check("essay", "text", 0, 3, "fail"),
        check("plot", "figure", 0, 1, "fail"),  # no review: full marks required
        check("a", "value", 2, 2, "pass"),
    )
    assert solution_problems(rubric(tmp_path), graded) == [
        "essay: essay says so",
        "plot: solution earns 0/1: plot says so",
    ]


def test_short_automatic_checks_are_problems_even_if_manual(tmp_path: Path) -> None:
    # the status alone does not exempt a check: only the spec's capability does
    graded = record(
        check("essay", "text", 3, 3, "manual"),
        check("plot", "figure", 1, 1, "pass"),
        check("a", "value", 1, 2, "manual"),
    )
    assert solution_problems(rubric(tmp_path), graded) == ["a: solution earns 1/2: a says so"]


def test_only_checks_needing_an_expected_value_need_the_reference(tmp_path: Path) -> None:
    r = rubric(tmp_path)
    assert missing_expected(r, {}) == ["a"]  # text and figure say everything in the rubric
    assert missing_expected(r, {"a": 1.0}) == []


# --- a failed cell, an expected value that cannot be computed ------------------------

DATA = Path(__file__).parent / "data" / "validate"


def failure(cell: int, ename: str, evalue: str) -> ExecutionReport:
    return ExecutionReport(
        notebook="x.ipynb",
        cells_total=3,
        cells_run=3,
        cells_not_run=(),
        failures=(CellFailure(cell, "error", ename, evalue, "Traceback …"),),
        timed_out=False,
        kernel_died=False,
        limit_hit=None,
        warnings=(),
        duration_s=0.1,
    )


def test_a_failed_cell_is_a_problem_naming_notebook_cell_and_error(tmp_path: Path) -> None:
    r = rubric(tmp_path)
    problems = execution_problems(r, failure(2, "FileNotFoundError", "data/tokens.npy"))
    assert len(problems) == 1
    assert problems[0].startswith(f"solution notebook {tmp_path / 'x.ipynb'}: cell 2 raised ")
    assert "FileNotFoundError: data/tokens.npy" in problems[0]
    assert "`files:`" in problems[0]  # what to do


def test_a_clean_run_is_no_problem(tmp_path: Path) -> None:
    assert execution_problems(rubric(tmp_path), record().execution) == []


def test_validate_fails_a_full_marks_solution_with_a_failed_cell() -> None:
    # Issue 13: a solution whose data cell raised FileNotFoundError passed validate.
    lines: list[str] = []
    problems = validate_rubric(str(DATA / "failed_cell.yaml"), log=lines.append)
    assert "solution solution: 1/1" in lines  # the check itself passes
    notebook = DATA / "solution" / "tiny.ipynb"
    assert len(problems) == 1
    assert problems[0].startswith(f"solution notebook {notebook}: cell 2 raised FileNotFoundError")


def test_the_cli_exits_non_zero_and_prints_the_problem(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(DATA / "failed_cell.yaml")]) == 1
    out = capsys.readouterr().out
    assert "FAIL solution notebook" in out and "cell 2 raised FileNotFoundError" in out


def test_a_failing_case_generator_names_check_function_and_error() -> None:
    problems = validate_rubric(str(DATA / "failing_cases.yaml"), log=lambda _: None)
    assert problems == [
        f"double: its expected value cannot be computed (case generator broken_cases(), "
        f"reference function double() in {DATA / 'tiny_ref.py'}): ValueError: no case of "
        "size 0 can be made; fix the reference so it runs on its own cases, then run "
        "`grade validate` again"
    ]


def test_a_failing_compute_names_the_checks_that_need_it() -> None:
    problems = validate_rubric(str(DATA / "failing_compute.yaml"), log=lambda _: None)
    assert problems == [
        f"reference {DATA / 'broken_ref.py'}: compute() raised KeyError: 'learning_rate', so "
        "no expected value can be computed (checks a compare with its values); fix compute() "
        "and run `grade validate` again"
    ]


def test_a_value_compute_does_not_return_names_the_check_and_the_key() -> None:
    problems = validate_rubric(str(DATA / "missing_value.yaml"), log=lambda _: None)
    assert problems == [
        f"b: compute() in {DATA / 'tiny_ref.py'} returns no value under 'b'; add it to the "
        "dict compute() returns, or set the check's `expected:` to the key that holds its value"
    ]


def test_a_data_set_missing_from_the_cache_is_a_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRADER_DATA", str(tmp_path / "data"))
    rubric = tmp_path / "r.yaml"
    rubric.write_text(
        "assignment: x\ntitle: T\nreference: hw3\nnotebook: x.ipynb\ndatasets: [mnist]\n"
        "questions:\n  - id: q1\n    checks:\n      - {id: a, type: value, answer: a, points: 1}\n"
    )
    problems = validate_rubric(str(rubric), log=lambda _: None)
    assert len(problems) == 1
    assert "mnist named by the rubric's `datasets:` are not in the data cache" in problems[0]
