"""The explicit sequence of stages for one submission and for a batch.

EXECUTION: submission → scratch copy → notebook run (own kernel) and/or module calls
(own worker) → answers, as plain data (cached, :mod:`grader.cache`); SCORING: checks →
scores → ``results/<student>.json``; then the gradebook. One submission's failure, however
strange, becomes that student's result and never stops the batch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import platform
import shutil
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from grader import __version__
from grader.cache import (
    Executed,
    GradeCache,
    execution_fingerprint,
    execution_key,
    record_from_dict,
    result_key,
)
from grader.checks import REGISTRY, CheckContext
from grader.checks.base import CheckSpec
from grader.discover import discover
from grader.errors import GraderError
from grader.models import (
    CheckResult,
    ExecutionReport,
    GradeRecord,
    ModuleRun,
    NotebookRun,
    Provenance,
    Submission,
)
from grader.progress import How, Reporter
from grader.reference import Expected, load_expected, torch_version
from grader.results import record_to_dict, write_json_atomic
from grader.rubric import Rubric
from grader.sandbox import run as sandbox_run
from grader.sandbox.isolation import Mode, SandboxSession
from grader.sandbox.module import ModuleLimits, missing_module_message, run_module
from grader.sandbox.notebook import NotebookFormatError, RunLimits
from grader.sandbox.run import (
    KERNEL_SEED,
    sandbox_env,
    sandbox_limits,
    with_limit,
)
from grader.sandbox.run import preflight as preflight  # re-exported (grader.cluster)
from grader.sandbox.run import sandbox_warnings as sandbox_warnings  # re-exported
from grader.scoring import question_result, total

if TYPE_CHECKING:  # only for annotations: a local batch never imports Dask
    from grader.cluster import ClusterRun


@dataclass(frozen=True)
class Located:
    """The notebook or module file found in the scratch copy, or why there is none."""

    path: Path | None
    problem: str | None
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class BatchResult:
    """What a batch produced."""

    records: list[GradeRecord]
    out_dir: Path
    warnings: tuple[str, ...] = ()  # sandbox protections that were off
    # how many results were executed / re-scored from a cached execution / kept unchanged
    counts: dict[str, int] = dataclasses.field(default_factory=dict)


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


def _for_cache(executed: Executed) -> Executed:
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
    with SandboxSession(
        work, outbox, None, sandbox_limits(rubric), sandbox, extra_env=sandbox_env()
    ) as box:
        assert box.runtime_dir is not None
        module_run = run_module(
            located.path,
            work,
            outbox,
            box.runtime_dir / "inbox",
            calls,
            limits,
            launcher=box.launcher,
            env=box.env() if sandbox != "off" else None,
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


@dataclass(frozen=True)
class _Plan:
    """What a batch knows about one submission before grading it."""

    sub: Submission
    exec_key: str | None  # None when the submission could not even be hashed
    result_key: str | None
    finished: dict[str, Any] | None  # a still-valid result on disk
    cached: bool  # an execution is in the cache


def grade_batch(
    submissions_dir: Path,
    rubric: Rubric,
    out_dir: Path,
    *,
    jobs: int = 1,
    sandbox: Mode = "strict",
    log: Callable[[str], None] = print,
    force: bool = False,
    reporter: Reporter | None = None,
    cluster: str | None = None,
) -> BatchResult:
    """Grade every submission under ``submissions_dir``; write results and the gradebook.

    Incremental: a submission whose result under the same keys is already on disk is
    kept as is; one whose execution is cached is re-scored without running anything;
    only the rest run (see :mod:`grader.cache`). ``force`` ignores the cache. Each result
    is written atomically as soon as it is ready, so an interrupted batch resumes where
    it stopped.

    ``cluster`` (a Dask scheduler address, ``tcp://host:8786``) runs the executions on
    that cluster's workers instead of ``jobs`` local threads (:mod:`grader.cluster`);
    everything else - cache, results, progress, gradebook - stays here and is the same.
    """
    report = reporter if reporter is not None else Reporter(log)
    subs = discover(submissions_dir)
    # On a cluster the sandbox that matters is the workers': they report it below.
    warnings = sandbox_warnings(sandbox) if cluster is None else ()
    for warning in warnings:
        report.warning(warning)
    expected = load_expected(rubric)
    results_dir = out_dir / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    cache = GradeCache(out_dir)
    cache.sweep()
    fingerprint = execution_fingerprint(
        rubric,
        rubric.calls(expected.values) if rubric.module is not None else [],
        expected.sha256,
        sandbox,
    )
    remote = None
    if cluster is not None:
        # Imported here so a local batch never imports Dask.
        try:
            from grader.cluster import BatchIdentity, ClusterRun
        except ImportError as exc:
            raise GraderError(
                f"--cluster needs Dask's `distributed` ({exc}): install the grader with its "
                "`cluster` extra (pip install -e '.[cluster]')"
            ) from exc

        identity = BatchIdentity(
            str(rubric.path), rubric.sha256, expected.sha256, fingerprint, sandbox
        )
        remote = ClusterRun.open(cluster, identity)
    try:
        if remote is not None:
            warnings = remote.check_workers()
            for warning in warnings:
                report.warning(warning)
        return _dispatch(
            subs,
            rubric,
            expected,
            out_dir,
            cache,
            fingerprint,
            warnings,
            jobs=jobs,
            sandbox=sandbox,
            force=force,
            report=report,
            remote=remote,
        )
    finally:
        if remote is not None:
            remote.close()


def _dispatch(
    subs: list[Submission],
    rubric: Rubric,
    expected: Expected,
    out_dir: Path,
    cache: GradeCache,
    fingerprint: str,
    warnings: tuple[str, ...],
    *,
    jobs: int,
    sandbox: Mode,
    force: bool,
    report: Reporter,
    remote: ClusterRun | None,
) -> BatchResult:
    """Plan, then grade what is not finished on local threads or on the cluster, writing
    each result, the cache entries and the progress as each one finishes."""
    results_dir = out_dir / "results"

    def plan(sub: Submission) -> _Plan:
        try:
            ekey = execution_key(submission_hash(sub), fingerprint)
        except OSError:
            return _Plan(sub, None, None, None, False)
        rkey = result_key(ekey, rubric.sha256, expected.sha256, warnings)
        finished = None if force else cache.finished_result(sub.student, rkey, results_dir)
        cached = not force and finished is None and cache.execution_path(ekey).is_file()
        return _Plan(sub, ekey, rkey, finished, cached)

    plans = [plan(sub) for sub in subs]
    if any(p.finished is None and not p.cached for p in plans):
        if remote is None:
            preflight(rubric, sandbox)
        else:
            remote.check_workers(preflight_kernel=True)

    crashed: set[str] = set()

    def with_warnings(record: GradeRecord) -> GradeRecord:
        if not warnings:
            return record
        execution = dataclasses.replace(
            record.execution, warnings=(*record.execution.warnings, *warnings)
        )
        return dataclasses.replace(record, execution=execution)

    def store(p: _Plan, executed: Executed) -> None:
        if p.exec_key is not None:
            with contextlib.suppress(OSError):  # a full disk only costs a re-run
                cache.store_execution(p.exec_key, _for_cache(executed))

    def one(p: _Plan, executed: Executed | None = None) -> tuple[GradeRecord, How]:
        started = time.monotonic()
        how: How = "rescored"
        try:
            if executed is None and p.cached and p.exec_key:
                executed = cache.load_execution(p.exec_key)
            if executed is None:
                how = "executed"
                executed = execute_submission(p.sub, rubric, expected, sandbox=sandbox)
                store(p, executed)
            record = score_execution(p.sub, rubric, expected, executed, started)
        except Exception as exc:
            record = crashed_record(p.sub, rubric, expected, exc)
            crashed.add(p.sub.student)
        return with_warnings(record), how

    records: list[GradeRecord] = []
    counts = dict.fromkeys(("executed", "rescored", "cached"), 0)

    def finish(p: _Plan, record: GradeRecord, how: How) -> None:
        data = record_to_dict(record)
        path = results_dir / f"{record.student}.json"
        write_json_atomic(path, data)
        if p.result_key is not None and record.student not in crashed:
            # a grader failure is retried by the next run, not kept
            cache.mark_result(record.student, p.result_key, path)
        records.append(record)
        counts[how] += 1
        report.done(data, how)

    def on_cluster(remote: ClusterRun, todo: list[_Plan]) -> None:
        """Executions go to the cluster; re-scoring a cached execution stays here (it
        reads the local cache, runs no student code) while the cluster works."""
        from grader.cluster import RemoteError

        rescore: list[tuple[_Plan, Executed]] = []
        sent: list[_Plan] = []
        for p in todo:
            executed = cache.load_execution(p.exec_key) if p.cached and p.exec_key else None
            if executed is not None:
                rescore.append((p, executed))
            else:
                sent.append(p)
        futures = {}
        try:
            for i, p in enumerate(sent):
                try:
                    futures[remote.submit(p.sub)] = i
                except OSError as exc:  # unreadable files: that student's crash, as locally
                    crashed.add(p.sub.student)
                    finish(
                        p, with_warnings(crashed_record(p.sub, rubric, expected, exc)), "executed"
                    )
            for p, executed in rescore:
                finish(p, *one(p, executed))
            for i, outcome in remote.results(futures):
                p = sent[i]
                if outcome.record is None:
                    crashed.add(p.sub.student)
                    error = RemoteError(outcome.error or "the worker returned no result")
                    record = crashed_record(p.sub, rubric, expected, error)
                else:
                    record = record_from_dict(outcome.record)
                    if outcome.executed is not None:
                        store(p, outcome.executed)
                finish(p, with_warnings(record), "executed")
        except BaseException:
            remote.cancel(list(futures))
            raise

    report.start(len(plans))
    try:
        for p in plans:
            if p.finished is not None:
                records.append(record_from_dict(p.finished))
                counts["cached"] += 1
                report.done(p.finished, "cached")
        todo = [p for p in plans if p.finished is None]
        if remote is not None:
            on_cluster(remote, todo)
        else:
            with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
                futures = {pool.submit(one, p): p for p in todo}
                try:
                    for future in as_completed(futures):
                        record, how = future.result()
                        finish(futures[future], record, how)
                except BaseException:
                    for future in futures:
                        future.cancel()
                    raise
    finally:
        report.close()
    records.sort(key=lambda r: r.student)
    from grader.gradebook import write_gradebook

    write_gradebook([record_to_dict(r) for r in records], out_dir / "gradebook.csv")
    return BatchResult(records=records, out_dir=out_dir, warnings=warnings, counts=counts)
