"""``grade validate``: a rubric is usable and its own solution earns full marks."""

from __future__ import annotations

from collections.abc import Callable

from grader.discover import files_under
from grader.models import GradeRecord, Submission
from grader.pipeline import grade_submission
from grader.reference import load_expected, reference_path
from grader.rubric import Rubric, load_rubric
from grader.sandbox import Mode, sandbox_warnings


def validate_rubric(
    name_or_path: str, sandbox: Mode = "strict", log: Callable[[str], None] = print
) -> list[str]:
    """Problems found (empty when the rubric is sound).

    Schema errors raise RubricError (the CLI prints them with file and line); no provided
    file may show the reference (:func:`provided_leaks`); the reference must compute
    every expected value; the solution folder named by ``solution:`` must earn full
    marks on every automatically graded check (a check that ``needs_review`` is marked
    by an instructor, so it only needs to find its answer: see
    :func:`solution_problems`).
    """
    rubric = load_rubric(name_or_path)
    log(f"{rubric.path}: schema OK ({len(rubric.checks())} checks)")
    leaks = provided_leaks(rubric)
    if leaks:
        return leaks
    for line in rules_listing(rubric):
        log(line)
    expected = load_expected(rubric, use_cache=False)
    log(f"reference computed {len(expected.values)} values (sha256 {expected.sha256[:12]})")
    log(f"total points: {rubric.max_score(expected.values):g}")
    if rubric.solution is None:
        return ["the rubric names no solution: add `solution: <folder>` so CI can check it"]
    if not rubric.solution.is_dir():
        return [f"solution folder {rubric.solution} does not exist"]
    sub = Submission(
        student=rubric.solution.name, path=rubric.solution, files=files_under(rubric.solution)
    )
    sandbox_warnings(sandbox)
    record = grade_submission(sub, rubric, expected, sandbox=sandbox)
    log(f"solution {rubric.solution.name}: {record.score:g}/{record.max_score:g}")
    return solution_problems(rubric, record)


def provided_leaks(rubric: Rubric) -> list[str]:
    """Provided files (``files:``) that would show students the answers: a provided path
    that is or contains the reference module (loading the rubric already refuses one that
    holds the rubric itself, the solution, or a ``solution/`` or ``golden/`` folder)."""
    if not rubric.provided:
        return []
    reference = reference_path(rubric)
    return [
        f"files: {p.source} is or contains the reference module {reference}: "
        "students would see the answers; provide data only"
        for p in rubric.provided
        if p.source == reference or p.source in reference.parents
    ]


def solution_problems(rubric: Rubric, record: GradeRecord) -> list[str]:
    """Why the rubric's own solution, graded as ``record``, does not show the rubric
    sound: an automatically graded check short of full marks, or a check that needs
    review whose answer was not found (its status is not ``manual``: an instructor marks
    it, so its suggested mark may be anything)."""
    review = {spec.id for spec in rubric.checks() if spec.needs_review}
    problems = []
    for question in record.questions:
        for check in question.checks:
            if check.id in review:
                if check.status != "manual":
                    problems.append(f"{check.id}: {check.message}")
            elif check.score < check.max_score:
                problems.append(
                    f"{check.id}: solution earns {check.score:g}/{check.max_score:g}: "
                    + check.message
                )
    return problems


def rules_listing(rubric: Rubric) -> list[str]:
    """Every check with the behavioural rules it enforces beyond comparing values, so an
    instructor can hold each one against the handout (a rule comes from a rubric key)."""
    lines = ["rules each check enforces besides its comparison:"]
    for question in rubric.questions:
        for check in question.checks:
            rules = check.rules()
            head = f"  {question.id}/{check.id} ({check.type})"
            if not rules:
                lines.append(f"{head}: none")
                continue
            lines.append(f"{head}:")
            lines.extend(f"    - {rule}" for rule in rules)
    return lines
