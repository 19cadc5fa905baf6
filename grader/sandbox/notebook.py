"""Run a student's notebook in a fresh kernel and harvest its answers: the notebook runner.

:func:`run_notebook` reads the notebook (:mod:`grader.sandbox.nbfile`), runs its code
cells one by one in a kernel started through ``launcher`` (:mod:`grader.sandbox.cells`),
then decodes the outbox the harness wrote (:mod:`grader.answers`) and words each missing
answer with the fate of the cell that should have defined it. The kernel gets a minimal
environment of its own, not the grader's. Every failure of the student's code is
reported in the returned :class:`NotebookRun`; only a grader-side problem raises.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from grader.answers import read_answers
from grader.models import Answer, AnswerRequest, Call, CallResult, ExecutionReport, NotebookRun
from grader.sandbox.cells import Runner, RunState
from grader.sandbox.kernel_calls import KernelCalls, explain_missing, not_made
from grader.sandbox.kernel_client import Launcher, habit_notes
from grader.sandbox.limits import ExecutionLimits
from grader.sandbox.module_inbox import CallInbox
from grader.sandbox.nbfile import Cell, assigns, image_cells, read_notebook, split_cells
from grader.sandbox.session import Transport


def run_notebook(
    notebook: Path,
    workdir: Path,
    outbox: Path,
    requests: Sequence[AnswerRequest],
    limits: ExecutionLimits | None = None,
    seed: int = 0,
    launcher: Launcher | None = None,
    env: Mapping[str, str] | None = None,
    *,
    transport: Transport = "tcp",
    runtime_dir: Path | None = None,
    budgets: Mapping[int | str, float] | None = None,
    calls: Sequence[Call] = (),
    limit_hit: Callable[[], str | None] = lambda: None,
    cuda_on_cpu: bool = True,
) -> NotebookRun:
    """Blocking wrapper of :func:`run_notebook_async` (one event loop per call/thread)."""
    return asyncio.run(
        run_notebook_async(
            notebook,
            workdir,
            outbox,
            requests,
            limits,
            seed,
            launcher,
            env,
            transport=transport,
            runtime_dir=runtime_dir,
            budgets=budgets,
            calls=calls,
            limit_hit=limit_hit,
            cuda_on_cpu=cuda_on_cpu,
        )
    )


async def run_notebook_async(
    notebook: Path,
    workdir: Path,
    outbox: Path,
    requests: Sequence[AnswerRequest],
    limits: ExecutionLimits | None = None,
    seed: int = 0,
    launcher: Launcher | None = None,
    env: Mapping[str, str] | None = None,
    *,
    transport: Transport = "tcp",
    runtime_dir: Path | None = None,
    budgets: Mapping[int | str, float] | None = None,
    calls: Sequence[Call] = (),
    limit_hit: Callable[[], str | None] = lambda: None,
    cuda_on_cpu: bool = True,
) -> NotebookRun:
    """Run ``notebook`` with ``workdir`` as the kernel's cwd and harvest ``requests``.

    ``outbox`` must be an empty directory the kernel can write. ``runtime_dir`` holds
    the connection file (and the sockets, with ``transport="ipc"``); by default a fresh
    temporary directory that is removed afterwards. Raises :class:`NotebookFormatError`
    when the file is not a notebook and :class:`KernelStartError` when the kernel or the
    harness cannot start; every failure of the student's code is reported in the
    returned :class:`NotebookRun` instead. ``limits``: the defaults when None.
    ``budgets``: seconds for particular cells instead of the cell limit (by 1-based
    position, or by a marker in the source). ``calls``: functions the notebook defines,
    called in its kernel after the last cell (:mod:`grader.sandbox.kernel_calls`;
    ``limit_hit`` names the sandbox limit that stopped a kernel); their results are the
    run's ``calls``. ``cuda_on_cpu``: CUDA requests run on the CPU when torch has no
    CUDA device (:mod:`grader.harness.shims`; False for a rubric's ``devices: strict``).
    """
    started = time.monotonic()
    limits = limits or ExecutionLimits()
    nb = read_notebook(notebook)
    markdown, code = split_cells(nb)
    state = RunState()
    images: set[int] = set()
    own_runtime = runtime_dir is None
    rdir = Path(tempfile.mkdtemp(prefix="grader-kernel-")) if runtime_dir is None else runtime_dir
    inbox = CallInbox(rdir / "calls") if calls else None
    made: dict[str, CallResult] = {}
    warnings: list[str] = []

    def runner_for(harvest: Sequence[AnswerRequest]) -> Runner:
        return Runner(
            nb,
            code,
            workdir,
            outbox,
            harvest,
            limits,
            seed,
            launcher,
            env,
            transport,
            rdir,
            budgets,
            calls=bool(calls),
            cuda_on_cpu=cuda_on_cpu,
        )

    async def restart() -> tuple[Runner, RunState]:
        again, again_state = runner_for(()), RunState()
        try:
            await again.run_cells(again_state)
        except BaseException:
            await again.stop()
            raise
        return again, again_state

    try:
        if any(c.source.strip() for c in code):
            runner = runner_for(requests)
            runner.image_cells = images
            try:
                await runner.run_cells(state)
                if calls and inbox is not None:
                    if state.alive:
                        driver = KernelCalls(
                            calls, notebook.name, inbox, outbox, limits, restart, limit_hit
                        )
                        made = await driver.make(runner)
                        warnings = driver.warnings
                    else:
                        made = not_made(calls, _stopped_why(state))
            finally:
                await runner.stop()
        else:
            state.cells_run = len(code)
            made = {
                c.id: CallResult(
                    c.id,
                    "missing_function",
                    message=f"{c.function} is not defined in {notebook.name}",
                )
                for c in calls
            }
    finally:
        if inbox is not None:
            inbox.close()
        if own_runtime:
            shutil.rmtree(rdir, ignore_errors=True)
    fates = {position: fate.reason for position, fate in state.fates.items()}
    made = explain_missing(made, calls, code, fates)

    answers = read_answers(outbox, requests, limits.max_answer_bytes)
    answers = {name: _explain(a, code, state) for name, a in answers.items()}
    report = ExecutionReport(
        notebook=notebook.name,
        cells_total=len(code),
        cells_run=state.cells_run,
        cells_not_run=tuple(state.not_run),
        failures=tuple(state.failures),
        timed_out=state.timed_out,
        kernel_died=state.kernel_died,
        limit_hit=state.limit_hit,
        warnings=tuple(dict.fromkeys((*habit_notes(outbox), *state.warnings, *warnings))),
        duration_s=round(time.monotonic() - started, 3),
    )
    return NotebookRun(
        execution=report,
        answers=answers,
        markdown=tuple(markdown),
        code=tuple(c.source for c in code),
        code_cells=tuple((c.position, c.source) for c in code),
        image_cells=image_cells(nb, images),
        calls=made,
    )


def _stopped_why(state: RunState) -> str:
    """Why no function of the notebook could be called: its kernel stopped in a cell."""
    stopped = [f.cell for f in state.failures if f.kind in ("kernel_died", "timeout", "limit")]
    where = f" in cell {stopped[-1]}" if stopped else ""
    return (
        f"the notebook's kernel stopped{where}, before the grader could call the "
        "functions the notebook defines"
    )


def _explain(answer: Answer, code: list[Cell], state: RunState) -> Answer:
    """Turn a "missing" answer into an actionable message using the cells' fates."""
    if answer.status != "missing":
        return answer
    name = answer.name
    cells = [c.position for c in code if assigns(c.source, name)]
    for position in cells:
        fate = state.fates.get(position)
        if fate is not None:
            return Answer(
                name=name,
                status="error",
                message=f"{name} is assigned in cell {position}, {fate.reason}",
            )
    if cells and state.harvest_errors:
        return Answer(
            name=name,
            status="error",
            message=f"{name} could not be read: {state.harvest_errors[-1]}",
        )
    message = f"{name} is not defined at the notebook's top level"
    if cells:
        where = ", ".join(str(p) for p in cells)
        message += f" (it is assigned in cell {where}, but not at the top level or deleted later)"
    return Answer(name=name, status="missing", message=message)
