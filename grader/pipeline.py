"""The explicit sequence of stages for one submission.

EXECUTION: submission → scratch copy → notebook run (own kernel) and/or module calls
(own worker) → answers, as plain data (cached, :mod:`grader.cache`); SCORING: checks →
scores → a :class:`GradeRecord`. One submission's failure, however strange, becomes that
student's result and never stops the batch (:mod:`grader.batch` runs many).
"""

from __future__ import annotations

import dataclasses
import hashlib
import platform
import shutil
import tempfile
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from grader import __version__
from grader.cache import (
    Executed,
)
from grader.checks import REGISTRY, CheckContext
from grader.checks.base import CheckSpec
from grader.models import (
    CheckResult,
    ExecutionReport,
    GradeRecord,
    ModuleRun,
    NotebookRun,
    Provenance,
    Submission,
)
from grader.reference import Expected, torch_version
from grader.rubric import Rubric
from grader.sandbox import run as sandbox_run
from grader.sandbox.isolation import Mode
from grader.sandbox.module import ModuleLimits, missing_module_message, run_module
from grader.sandbox.notebook import NotebookFormatError, RunLimits
from grader.sandbox.run import (
    KERNEL_SEED,
    with_limit,
)
from grader.scoring import question_result, total


@dataclass(frozen=True)
class Located:
    """The notebook or module file found in the scratch copy, or why there is none."""

    path: Path | None
    problem: str | None
    warnings: tuple[str, ...] = ()


def submission_hash(sub: Submission) -> str:
    """SHA-256 over each file's relative path and bytes (a symlink: its target text)."""
    digest = hashlib.sha256()
    base = sub.path.parent if sub.is_single_file else sub.path
    for path in sub.files:
        digest.update(str(path.relative_to(base)).encode() + b"\0")
        data = str(path.readlink()).encode() if path.is_symlink() else path.read_bytes()
        digest.update(hashlib.sha256(data).digest())
    return digest.hexdigest()


def copy_to_scratch(sub: Submission, scratch: Path) -> list[str]:
    """Copy the student's files into ``scratch``; symlinks are refused, never followed."""
    warnings = []
    base = sub.path.parent if sub.is_single_file else sub.path
    for path in sub.files:
        rel = path.relative_to(base)
        if path.is_symlink():
            warnings.append(f"{rel} is a symbolic link and was not copied: submit real files")
            continue
        target = scratch / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    return warnings


def locate_notebook(sub: Submission, rubric: Rubric, scratch: Path) -> Located:
    """Find the notebook to grade in the scratch copy, tolerating the usual misnamings."""
    wanted = rubric.notebook or "a notebook"
    if sub.is_single_file:
        if sub.path.suffix.lower() != ".ipynb":
            return Located(None, f"{sub.path.name} is not a Jupyter notebook: submit {wanted}")
        return Located(scratch / sub.path.name, None)
    exact = scratch / wanted
    if exact.is_file():
        return Located(exact, None)
    notebooks = sorted(p for p in scratch.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    if len(notebooks) == 1:
        found = notebooks[0].relative_to(scratch)
        return Located(
            notebooks[0],
            None,
            (f"graded {found}: the handout asks for the notebook to be named {wanted}",),
        )
    present = ", ".join(
        str(p.relative_to(scratch)) for p in sorted(scratch.rglob("*")) if p.is_file()
    )
    if not notebooks:
        return Located(
            None,
            f"no notebook in the submission: expected {wanted} (found: {present or 'nothing'})",
        )
    names = ", ".join(str(p.relative_to(scratch)) for p in notebooks)
    return Located(None, f"several notebooks ({names}) and none named {wanted}: keep one")


def locate_module(sub: Submission, wanted: str, scratch: Path) -> Located:
    """Find the module to import in the scratch copy (``layers.py``), or say what is there.

    A single-file submission of that name is the module itself; in a folder the module
    is taken at the top level, or from the one sub-folder that holds it (an unzipped
    archive), never guessed from other file names.
    """
    exact = scratch / wanted
    if exact.is_file():
        return Located(exact, None)
    matches = sorted(p for p in scratch.rglob(wanted) if p.is_file() and "__MACOSX" not in p.parts)
    if len(matches) == 1:
        found = matches[0].relative_to(scratch)
        return Located(
            matches[0], None, (f"imported {found}: the handout asks for {wanted} at the top level",)
        )
    present = [str(p.relative_to(scratch)) for p in sorted(scratch.rglob("*")) if p.is_file()]
    if matches:
        names = ", ".join(str(p.relative_to(scratch)) for p in matches)
        return Located(None, f"several files named {wanted} ({names}): keep one")
    return Located(None, missing_module_message(wanted, present))


def _not_run(notebook: str | None, warnings: Sequence[str]) -> ExecutionReport:
    """The execution report when no notebook ran (none graded, none found, or unreadable)."""
    return ExecutionReport(
        notebook=notebook,
        cells_total=0,
        cells_run=0,
        cells_not_run=(),
        failures=(),
        timed_out=False,
        kernel_died=False,
        limit_hit=None,
        warnings=tuple(warnings),
        duration_s=0.0,
    )


def grade_check(spec: CheckSpec, ctx: CheckContext) -> CheckResult:
    """Run one registered check; a bug in a check becomes an honest error result."""
    try:
        return REGISTRY[spec.type].grade(spec, ctx)
    except Exception as exc:  # the batch must survive any single comparison
        top = spec.max_points(ctx.expected)
        return CheckResult(
            id=spec.id,
            type=spec.type,
            score=0.0,
            max_score=round(top, 2),
            status="error",
            message=f"the grader could not evaluate this answer ({type(exc).__name__}: {exc}); "
            "ask your instructor to review it",
            details={"traceback": traceback.format_exc(limit=5)},
            prompt=spec.prompt,
        )


def execute_submission(
    sub: Submission,
    rubric: Rubric,
    expected: Expected,
    *,
    workroot: Path | None = None,
    sandbox: Mode = "strict",
) -> Executed:
    """EXECUTION: run one student's notebook and/or module, each in its own sandbox.

    The notebook runs in a Jupyter kernel for the answers it defines; the module is
    imported in a worker process that makes every call the checks ask for. Each gets its
    own fresh copy of the submission. The outcome is plain data (cacheable, see
    :mod:`grader.cache`); no check runs here.
    """
    scratch_root = Path(tempfile.mkdtemp(prefix="grade-", dir=workroot))
    try:
        run: NotebookRun | None = None
        problem: str | None = None
        warnings: list[str] = []
        execution: ExecutionReport | None = None
        if rubric.notebook is not None:
            run, problem, execution = _notebook_stage(sub, rubric, scratch_root, sandbox)
        module_run: ModuleRun | None = None
        module_problem: str | None = None
        if rubric.module is not None:
            module_run, module_problem, mod_warnings = _module_stage(
                sub, rubric, expected, scratch_root / "module", sandbox
            )
            warnings.extend(mod_warnings)
        if execution is None:
            execution = _not_run(None, ())
        execution = dataclasses.replace(
            execution,
            warnings=tuple(dict.fromkeys((*execution.warnings, *warnings))),
            module=module_run.module if module_run is not None else None,
            module_problem=module_problem,
            duration_s=round(
                execution.duration_s + (module_run.duration_s if module_run else 0.0), 3
            ),
        )
        return Executed(run, problem, execution, module_run, module_problem)
    finally:
        shutil.rmtree(scratch_root, ignore_errors=True)


def score_execution(
    sub: Submission, rubric: Rubric, expected: Expected, executed: Executed, started: float
) -> GradeRecord:
    """SCORING: every check of the rubric over an execution's plain data."""
    run = executed.run
    ctx = CheckContext(
        answers=run.answers if run else {},
        expected=expected.values,
        markdown=run.markdown if run else (),
        execution=executed.execution,
        notebook_problem=(executed.problem or "the notebook did not run") if run is None else None,
        calls=executed.module_run.results if executed.module_run is not None else {},
        module_problem=executed.module_problem,
        # cells that displayed an image, with their headings (the figure check)
        extras={"image_cells": run.image_cells} if run else {},
    )
    return _record(sub, rubric, expected, ctx, executed.execution, started)


def for_cache(executed: Executed) -> Executed:
    """What is kept of an execution: everything scoring reads, but not the student's code
    cell sources (no check reads them; the output folder holds no student code)."""
    if executed.run is None:
        return executed
    return dataclasses.replace(
        executed, run=dataclasses.replace(executed.run, code=(), code_cells=())
    )


def grade_submission(
    sub: Submission,
    rubric: Rubric,
    expected: Expected,
    *,
    workroot: Path | None = None,
    sandbox: Mode = "strict",
) -> GradeRecord:
    """Execute one submission and score it (no cache): the two stages in a row."""
    started = time.monotonic()
    executed = execute_submission(sub, rubric, expected, workroot=workroot, sandbox=sandbox)
    return score_execution(sub, rubric, expected, executed, started)


def _notebook_stage(
    sub: Submission, rubric: Rubric, scratch_root: Path, sandbox: Mode
) -> tuple[NotebookRun | None, str | None, ExecutionReport]:
    """Run the notebook: its run (None when nothing ran), why not, and the report."""
    assert rubric.notebook is not None
    work, outbox = scratch_root / "work", scratch_root / "outbox"
    work.mkdir()
    outbox.mkdir()
    warnings = copy_to_scratch(sub, work)
    located = locate_notebook(sub, rubric, work)
    warnings.extend(located.warnings)
    run: NotebookRun | None = None
    problem = located.problem
    if located.path is not None:
        limits = RunLimits(
            cell_timeout_s=rubric.limits.cell_timeout,
            notebook_timeout_s=rubric.limits.notebook_timeout,
        )
        try:
            run, limit = sandbox_run.run_sandboxed(
                located.path, work, outbox, rubric, limits, sandbox
            )
        except NotebookFormatError as exc:
            problem = str(exc)
        else:
            if limit is not None:
                run = with_limit(run, limit)
    name = located.path.name if located.path is not None else None
    if run is not None:
        execution = run.execution
        execution = ExecutionReport(
            **{**execution.__dict__, "warnings": (*warnings, *execution.warnings)}
        )
    else:
        execution = _not_run(name, (*warnings, problem or "the notebook did not run"))
    return run, problem, execution


def _module_stage(
    sub: Submission, rubric: Rubric, expected: Expected, root: Path, sandbox: Mode
) -> tuple[ModuleRun | None, str | None, list[str]]:
    """Import the module and make every check's calls: the run, the problem, warnings."""
    assert rubric.module is not None
    work, outbox = root / "work", root / "outbox"
    work.mkdir(parents=True)
    outbox.mkdir()
    warnings = copy_to_scratch(sub, work)
    located = locate_module(sub, rubric.module, work)
    warnings.extend(located.warnings)
    if located.path is None:
        missing = located.problem or f"no {rubric.module} in the submission"
        return None, missing, [*warnings, missing]
    calls = rubric.calls(expected.values)
    limits = ModuleLimits(
        import_timeout_s=rubric.limits.import_timeout,
        call_timeout_s=rubric.limits.call_timeout,
        total_timeout_s=rubric.limits.module_timeout,
    )
    # Warm (a fork of this thread's template) or cold, as the notebook stage chooses.
    with sandbox_run.module_sandbox(work, outbox, rubric, sandbox) as box:
        module_run = run_module(
            located.path,
            work,
            outbox,
            box.inbox,
            calls,
            limits,
            launcher=box.launcher,
            env=box.env,
            limit_hit=box.limit_hit,
        )
    problem = module_run.import_error
    if problem is not None:
        warnings.append(problem)
    return module_run, problem, [*warnings, *module_run.warnings]


def _record(
    sub: Submission,
    rubric: Rubric,
    expected: Expected,
    ctx: CheckContext,
    execution: ExecutionReport,
    started: float,
) -> GradeRecord:
    questions = [
        question_result(q.id, q.title, [grade_check(c, ctx) for c in q.checks])
        for q in rubric.questions
    ]
    score, max_score = total(questions)
    if execution.duration_s == 0.0:
        execution = ExecutionReport(
            **{**execution.__dict__, "duration_s": round(time.monotonic() - started, 3)}
        )
    return GradeRecord(
        student=sub.student,
        assignment=rubric.assignment,
        title=rubric.title,
        course=rubric.course,
        score=score,
        max_score=max_score,
        questions=tuple(questions),
        execution=execution,
        provenance=provenance(sub, rubric, expected),
    )


def provenance(sub: Submission, rubric: Rubric, expected: Expected) -> Provenance:
    """Hashes and versions that make a grade reproducible."""

    seeds = {"kernel": KERNEL_SEED}
    for check in rubric.checks():
        for request in check.requests():
            if request.probe is not None:
                seeds[f"probe:{request.name}"] = request.probe.seed
    return Provenance(
        submission_sha256=submission_hash(sub),
        rubric_sha256=rubric.sha256,
        reference_sha256=expected.sha256,
        grader_version=__version__,
        python=platform.python_version(),
        torch=torch_version(),
        numpy=np.__version__,
        seeds=seeds,
        graded_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def crashed_record(
    sub: Submission, rubric: Rubric, expected: Expected, exc: BaseException
) -> GradeRecord:
    """The result written when grading a submission failed inside the grader itself."""
    problem = (
        f"the grader failed on this submission ({type(exc).__name__}: {exc}); "
        "it needs an instructor's attention"
    )
    execution = _not_run(None, (problem,))
    ctx = CheckContext(
        answers={},
        expected=expected.values,
        markdown=(),
        execution=execution,
        notebook_problem=problem,
    )
    return _record(sub, rubric, expected, ctx, execution, time.monotonic())
