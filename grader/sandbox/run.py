"""Run one notebook's kernel or module worker in a fresh sandbox: the pipeline's helpers.

:func:`run_sandboxed` starts the kernel either cold (a new ``bwrap`` sandbox and a new
interpreter, :class:`grader.sandbox.isolation.SandboxSession`) or warm (forked from a
template process that already imported the heavy modules, :mod:`grader.sandbox.warm`);
both give the submission its own namespaces, cgroup and scratch. :func:`module_sandbox`
does the same choice for a module worker (HW1/HW2), on the same per-thread template.
:func:`preflight` starts one kernel before a batch; :func:`sandbox_warnings` words what
is missing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from grader.errors import GraderError
from grader.models import AnswerRequest, NotebookRun
from grader.rubric import Rubric
from grader.sandbox import warm as warm_starts
from grader.sandbox.isolation import (
    Limits,
    Mode,
    SandboxSession,
    SandboxUnavailable,
    detect_protections,
)
from grader.sandbox.notebook import KernelStartError, RunLimits, run_notebook

if TYPE_CHECKING:
    from grader.sandbox.warm_session import WarmSession

KERNEL_SEED = 0
# Variables the sandbox imposes on top of its own minimal environment: hash seeding for
# reproducible runs; one BLAS thread per kernel so parallel workers do not fight.
_KERNEL_ENV = {
    "PYTHONHASHSEED": "0",
    "OPENBLAS_NUM_THREADS": "1",
    "JUPYTER_CONFIG_DIR": "/tmp/.jupyter",
}
_PASSTHROUGH = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def sandbox_env() -> dict[str, str]:
    """The extra kernel environment, including OpenBLAS CPU settings some machines need."""
    env = dict(_KERNEL_ENV)
    env.update({k: os.environ[k] for k in _PASSTHROUGH if k in os.environ})
    return env


def sandbox_limits(rubric: Rubric) -> Limits:
    """The rubric's per-submission limits in the sandbox's terms."""
    return Limits(memory_bytes=rubric.limits.memory_mb * 2**20, pids=rubric.limits.processes)


def sandbox_warnings(mode: Mode) -> tuple[str, ...]:
    """What the sandbox cannot protect here, in words; raises when strict mode refuses."""
    if mode == "off":
        return ("the sandbox is off (--sandbox=off): student code ran with the grader's rights",)
    missing = detect_protections().missing()
    if missing and mode == "strict":
        raise GraderError(
            "refusing to run student code without: "
            + "; ".join(missing)
            + " (run ./setup.sh as root, or pass --sandbox=permissive to grade with less "
            "protection)"
        )
    return tuple(f"sandbox protection off: {m}" for m in missing)


def preflight(rubric: Rubric, sandbox: Mode) -> None:
    """Start one sandboxed kernel on an empty notebook before the batch.

    When no kernel can start here (a broken install, a sandbox that cannot bind the
    interpreter), every student would get the same useless result: stop instead. The
    kernel starts cold: a warm template belongs to a grading worker thread.
    """
    import nbformat

    with tempfile.TemporaryDirectory(prefix="grade-preflight-") as tmp:
        work, outbox = Path(tmp) / "work", Path(tmp) / "outbox"
        work.mkdir()
        outbox.mkdir()
        notebook = work / "preflight.ipynb"
        nb = nbformat.v4.new_notebook()  # type: ignore[no-untyped-call]
        nb.cells = [nbformat.v4.new_code_cell("pass")]  # type: ignore[no-untyped-call]
        nbformat.write(nb, notebook)  # type: ignore[no-untyped-call]
        limits = RunLimits(cell_timeout_s=60, notebook_timeout_s=120)
        try:
            run, _ = run_sandboxed(notebook, work, outbox, rubric, limits, sandbox, (), warm=False)
        except (KernelStartError, SandboxUnavailable, OSError) as exc:
            raise GraderError(f"cannot start a sandboxed Python kernel here: {exc}") from exc
        if run.execution.failures:
            failure = run.execution.failures[0]
            raise GraderError(
                f"a sandboxed kernel could not run an empty cell: {failure.ename}: {failure.evalue}"
            )


def run_sandboxed(
    notebook: Path,
    work: Path,
    outbox: Path,
    rubric: Rubric,
    limits: RunLimits,
    mode: Mode,
    requests: Sequence[AnswerRequest] | None = None,
    *,
    warm: bool | None = None,
) -> tuple[NotebookRun, str | None]:
    """Run the notebook with its kernel inside a fresh sandbox; the limit hit, if any.

    ``warm``: ``None`` follows :func:`grader.sandbox.warm.warm_enabled` (``GRADER_WARM``),
    ``False`` forces the cold path, ``True`` asks for the warm path (still cold when
    it is unavailable here).
    """
    wanted = rubric.requests() if requests is None else requests
    env = sandbox_env()

    def run_in(box: WarmSession | SandboxSession, transport: str) -> NotebookRun:
        return run_notebook(
            notebook,
            work,
            outbox,
            wanted,
            limits,
            seed=KERNEL_SEED,
            launcher=box.launcher,
            transport="ipc" if transport == "ipc" else "tcp",
            runtime_dir=box.runtime_dir,
            # the launcher's own environment is visible at /proc/1/environ inside: keep
            # the grader's PATH (home directories, tool locations) out of it.
            env=_worker_env(),
        )

    if warm is not False and mode == "strict" and (warm or _warm_default()):
        template = _template_for(rubric, env) if warm_starts.usable_paths(work, outbox) else None
        if template is not None:
            with template.session(work, outbox, sandbox_limits(rubric)) as wbox:
                return run_in(wbox, "ipc"), wbox.limit_hit()
    with SandboxSession(work, outbox, None, sandbox_limits(rubric), mode, extra_env=env) as box:
        return run_in(box, box.transport), box.limit_hit()


def _warm_default() -> bool:
    return warm_starts.warm_enabled()


def _warm_modules_default() -> bool:
    return warm_starts.MODULES_DEFAULT_ON and warm_starts.warm_enabled()


def _worker_env() -> dict[str, str]:
    # The warm client's (or enter.py's) own environment: the grader's PATH stays out.
    return {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"}


@dataclasses.dataclass(frozen=True)
class ModuleBox:
    """Where a module worker runs: what :func:`grader.sandbox.module.run_module` takes."""

    inbox: Path
    launcher: Callable[[list[str]], list[str]]
    env: dict[str, str] | None
    limit_hit: Callable[[], str | None]
    warm: bool


@contextlib.contextmanager
def module_sandbox(
    work: Path, outbox: Path, rubric: Rubric, mode: Mode, *, warm: bool | None = None
) -> Iterator[ModuleBox]:
    """The sandbox of one submission's module workers (every worker of a run, restarts
    included, shares its cgroup, scratch and outbox), warm or cold.

    ``warm`` as in :func:`run_sandboxed`. Warm: each worker (a restart too) is a new
    fork of this thread's template, running the same worker source as a cold one.
    """
    env = sandbox_env()
    if warm is not False and mode == "strict" and (warm or _warm_modules_default()):
        template = _template_for(rubric, env) if warm_starts.usable_paths(work, outbox) else None
        if template is not None:
            with template.session(work, outbox, sandbox_limits(rubric)) as wbox:
                yield ModuleBox(
                    wbox.runtime_dir / "inbox",
                    wbox.worker_launcher,
                    _worker_env(),
                    wbox.limit_hit,
                    True,
                )
            return
    with SandboxSession(work, outbox, None, sandbox_limits(rubric), mode, extra_env=env) as box:
        assert box.runtime_dir is not None
        yield ModuleBox(
            box.runtime_dir / "inbox",
            box.launcher,
            box.env() if mode != "off" else None,
            box.limit_hit,
            False,
        )


def _template_for(rubric: Rubric, env: dict[str, str]) -> warm_starts.WarmTemplate | None:
    """This thread's warm template for ``rubric`` (started on first use), or None."""
    return warm_starts.thread_template(warm_starts.preload_for(rubric), sandbox_limits(rubric), env)


def with_limit(run: NotebookRun, limit: str) -> NotebookRun:
    """Name the sandbox limit that stopped the kernel, in words, with the cell."""
    ex = run.execution
    died = [f.cell for f in ex.failures if f.kind in ("kernel_died", "limit")]
    where = f" in cell {died[-1]}" if died else ""
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
