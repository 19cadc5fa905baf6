"""A batch: every submission of a folder, graded incrementally on local threads or a cluster.

Plans each submission against the cache (:mod:`grader.cache`): a result still valid is
kept, a cached execution is re-scored, the rest run through :mod:`grader.pipeline`'s
stages. ``OUT/batch.json`` (the :class:`Batch`) is written first; each result is written
atomically to ``OUT/results/`` as it finishes, so an interrupted batch resumes where it
stopped; then the gradebook, once, with the instructor's overrides applied.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from grader import __version__
from grader.atomic import sweep
from grader.cache import (
    GradeCache,
    execution_fingerprint,
    execution_key,
    result_key,
)
from grader.datasets import resolve as resolve_datasets
from grader.errors import GraderError
from grader.intake import Handin, Intake, Layout, read_submissions
from grader.integrity.given import GivenCheck
from grader.lms import finalize, no_submission
from grader.models import Batch, GradeRecord, Submission
from grader.overrides import OVERRIDES_FILE, with_overrides
from grader.pipeline import (
    crashed_record,
    execute_submission,
    execution_limits,
    for_cache,
    provenance,
    score_execution,
    submission_hash,
)
from grader.progress import How, Reporter
from grader.reference import Expected, load_expected
from grader.results import RESULTS_DIR, record_from_dict, write_batch, write_result
from grader.roster import Roster
from grader.rubric import Rubric, refuse_unbindable_files
from grader.sandbox import CELL_PROGRESS, Executed, Mode, gpus, preflight, sandbox_warnings

if TYPE_CHECKING:  # only for annotations: a local batch never imports Dask
    from grader.cluster import ClusterRun

#: Called with each result as it is written (or kept) and the batch's facts.
OnResult = Callable[[GradeRecord, Batch], None]
#: Joins the LMS's facts (name, roster, late policy) onto a scored record.
Finalize = Callable[[GradeRecord], GradeRecord]


@dataclass(frozen=True)
class BatchResult:
    """What a batch produced."""

    records: list[GradeRecord]  # as written to results/, sorted by student
    out_dir: Path
    batch: Batch
    # records with the instructor's overrides applied: the gradebook's and the reports'
    graded: list[GradeRecord] = dataclasses.field(default_factory=list)
    # how many results were executed / re-scored from a cached execution / kept unchanged
    counts: dict[str, int] = dataclasses.field(default_factory=dict)

    @property
    def warnings(self) -> tuple[str, ...]:
        """The sandbox protections that were off."""
        return self.batch.warnings


@dataclass(frozen=True)
class _Plan:
    """What a batch knows about one submission before grading it."""

    sub: Submission
    exec_key: str | None  # None when the submission could not even be hashed
    result_key: str | None
    finished: GradeRecord | None  # a still-valid result on disk
    cached: bool  # an execution is in the cache
    run: Submission | None = None  # what executes, when not ``sub`` (given cells restored)


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
    on_result: OnResult | None = None,
    layout: Layout | None = None,
    roster: Roster | None = None,
    compare_with: Sequence[Path] = (),
) -> BatchResult:
    """Grade every submission under ``submissions_dir`` (a folder or an LMS ``.zip``,
    read by :mod:`grader.intake` as ``layout``, detected when None); write ``OUT/batch.json``, the
    results and the gradebook.

    Incremental: a submission whose result under the same keys is already on disk is
    kept as is; one whose execution is cached is re-scored without running anything;
    only the rest run (see :mod:`grader.cache`). ``force`` ignores the cache. Each result
    is written atomically as soon as it is ready, so an interrupted batch resumes where
    it stopped. The gradebook is written last, with ``OUT/overrides.yaml`` applied when
    it exists (:class:`grader.overrides.OverridesError`, after every result is written,
    when it is invalid).

    ``cluster`` (a Dask scheduler address, ``tcp://host:8786``) runs the executions on
    that cluster's workers instead of ``jobs`` local threads (:mod:`grader.cluster`);
    everything else - cache, results, progress, gradebook - stays here and is the same.

    ``on_result(record, batch)`` is called in this thread with each result as written
    (kept ones included) and the :class:`Batch`, so reports can be rendered while
    grading goes on.

    Every record gets the LMS's facts (:func:`grader.lms.finalize`: display name, roster
    entry, late penalty); with a ``roster``, each roster student with no hand-in gets a
    zero result marked "no submission", and hand-ins not on it are graded and flagged.

    Then the integrity stage (:mod:`grader.integrity`), which changes no score: changed
    given cells are noted in each result (and restored before execution when the rubric
    asks), and the batch's similarity (with the ``compare_with`` earlier output folders'
    students too) is written to ``OUT/similarity.csv``.

    Raises :class:`grader.datasets.DatasetError` before anything runs when a data set
    the rubric names (``datasets:``) is not in the data cache.
    """
    report = reporter if reporter is not None else Reporter(log)
    # A data set missing from the cache fails every run alike: refuse before any runs.
    resolve_datasets(rubric.datasets)
    # Files at /content/... or /kaggle/input/... need binds this sandbox may not make.
    refuse_unbindable_files(rubric, sandbox if cluster is None else "strict")
    intake = read_submissions(submissions_dir, out_dir, layout)
    for warning in intake.warnings:
        report.warning(warning)
    subs = list(intake.submissions)
    finish_record = _finalizer(intake, rubric, roster)
    # On a cluster the sandbox that matters is the workers': they report it below.
    warnings = sandbox_warnings(sandbox) if cluster is None else ()
    for warning in warnings:
        report.warning(warning)
    expected = load_expected(rubric)
    given = GivenCheck.for_rubric(
        rubric.path, rubric.similarity.starter, rubric.similarity.given_cells, rubric.notebook
    )
    results_dir = out_dir / RESULTS_DIR
    results_dir.mkdir(parents=True, exist_ok=True)
    cache = GradeCache(out_dir)
    cache.sweep()
    sweep((results_dir,))  # results/ holds the students' results and nothing else
    fingerprint = execution_fingerprint(
        rubric,
        rubric.calls(expected.values),
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
        batch = Batch(
            assignment=rubric.assignment,
            rubric_sha256=rubric.sha256,
            reference_sha256=expected.sha256,
            sandbox=sandbox,
            warnings=tuple(warnings),
            cluster=cluster,
            grader_version=__version__,
            started_at=datetime.now(UTC).isoformat(timespec="seconds"),
            layout=intake.layout,
            roster=None if roster is None else str(roster.path),
        )
        write_batch(out_dir, batch)
        if roster is not None:
            _flag_strangers(intake, roster, report)
        result = _dispatch(
            subs,
            rubric,
            expected,
            out_dir,
            cache,
            fingerprint,
            batch,
            jobs=jobs,
            sandbox=sandbox,
            force=force,
            report=report,
            remote=remote,
            on_result=on_result,
            finalize=finish_record,
            given=given,
        )
        if roster is not None:
            result = _add_missing(result, intake, rubric, expected, roster, batch, on_result)
        _similarity(subs, rubric, out_dir, compare_with, report)
        return result
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
    batch: Batch,
    *,
    jobs: int,
    sandbox: Mode,
    force: bool,
    report: Reporter,
    remote: ClusterRun | None,
    on_result: OnResult | None,
    finalize: Finalize = lambda r: r,
    given: GivenCheck | None = None,
) -> BatchResult:
    """Plan, then grade what is not finished on local threads or on the cluster, writing
    each result, the cache entries and the progress as each one finishes."""
    results_dir = out_dir / RESULTS_DIR
    warnings = batch.warnings

    def plan(sub: Submission) -> _Plan:
        try:
            run = given.prepare(sub, out_dir) if given is not None else sub
            ekey = execution_key(submission_hash(run), fingerprint)
        except OSError:
            return _Plan(sub, None, None, None, False)
        rkey = result_key(ekey, rubric.sha256, expected.sha256, warnings)
        finished = None if force else cache.finished_result(sub.student, rkey, results_dir)
        cached = not force and finished is None and cache.execution_path(ekey).is_file()
        return _Plan(sub, ekey, rkey, finished, cached, None if run is sub else run)

    plans = [plan(sub) for sub in subs]
    if any(p.finished is None and not p.cached for p in plans):
        if remote is None:
            preflight(sandbox, execution_limits(rubric))
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
                cache.store_execution(p.exec_key, for_cache(executed))

    def one(p: _Plan, executed: Executed | None = None) -> tuple[GradeRecord, How]:
        started = time.monotonic()
        how: How = "rescored"
        try:
            if executed is None and p.cached and p.exec_key:
                executed = cache.load_execution(p.exec_key)
            if executed is None:
                how = "executed"
                student = p.sub.student
                token = CELL_PROGRESS.set(lambda n, total: report.cell(student, n, total))
                try:
                    executed = execute_submission(p.run or p.sub, rubric, expected, sandbox=sandbox)
                finally:
                    CELL_PROGRESS.reset(token)
                    report.cell(student, 0, 0)
                store(p, executed)
            record = score_execution(p.sub, rubric, expected, executed, started)
        except Exception as exc:
            record = crashed_record(p.sub, rubric, expected, exc)
            crashed.add(p.sub.student)
        return with_warnings(record), how

    records: list[GradeRecord] = []
    counts = dict.fromkeys(("executed", "rescored", "cached"), 0)

    def finish(p: _Plan, record: GradeRecord, how: How) -> None:
        integrity = given.section(p.sub) if given is not None else None
        if integrity is not None:
            record = dataclasses.replace(
                record, integrity={**(record.integrity or {}), **integrity}
            )
        record = finalize(record)
        path = write_result(results_dir, record)
        failed = record.student in crashed
        if p.result_key is not None and not failed:
            # a grader failure is retried by the next run, not kept
            cache.mark_result(record.student, p.result_key, path)
        records.append(record)
        counts[how] += 1
        report.done(record, how, failed)
        if on_result is not None:
            on_result(record, batch)

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
                    futures[remote.submit(p.run or p.sub)] = i
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
                kept = finalize(p.finished)
                if (kept.lms, kept.late, kept.score) != (
                    p.finished.lms,
                    p.finished.late,
                    p.finished.score,
                ):
                    # the roster or an extension changed: same grading, new LMS facts
                    path = write_result(results_dir, kept)
                    if p.result_key is not None:
                        cache.mark_result(kept.student, p.result_key, path)
                records.append(kept)
                counts["cached"] += 1
                report.done(kept, "cached")
                if on_result is not None:
                    on_result(kept, batch)
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
    graded = with_overrides(records, out_dir / OVERRIDES_FILE)
    from grader.gradebook import write_gradebook  # pandas, only once the batch is done

    write_gradebook(graded, out_dir / "gradebook.csv")
    from grader.review import after_grading

    after_grading(out_dir, graded)  # the results' review sections and OUT/index.html
    return BatchResult(records, out_dir, batch, graded, counts)


def _similarity(
    subs: Sequence[Submission],
    rubric: Rubric,
    out_dir: Path,
    compare_with: Sequence[Path],
    report: Reporter,
) -> None:
    """The batch's similarity (:mod:`grader.integrity`); its failure is a warning, never
    the batch's."""
    from grader.integrity.run import similarity_for_batch

    try:
        pairs = similarity_for_batch(subs, rubric, out_dir, compare_with)
    except GraderError as exc:
        report.warning(f"similarity not computed: {exc}")
        return
    flagged = sum(1 for p in pairs if p.flagged)
    if flagged:
        report.warning(
            f"{flagged} pair(s) of submissions flagged as similar: see {out_dir}/similarity.csv"
        )


def _finalizer(intake: Intake, rubric: Rubric, roster: Roster | None) -> Finalize:
    """The function joining each record with its hand-in, roster entry and late policy."""
    handins: dict[str, Handin] = {h.student: h for h in intake.handins}
    entries = roster.by_id() if roster is not None else {}

    def apply(record: GradeRecord) -> GradeRecord:
        return finalize(
            record,
            handins.get(record.student),
            layout=intake.layout,
            entry=entries.get(record.student),
            on_roster=None if roster is None else record.student in entries,
            policy=rubric.late,
        )

    return apply


def _flag_strangers(intake: Intake, roster: Roster, report: Reporter) -> None:
    """Warn about hand-ins whose id the roster does not list (graded all the same)."""
    known = roster.by_id()
    strangers = [h.student for h in intake.handins if h.student not in known]
    if strangers:
        report.warning(
            f"{len(strangers)} submission(s) not on the roster {roster.path} (graded and "
            f"flagged): {', '.join(strangers[:10])}" + (" ..." if len(strangers) > 10 else "")
        )


def _add_missing(
    result: BatchResult,
    intake: Intake,
    rubric: Rubric,
    expected: Expected,
    roster: Roster,
    batch: Batch,
    on_result: OnResult | None,
) -> BatchResult:
    """Zero results for roster students who handed in nothing, written beside the rest
    and added to the records and the gradebook."""
    handed_in = {h.student for h in intake.handins}
    missing = [e for e in roster.entries if e.id not in handed_in]
    if not missing:
        return result
    top = sum(c.max_points(expected.values) for c in rubric.checks())
    stub = Submission(student="", path=result.out_dir, files=())
    zeros = [
        no_submission(
            e.id,
            e,
            layout=intake.layout,
            assignment=rubric.assignment,
            title=rubric.title,
            course=rubric.course,
            max_score=round(top, 2),
            provenance=provenance(stub, rubric, expected),
        )
        for e in missing
    ]
    for record in zeros:
        write_result(result.out_dir / RESULTS_DIR, record)
        if on_result is not None:
            on_result(record, batch)
    records = sorted([*result.records, *zeros], key=lambda r: r.student)
    graded = with_overrides(records, result.out_dir / OVERRIDES_FILE)
    from grader.gradebook import write_gradebook

    write_gradebook(graded, result.out_dir / "gradebook.csv")
    from grader.review import after_grading

    after_grading(result.out_dir, graded)
    counts = {**result.counts, "missing": len(zeros)}
    return dataclasses.replace(result, records=records, graded=graded, counts=counts)


def plan_jobs(jobs: int, gpu_units: int) -> int:
    """Submissions graded at once: ``jobs`` (the cores), but with GPUs lent no more than
    the GPU units, since each concurrent job holds a whole unit (a second CUDA context
    on a unit would cost its 300-500 MB and share the GPU with another student)."""
    return max(1, min(jobs, gpu_units)) if gpu_units else jobs


def lend_gpus(
    rubric: Rubric,
    count: int | None,
    jobs: int,
    *,
    inventory: gpus.GpuInventory | None = None,
    log: Callable[[str], None] = print,
) -> int:
    """Lend ``count`` of this machine's GPU units (None: all) to the batch's jobs, for
    ``grade --gpus``; the job count to use. Raises :class:`GraderError` for a rubric
    that does not declare ``devices: gpu`` or a machine with fewer units."""
    if rubric.devices != "gpu":
        raise GraderError(
            f"{rubric.path}: --gpus given, but the rubric does not declare `devices: gpu` "
            "(GPUs are lent only to rubrics that ask for them); add it or drop --gpus"
        )
    found = inventory if inventory is not None else gpus.detect()
    if not found.units or (count is not None and count > len(found.units)):
        raise GraderError(
            f"--gpus {'all' if count is None else count}: this machine has "
            f"{len(found.units)} NVIDIA GPU unit(s) the grader can use (nvidia-smi -L, "
            "/dev/nvidia*); see docs/guide/gpu.md"
        )
    lent = gpus.configure(count, found)
    planned = plan_jobs(jobs, lent.size)
    names = ", ".join(u.name for u in lent.inventory.units[: lent.size])
    log(f"GPUs: {lent.size} lent ({names}); {planned} submission(s) at once")
    return planned
