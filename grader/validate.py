"""``grade validate``: a rubric is usable and its own solution earns full marks.

Each kind of problem is found by one function returning sentences (empty when sound),
and :func:`validate_rubric` runs them in order; a problem says what is wrong, where
(the file, the cell, the check) and what to do.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from grader.checks.base import CheckSpec
from grader.datasets import DatasetError
from grader.datasets import resolve as resolve_datasets
from grader.discover import files_under
from grader.errors import ReferenceComputationError
from grader.models import ExecutionReport, GradeRecord, Submission
from grader.pipeline import grade_submission
from grader.reference import compute_values, load_expected, reference_path
from grader.rubric import Question, Rubric, load_rubric, missing_packages, refuse_unbindable_files
from grader.sandbox import Mode, sandbox_warnings


def validate_rubric(
    name_or_path: str, sandbox: Mode = "strict", log: Callable[[str], None] = print
) -> list[str]:
    """Problems found (empty when the rubric is sound).

    Schema errors raise RubricError (the CLI prints them with file and line); no provided
    file may show the reference (:func:`provided_leaks`); the reference must compute
    every expected value (:func:`expected_problems` names the check and the reference
    function that failed); the solution folder named by ``solution:`` must run without a
    failed cell (:func:`execution_problems`) and earn full marks on every automatically
    graded check (a check that ``needs_review`` is marked by an instructor, so it only
    needs to find its answer: see
    :func:`solution_problems`).
    """
    rubric = load_rubric(name_or_path)
    log(f"{rubric.path}: schema OK ({len(rubric.checks())} checks)")
    leaks = provided_leaks(rubric)
    if leaks:
        return leaks
    try:  # the named data sets must be in the data cache before anything runs
        for found in resolve_datasets(rubric.datasets):
            log(f"data set {found.name}: {found.files} file(s) in {found.folder}")
    except DatasetError as exc:
        return [str(exc)]
    for line in rules_listing(rubric):
        log(line)
    try:
        expected = load_expected(rubric, use_cache=False)
    except ReferenceComputationError as exc:
        return expected_problems(rubric, exc)
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
    refuse_unbindable_files(rubric, sandbox)
    record = grade_submission(sub, rubric, expected, sandbox=sandbox)
    log(f"solution {rubric.solution.name}: {record.score:g}/{record.max_score:g}")
    problems: list[str] = []
    problems += missing_packages(rubric)
    problems += execution_problems(rubric, record.execution)
    problems += solution_problems(rubric, record)
    return problems


def execution_problems(rubric: Rubric, execution: ExecutionReport) -> list[str]:
    """Why the solution did not run cleanly: each failed cell (an exception, a timeout, a
    dead kernel, a limit) and a module that could not be imported.

    A failed cell is a problem even when every check still passes: a student's notebook
    runs on after a failed cell, so a later answer may be found while the failed cell's
    own answers are not, and the students' copy fails the same way (a data file missing
    from ``files:``, a path that exists only on the instructor's machine).
    """
    where = rubric.solution if rubric.solution is not None else rubric.path.parent
    notebook = where / (execution.notebook or rubric.notebook or "")
    problems = []
    for failure in execution.failures:
        what = {
            "error": f"raised {failure.ename}: {failure.evalue}",
            "timeout": f"timed out ({failure.evalue})",
            "kernel_died": f"killed the kernel ({failure.evalue})",
            "limit": f"hit a limit ({failure.evalue})",
        }[failure.kind]
        advice = (
            "the solution must run from top to bottom without errors: fix the cell, or "
            "provide what it reads (a data file it opens belongs under the rubric's "
            "`files:`, with a path relative to the notebook)"
            if failure.kind == "error"
            else "the solution must run within the rubric's `limits:`: make the cell "
            "faster or smaller, or raise the limit"
        )
        problems.append(f"solution notebook {notebook}: cell {failure.cell} {what}; {advice}")
    if execution.module_problem is not None:
        module = where / (execution.module or rubric.module or "")
        problems.append(
            f"solution module {module}: {execution.module_problem}; the solution's module "
            "must import cleanly"
        )
    return problems


def expected_problems(rubric: Rubric, error: ReferenceComputationError) -> list[str]:
    """Which expected values cannot be computed, found after ``error`` stopped
    :func:`grader.reference.load_expected`: the reference's ``compute()`` itself, or
    each check whose own computation (its case generator and reference function, say)
    fails, named with the reference functions it uses and the error; or a check whose
    value ``compute()`` does not return. Each is computed
    anew in the pinned child process, so this costs time only when something failed."""
    path = reference_path(rubric)
    try:
        values = compute_values(path, dataclasses.replace(rubric, questions=()))
    except ReferenceComputationError as exc:
        users = [c.id for c in rubric.checks() if c.needs_expected]
        return [
            f"reference {path}: compute() raised {_error_of(exc)}, so no expected value can "
            f"be computed (checks {', '.join(users) or 'none'} compare with its values); "
            "fix compute() and run `grade validate` again"
        ]
    problems = []
    for spec in rubric.checks():
        if type(spec).compute_expected is CheckSpec.compute_expected:
            if spec.needs_expected and spec.reference_key not in values:
                problems.append(
                    f"{spec.id}: compute() in {path} returns no value under "
                    f"{spec.reference_key!r}; add it to the dict compute() returns, or set "
                    "the check's `expected:` to the key that holds its value"
                )
            continue
        alone = dataclasses.replace(rubric, questions=(Question("_", "", "", (spec,)),))
        try:
            compute_values(path, alone)
        except ReferenceComputationError as exc:
            used = ", ".join(f"{key} {name}" for key, name in reference_functions(spec))
            problems.append(
                f"{spec.id}: its expected value cannot be computed "
                f"({used + ' in ' if used else ''}{path}): {_error_of(exc)}; fix the "
                "reference so it runs on its own cases, then run `grade validate` again"
            )
    return problems or [str(error)]


#: Spec keys that name a function of the reference module, in words.
_REFERENCE_KEYS = {
    "cases": "case generator",
    "reference": "reference function",
    "public_cases": "public case generator",
    "search": "search function",
}


def reference_functions(spec: object) -> list[tuple[str, str]]:
    """``(role, name)`` of every reference function a check's spec names."""
    found = []
    for key, role in _REFERENCE_KEYS.items():
        name = getattr(spec, key, None)
        if isinstance(name, str):
            found.append((role, f"{name}()"))
    return found


def _error_of(exc: ReferenceComputationError) -> str:
    """The error the reference raised (``ValueError: …``), without the path and the
    words the computing child puts before it (:mod:`grader.reference_child`)."""
    text = str(exc)
    for marker in ("compute() failed: ", " failed: "):
        _head, sep, tail = text.partition(marker)
        if sep:
            return tail
    return text


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
