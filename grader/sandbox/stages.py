"""The two stages of an execution: the notebook in its kernel, the module in its workers.

Each stage makes its own scratch copy of the submission, finds the file to run in it
(:mod:`grader.sandbox.scratch`), opens one session (warm or cold,
:func:`grader.sandbox.warm_or_cold.open_session`) and runs the notebook runner or the
module runner through it. What the student's code did comes back as plain data; only a
grader-side problem raises.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from grader.models import AnswerRequest, Call, ExecutionReport, ModuleRun, NotebookRun
from grader.sandbox import confine
from grader.sandbox.gpus import GpuGrant, GpuMonitor
from grader.sandbox.kernel_client import read_habit_notes
from grader.sandbox.limits import MIB, ExecutionLimits
from grader.sandbox.module import _plain_env as plain_worker_env
from grader.sandbox.module import run_module
from grader.sandbox.nbfile import NotebookFormatError
from grader.sandbox.notebook import run_notebook
from grader.sandbox.protections import OFF, detect_protections
from grader.sandbox.provided import AbsoluteBind, Bind, Placed, place_provided
from grader.sandbox.records import DatasetBind, ExecutionRequest, Mode
from grader.sandbox.scratch import copy_to_scratch, locate_module, locate_notebook
from grader.sandbox.warm_or_cold import open_session


def notebook_in_session(
    notebook: Path,
    work: Path,
    outbox: Path,
    harvest: Sequence[AnswerRequest],
    limits: ExecutionLimits,
    mode: Mode,
    *,
    frameworks: Sequence[str] = (),
    seed: int = 0,
    budgets: Mapping[int | str, float] | None = None,
    warm: bool | None = None,
    provided: Sequence[Bind] = (),
    absolute: Sequence[AbsoluteBind] = (),
    calls: Sequence[Call] = (),
    grant: GpuGrant | None = None,
    datasets: Sequence[DatasetBind] = (),
    devices: list[dict[str, Any]] | None = None,
    cuda_on_cpu: bool = True,
) -> tuple[NotebookRun, str | None]:
    """Run ``notebook`` (in ``work``) with its kernel in one session, then make ``calls``
    of the functions it defines in that kernel (a new one after a crash, in the same
    session); the run and the sandbox limit that stopped it, if any (``warm`` as in
    ``open_session``; ``provided``: read-only binds,
    :func:`grader.sandbox.provided.place_provided`, and ``absolute`` those bound at
    absolute paths such as ``/kaggle/input/...``; ``grant``: the GPUs lent to the run,
    whose use is appended to ``devices``; ``datasets``: data sets bound read-only)."""
    with contextlib.ExitStack() as stack:
        box = stack.enter_context(
            open_session(
                work,
                outbox,
                limits,
                mode,
                frameworks,
                warm=warm,
                provided=provided,
                grant=grant,
                datasets=datasets,
                absolute=absolute,
            )
        )
        monitor = None
        if grant is not None:
            pids = getattr(box, "pids", None)
            monitor = stack.enter_context(
                GpuMonitor(
                    grant.units,
                    pids if callable(pids) else set,
                    memory_cap_mb=limits.gpu_memory_mb,
                )
            )
        run = run_notebook(
            notebook,
            work,
            outbox,
            harvest,
            limits,
            seed=seed,
            launcher=box.launcher,
            transport=box.transport,
            runtime_dir=box.runtime,
            env={**confine.launcher_env(), **off_env(box, mode)},
            budgets=budgets,
            calls=calls,
            limit_hit=box.limit_hit,
            cuda_on_cpu=cuda_on_cpu,
        )
        hit = box.limit_hit()
    if monitor is not None and devices is not None:
        devices.append(monitor.usage())
    return run, hit


def notebook_stage(
    request: ExecutionRequest, root: Path, grant: GpuGrant | None = None
) -> tuple[NotebookRun | None, str | None, ExecutionReport, dict[str, Any] | None]:
    """Run the notebook: its run (None when nothing ran), why not, the report and the
    GPU use (with ``grant``, the GPUs lent to it)."""
    used: list[dict[str, Any]] = []
    task = request.notebook
    assert task is not None
    work, outbox = root / "work", root / "outbox"
    work.mkdir()
    outbox.mkdir()
    warnings = copy_to_scratch(request.files, work)
    located = locate_notebook(request.files, task.wanted, work)
    warnings.extend(located.warnings)
    run: NotebookRun | None = None
    problem = located.problem
    if located.path is not None:
        placed = provide(request, work, located.path.parent)
        warnings.extend(placed.warnings)
        try:
            run, limit = notebook_in_session(
                located.path,
                work,
                outbox,
                task.harvest,
                request.limits,
                request.mode,
                frameworks=request.frameworks,
                seed=request.seed,
                budgets=task.cell_budgets,
                provided=placed.binds,
                absolute=placed.absolute,
                calls=task.calls,
                grant=grant,
                datasets=request.datasets,
                devices=used,
                cuda_on_cpu=request.devices.policy != "strict",
            )
        except NotebookFormatError as exc:
            problem = str(exc)
        else:
            if limit is not None:
                run = with_limit(run, limit)
    if run is None:
        name = located.path.name if located.path is not None else None
        return (
            None,
            problem,
            ExecutionReport.not_run(name, (*warnings, problem or "the notebook did not run")),
            used[0] if used else None,
        )
    execution = dataclasses.replace(run.execution, warnings=(*warnings, *run.execution.warnings))
    return run, problem, execution, with_habit_notes(used[0] if used else None, outbox)


def with_habit_notes(devices: dict[str, Any] | None, outbox: Path) -> dict[str, Any] | None:
    """The result's ``devices`` section with ``cuda_requested_on_cpu`` ({count, examples})
    added when the notebook asked for CUDA and ran on the CPU (:mod:`grader.harness.shims`)."""
    cuda = read_habit_notes(outbox).get("cuda_requested_on_cpu")
    if cuda is None:
        return devices
    return {**(devices or {"kind": "cpu"}), "cuda_requested_on_cpu": cuda}


def module_stage(
    request: ExecutionRequest, root: Path, grant: GpuGrant | None = None
) -> tuple[ModuleRun | None, str | None, list[str]]:
    """Import the module and make every call: the run, the problem, warnings (``grant``:
    the GPUs lent to the execution, exposed to the workers too)."""
    task = request.module
    assert task is not None
    work, outbox = root / "work", root / "outbox"
    work.mkdir(parents=True)
    outbox.mkdir()
    warnings = copy_to_scratch(request.files, work)
    located = locate_module(task.wanted, work)
    warnings.extend(located.warnings)
    if located.path is None:
        missing = located.problem or f"no {task.wanted} in the submission"
        return None, missing, [*warnings, missing]
    placed = provide(request, work, located.path.parent)
    warnings.extend(placed.warnings)
    # Every worker of the run (restarts included) shares this session's cgroup and scratch.
    with open_session(
        work,
        outbox,
        request.limits,
        request.mode,
        request.frameworks,
        provided=placed.binds,
        grant=grant,
        datasets=request.datasets,
        absolute=placed.absolute,
    ) as box:
        module_run = run_module(
            located.path,
            work,
            outbox,
            box.runtime / "inbox",
            task.calls,
            request.limits,
            launcher=box.worker_launcher,
            env=box.worker_env() or off_worker_env(box, request.mode),
            limit_hit=box.limit_hit,
        )
    problem = module_run.import_error
    if problem is not None:
        warnings.append(problem)
    return module_run, problem, [*warnings, *module_run.warnings]


def off_env(box: object, mode: Mode) -> dict[str, str]:
    """With the sandbox off, the variables the run needs (data sets, lent GPUs), which
    a sandboxed session sets itself; nothing otherwise."""
    return dict(getattr(box, "run_env", {})) if mode == "off" else {}


def off_worker_env(box: object, mode: Mode) -> dict[str, str] | None:
    """A module worker's environment with the sandbox off: the runner's plain one plus
    :func:`off_env`'s variables (None: the runner's plain one as it is)."""
    extra = off_env(box, mode)
    return {**plain_worker_env(), **extra} if extra else None


def provide(request: ExecutionRequest, work: Path, base: Path) -> Placed:
    """Put the request's provided files into the scratch ``work``, relative to ``base``:
    bound read-only by the session where there are mount namespaces, copied otherwise."""
    if not request.provided:
        return Placed()
    protections = OFF if request.mode == "off" else detect_protections()
    return place_provided(
        request.provided,
        work,
        base,
        copy=not protections.bubblewrap,
        max_bytes=request.limits.provided_mb * MIB,
        other_uid=protections.unprivileged_uid,
    )


def with_limit(run: NotebookRun, limit: str) -> NotebookRun:
    """Name the sandbox limit that stopped the kernel, in words, with the cell (or the
    notebook function whose call hit it)."""
    ex = run.execution
    died = [f.cell for f in ex.failures if f.kind in ("kernel_died", "limit")]
    # A call of a function the notebook defines may be what hit it (its message says so).
    stopped = [
        r.message.split(" stopped the kernel ")[0]
        for r in run.calls.values()
        if r.message.endswith(f"stopped the kernel (it hit {limit})")
    ]
    where = f" in cell {died[-1]}" if died else f" in a call of {stopped[0]}" if stopped else ""
    failures = tuple(
        dataclasses.replace(f, kind="limit", ename="LimitExceeded", evalue=f"stopped at {limit}")
        if f.kind == "kernel_died"
        else f
        for f in ex.failures
    )
    answers = {
        name: dataclasses.replace(
            a, message=a.message.replace("the kernel died", f"it hit {limit}")
        )
        for name, a in run.answers.items()
    }
    execution = dataclasses.replace(ex, failures=failures, limit_hit=f"stopped at {limit}{where}")
    return dataclasses.replace(run, execution=execution, answers=answers)
