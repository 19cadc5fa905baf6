"""The sandbox's one entry: :func:`execute` an :class:`ExecutionRequest`, get :class:`Executed`."""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from pathlib import Path

from grader.models import ExecutionReport, ModuleRun, NotebookRun
from grader.sandbox import gpus
from grader.sandbox.errors import UnsupportedRequest
from grader.sandbox.gpus import GpuGrant
from grader.sandbox.records import Executed, ExecutionRequest
from grader.sandbox.stages import module_stage, notebook_stage


def execute(request: ExecutionRequest) -> Executed:
    """Run one submission's notebook and/or module, each in its own sandbox.

    The notebook runs cell by cell in a Jupyter kernel that harvests the requested
    answers, then makes the requested calls of the functions it defines; the module is
    imported in a worker process that makes the requested calls.
    Each gets its own fresh copy of the submission, its own session (warm when possible)
    and the request's limits. The outcome is plain data; what the student's code did
    (errors, time-outs, a limit, a missing file) is reported in it, never raised.

    Raises :class:`~grader.sandbox.errors.UnsupportedRequest` for a request this sandbox
    cannot run (GPUs asked for where the grader has fewer), and other
    :class:`~grader.errors.SandboxError` subclasses when the sandbox itself fails here (no
    kernel starts, strict mode without its protections).
    """
    refuse_unsupported(request)
    if not request.devices.gpus:
        return _execute(request, None)
    # Each concurrent job holds its own units for the whole run (none are shared).
    with gpus.pool().lease(request.devices.gpus, request.devices.memory_mb) as grant:
        return _execute(request, grant)


def _execute(request: ExecutionRequest, grant: GpuGrant | None) -> Executed:
    scratch_root = Path(tempfile.mkdtemp(prefix="grade-", dir=request.workroot))
    devices: dict[str, object] | None = None
    try:
        run: NotebookRun | None = None
        problem: str | None = None
        execution: ExecutionReport | None = None
        if request.notebook is not None:
            run, problem, execution, devices = notebook_stage(request, scratch_root, grant)
        module_run: ModuleRun | None = None
        module_problem: str | None = None
        warnings: list[str] = []
        if request.module is not None:
            module_run, module_problem, warnings = module_stage(
                request, scratch_root / "module", grant
            )
        if execution is None:
            execution = ExecutionReport.not_run()
        execution = dataclasses.replace(
            execution,
            warnings=tuple(dict.fromkeys((*execution.warnings, *warnings))),
            module=module_run.module if module_run is not None else None,
            module_problem=module_problem,
            duration_s=round(
                execution.duration_s + (module_run.duration_s if module_run else 0.0), 3
            ),
        )
        return Executed(run, problem, execution, module_run, module_problem, devices)
    finally:
        shutil.rmtree(scratch_root, ignore_errors=True)


def refuse_unsupported(request: ExecutionRequest) -> None:
    """Raise :class:`UnsupportedRequest` for a field this sandbox does not implement yet,
    rather than running without it."""
    if request.devices.gpus < 0:
        raise UnsupportedRequest(f"{request.devices.gpus} GPUs asked for")
    have = gpus.pool().size if request.devices.gpus else 0
    if request.devices.gpus > have:
        raise UnsupportedRequest(
            f"{request.devices.gpus} GPU(s) asked for, but the grader has {have} (no NVIDIA "
            "driver, or fewer given with `grade --gpus`)"
        )
