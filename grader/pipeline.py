"""The explicit sequence of stages for one submission.

EXECUTION: the rubric and the expected values become one :class:`ExecutionRequest`
(:func:`execution_request`: the files, the answers to harvest, the module calls, the
frameworks, one :class:`ExecutionLimits`), which the sandbox runs
(:func:`grader.sandbox.execute`) into plain data (cached, :mod:`grader.cache`);
SCORING: checks → scores → a :class:`GradeRecord`. One submission's failure, however
strange, becomes that student's result and never stops the batch (:mod:`grader.batch`
runs many).
"""

from __future__ import annotations

import dataclasses
import hashlib
import platform
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from grader import __version__
from grader.checks import REGISTRY, CheckContext
from grader.checks.base import CheckSpec
from grader.datasets import resolve as resolve_datasets
from grader.models import (
    CheckResult,
    ExecutionReport,
    GradeRecord,
    Provenance,
    Submission,
)
from grader.reference import Expected, torch_version
from grader.rubric import Rubric, provided_sha256
from grader.sandbox import (
    KERNEL_SEED,
    DeviceRequest,
    Executed,
    ExecutionLimits,
    ExecutionRequest,
    Mode,
    ModuleTask,
    NotebookTask,
    SubmissionFiles,
    execute,
    gpus,
)
from grader.scoring import question_result, total


def submission_hash(sub: Submission) -> str:
    """SHA-256 over each file's relative path and bytes (a symlink: its target text)."""
    digest = hashlib.sha256()
    base = sub.path.parent if sub.is_single_file else sub.path
    for path in sub.files:
        digest.update(str(path.relative_to(base)).encode() + b"\0")
        data = str(path.readlink()).encode() if path.is_symlink() else path.read_bytes()
        digest.update(hashlib.sha256(data).digest())
    return digest.hexdigest()


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


def execution_limits(rubric: Rubric) -> ExecutionLimits:
    """The rubric's limits as the sandbox's one limits record: the only translation (the
    rubric's ``limits:`` keys are :class:`ExecutionLimits` fields of the same names)."""
    return ExecutionLimits(**rubric.limits.model_dump())


def execution_request(
    sub: Submission,
    rubric: Rubric,
    expected: Expected,
    *,
    workroot: Path | None = None,
    sandbox: Mode = "strict",
) -> ExecutionRequest:
    """Everything the sandbox needs to run ``sub`` for ``rubric``: its files, the answers
    every check harvests, the calls of the module's functions and of the notebook's (their
    inputs come from the expected values), the frameworks to preload, the instructor's
    provided files and the limits."""
    base = sub.path.parent if sub.is_single_file else sub.path
    files = SubmissionFiles(
        root=base,
        paths=tuple(p.relative_to(base).as_posix() for p in sub.files),
        single_file=sub.is_single_file,
    )
    notebook = (
        NotebookTask(
            rubric.notebook,
            harvest=tuple(rubric.requests()),
            calls=tuple(rubric.calls(expected.values, "notebook")),
        )
        if rubric.notebook is not None
        else None
    )
    module = (
        ModuleTask(rubric.module, calls=tuple(rubric.calls(expected.values, "module")))
        if rubric.module is not None
        else None
    )
    return ExecutionRequest(
        files=files,
        notebook=notebook,
        module=module,
        frameworks=rubric.frameworks,
        provided=rubric.provided,
        devices=device_request(rubric),
        datasets=tuple(d.bind() for d in resolve_datasets(rubric.datasets)),
        limits=execution_limits(rubric),
        mode=sandbox,
        workroot=workroot,
    )


def device_request(rubric: Rubric) -> DeviceRequest:
    """One whole GPU (or MIG instance) per job for a ``devices: gpu`` rubric when the
    grader was given GPUs (``grade --gpus``); the CPU only otherwise. The rubric's
    ``devices:`` travels along as the request's ``policy``."""
    if rubric.devices == "gpu" and gpus.pool().size:
        return DeviceRequest(gpus=1, memory_mb=rubric.limits.gpu_memory_mb, policy="gpu")
    return DeviceRequest(policy=rubric.devices)


def execute_submission(
    sub: Submission,
    rubric: Rubric,
    expected: Expected,
    *,
    workroot: Path | None = None,
    sandbox: Mode = "strict",
) -> Executed:
    """EXECUTION: run one student's notebook and/or module in the sandbox.

    The outcome is plain data (cacheable, see :mod:`grader.cache`); no check runs here.
    """
    return execute(execution_request(sub, rubric, expected, workroot=workroot, sandbox=sandbox))


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
        notebook_calls=run.calls if run else {},
        module_problem=executed.module_problem,
        # cells that displayed an image, with their headings (the figure check)
        extras={"image_cells": run.image_cells} if run else {},
    )
    record = _record(sub, rubric, expected, ctx, executed.execution, started)
    if executed.devices is not None:  # the GPUs lent and their use
        record = dataclasses.replace(record, devices=dict(executed.devices))
    return record


def for_cache(executed: Executed) -> Executed:
    """What is kept of an execution: everything scoring reads, but not the student's code
    cell sources (no check reads them; the output folder holds no student code but the
    excerpts the similarity evidence quotes, :mod:`grader.integrity`)."""
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
        provided_sha256=provided_sha256(rubric.provided),
    )


def crashed_record(
    sub: Submission, rubric: Rubric, expected: Expected, exc: BaseException
) -> GradeRecord:
    """The result written when grading a submission failed inside the grader itself."""
    problem = (
        f"the grader failed on this submission ({type(exc).__name__}: {exc}); "
        "it needs an instructor's attention"
    )
    execution = ExecutionReport.not_run(None, (problem,))
    ctx = CheckContext(
        answers={},
        expected=expected.values,
        markdown=(),
        execution=execution,
        notebook_problem=problem,
    )
    return _record(sub, rubric, expected, ctx, execution, time.monotonic())
