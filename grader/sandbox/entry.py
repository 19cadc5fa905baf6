"""The sandbox's one entry: :func:`execute` an :class:`ExecutionRequest`, get :class:`Executed`."""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from pathlib import Path

from grader.models import ExecutionReport, ModuleRun, NotebookRun
from grader.sandbox.errors import UnsupportedRequest
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
    cannot run yet, and other :class:`~grader.errors.SandboxError` subclasses when the
    sandbox itself fails here (no kernel starts, strict mode without its protections).
    """
    refuse_unsupported(request)
    scratch_root = Path(tempfile.mkdtemp(prefix="grade-", dir=request.workroot))
    try:
        run: NotebookRun | None = None
        problem: str | None = None
        execution: ExecutionReport | None = None
        if request.notebook is not None:
            run, problem, execution = notebook_stage(request, scratch_root)
        module_run: ModuleRun | None = None
        module_problem: str | None = None
        warnings: list[str] = []
        if request.module is not None:
            module_run, module_problem, warnings = module_stage(request, scratch_root / "module")
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
        return Executed(run, problem, execution, module_run, module_problem)
    finally:
        shutil.rmtree(scratch_root, ignore_errors=True)


def refuse_unsupported(request: ExecutionRequest) -> None:
    """Raise :class:`UnsupportedRequest` for a field this sandbox does not implement yet,
    rather than running without it."""
    if request.devices.gpus:
        raise UnsupportedRequest(
            f"{request.devices.gpus} GPU(s) asked for: the sandbox is CPU only"
        )
