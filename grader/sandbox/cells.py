"""One kernel's life, cell by cell: start, set up the harness, run, harvest, stop.

The runner drives nbclient one code cell at a time so it can decide what happens after
each cell: a cell that raises is recorded and the run goes on; a cell that runs past its
limit (the cell limit, or its own budget) is interrupted, and if the kernel does not
come back within a grace period it is killed; a kernel that dies is recorded. After
every cell the in-kernel harness (:mod:`grader.harness.kernel`) writes the requested
answers to the outbox, so answers defined before a crash survive it. Nothing here waits
without a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from queue import Empty
from typing import Any, Literal

from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

from grader.models import AnswerRequest, CellFailure, FailureKind
from grader.sandbox.errors import KernelStartError
from grader.sandbox.kernel_client import (
    HARNESS_MODULE,
    GraderKernelManager,
    Launcher,
    QuietClient,
    describe_exit,
    kernel_env,
    setup_code,
)
from grader.sandbox.limits import CELL_PROGRESS, ExecutionLimits, matching_budgets
from grader.sandbox.nbfile import Cell, enclosing_headings
from grader.sandbox.session import Transport

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_MAX_TRACEBACK_CHARS = 5000
_MAX_EVALUE_CHARS = 2000  # a student's exception message, kept in the result
_MAX_ENAME_CHARS = 200
_POLL_S = 0.25  # how often a wait for a reply checks that the kernel is still alive
_SHUTDOWN_TIMEOUT_S = 15.0


@dataclass
class Fate:
    """Why a code cell did not complete, worded for the student."""

    kind: FailureKind | Literal["not_run"]
    reason: str


@dataclass
class RunState:
    """What happened so far in one run, filled in by the :class:`Runner` cell by cell."""

    cells_run: int = 0
    failures: list[CellFailure] = field(default_factory=list)
    fates: dict[int, Fate] = field(default_factory=dict)
    not_run: list[int] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    harvest_errors: list[str] = field(default_factory=list)
    timed_out: bool = False
    kernel_died: bool = False
    limit_hit: str | None = None
    alive: bool = True


class KernelDied(Exception):
    """The kernel process exited while the runner waited for a reply."""


class Runner:
    """One kernel's life: start, set up, run cells with harvests, final harvest, stop."""

    def __init__(
        self,
        nb: Any,
        code: list[Cell],
        workdir: Path,
        outbox: Path,
        requests: Sequence[AnswerRequest],
        limits: ExecutionLimits,
        seed: int,
        launcher: Launcher | None,
        env: Mapping[str, str] | None,
        transport: Transport,
        runtime_dir: Path,
        budgets: Mapping[int | str, float] | None = None,
        calls: bool = False,
        cuda_on_cpu: bool = True,
    ) -> None:
        self.nb = nb
        self.cuda_on_cpu = cuda_on_cpu
        self.calls = calls  # set up the call machinery: functions are called after the cells
        self.code = code
        self.workdir = workdir
        self.outbox = outbox
        self.limits = limits
        self.seed = seed
        self.launcher: Launcher = launcher or (lambda argv: argv)
        self.env = env
        self.transport = transport
        self.runtime_dir = runtime_dir
        self.budgets = dict(budgets or {})
        self._headings: dict[int, tuple[str, ...]] | None = None
        self.requests_json = json.dumps(
            [
                {"name": r.name, "kind": r.kind, "probe": asdict(r.probe) if r.probe else None}
                for r in requests
            ]
        )
        self.has_requests = bool(requests)
        self.seed_torch = any(r.kind == "model" for r in requests) or any(
            re.search(r"\btorch\b", c.source) for c in code
        )
        # The Keras adapter's source is sent to the kernel only when the notebook mentions
        # Keras (``keras``, ``tf.keras``, ``keras_tuner``): no Keras model or tuner can exist
        # otherwise, and a torch-only kernel's set-up stays as small as it was.
        self.keras = any("keras" in c.source for c in code)
        self.cell_timeout = limits.cell_timeout
        self.last_execute_id: str | None = None
        self.km: Any = None
        self.kc: Any = None
        self.client: Any = None
        self.image_cells: set[int] = set()  # 1-based positions of cells that showed an image

    # ------------------------------------------------------------------ lifecycle

    async def run(self, state: RunState) -> None:
        """Run every code cell, recording what happened into ``state``; stop the kernel."""
        try:
            await self.run_cells(state)
        finally:
            await self.stop()

    async def run_cells(self, state: RunState) -> None:
        """Start the kernel and run every code cell with its harvests, recording what
        happened into ``state``; the kernel is left running (:meth:`stop` ends it)."""
        await self._start()
        deadline = time.monotonic() + self.limits.notebook_timeout
        for index, cell in enumerate(self.code):
            if not state.alive:
                break  # whoever stopped the kernel marked the rest "not run"
            left = deadline - time.monotonic()
            if left <= 0:
                self._deadline_hit(state, self.code[index:])
                break
            hook = CELL_PROGRESS.get()
            if hook is not None:
                with contextlib.suppress(Exception):  # a display never stops a run
                    hook(index + 1, len(self.code))
            await self._run_cell(state, index, cell, left)
        if state.alive and self.has_requests:
            last = self.code[-1].position if self.code else 0
            await self._harvest(state, last, final=True)

    async def _start(self) -> None:
        self.runtime_dir.mkdir(parents=True, exist_ok=True)
        connection_file = self.runtime_dir / f"kernel-{uuid.uuid4().hex[:12]}.json"
        kwargs: dict[str, Any] = {
            "kernel_name": "python3",
            "transport": self.transport,
            "connection_file": str(connection_file),
        }
        if self.transport == "ipc":
            kwargs["ip"] = str(self.runtime_dir / "ipc")
        self.km = GraderKernelManager(self.launcher, **kwargs)
        self.client = QuietClient(
            self.nb,
            km=self.km,
            timeout_func=lambda cell: self.cell_timeout,
            allow_errors=True,  # errors come back in the reply; no stop_on_error aborts
            interrupt_on_timeout=False,  # nbclient would re-interrupt forever; we kill
            startup_timeout=max(1, math.ceil(self.limits.kernel_start_timeout)),
            record_timing=False,
            store_widget_state=False,
            coalesce_streams=False,
            skip_cells_with_tag=f"never-skip-{uuid.uuid4().hex}",
            shutdown_kernel="immediate",
            iopub_timeout=2,
            on_cell_executed=self._on_cell_executed,
            resources={"metadata": {"path": str(self.workdir)}},
        )
        self.client.grader_image_cells = self.image_cells
        self.replies: dict[int, dict[str, Any]] = {}
        log_path = self.runtime_dir / f"{connection_file.stem}.log"
        self.log = log_path.open("wb")
        env = kernel_env(self.workdir, self.runtime_dir, self.env)
        try:
            await self.client.async_start_new_kernel(
                cwd=str(self.workdir), env=env, stdout=self.log, stderr=self.log
            )
            self.kc = await self.client.async_start_new_kernel_client()
        except Exception as exc:
            raise KernelStartError(
                f"the Jupyter kernel did not start: {exc}{self._log_tail()}"
            ) from exc
        self._track_execute_ids()
        setup = setup_code(
            self.outbox,
            self.seed,
            seed_torch=self.seed_torch,
            keras=self.keras,
            max_answer_bytes=self.limits.max_answer_bytes,
            harvest_timeout=self.limits.harvest_timeout,
            calls=self.calls,
            cuda_on_cpu=self.cuda_on_cpu,
        )
        try:
            reply = await self._silent(setup, self.limits.kernel_start_timeout)
        except KernelDied:
            raise KernelStartError(f"the kernel died during setup{self._log_tail()}") from None
        if reply is None:
            raise KernelStartError("the harness setup did not finish in time")
        content = reply.get("content", {})
        if content.get("status") != "ok":
            raise KernelStartError(
                f"the harness setup failed: {_short(content.get('ename'), _MAX_ENAME_CHARS)}: "
                f"{_short(content.get('evalue'), _MAX_EVALUE_CHARS)}"
            )

    def _track_execute_ids(self) -> None:
        # nbclient does not expose the msg_id of a timed-out cell, but we need it to
        # wait for that cell's reply after interrupting; record every execute we send.
        original = self.kc.execute

        def execute(*args: Any, **kwargs: Any) -> str:
            msg_id: str = original(*args, **kwargs)
            self.last_execute_id = msg_id
            return msg_id

        self.kc.execute = execute

    def _on_cell_executed(self, cell: Any, cell_index: int, execute_reply: Any) -> None:
        self.replies[cell_index] = execute_reply

    async def stop(self) -> None:
        """Shut the kernel down and release its channels and log (safe to repeat)."""
        await self._stop()

    async def kill(self) -> None:
        """Kill the kernel now (a call that could not be stopped)."""
        await self._kill()

    async def silent(self, code: str, timeout: float) -> dict[str, Any] | None:
        """Run ``code`` silently in the kernel: its reply, or None after ``timeout``
        seconds; raises :class:`KernelDied` when the kernel exits meanwhile."""
        return await self._silent(code, timeout)

    def exit_description(self) -> str:
        """How the kernel process ended, in words."""
        return self._exit_description()

    async def _stop(self) -> None:
        if self.km is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.km.shutdown_kernel(now=True), _SHUTDOWN_TIMEOUT_S)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.km.cleanup_resources(), _SHUTDOWN_TIMEOUT_S)
        if self.kc is not None:
            with contextlib.suppress(Exception):
                self.kc.stop_channels()
        if hasattr(self, "log"):
            self.log.close()

    async def _kill(self) -> None:
        """Kill the kernel's whole process group now (it ignored an interrupt)."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.km.shutdown_kernel(now=True), _SHUTDOWN_TIMEOUT_S)

    # ------------------------------------------------------------------ cells

    async def _run_cell(self, state: RunState, index: int, cell: Cell, left: float) -> None:
        budget = self._budget(cell)
        limit_by_deadline = left < budget
        self.cell_timeout = min(budget, left)
        nb_index = cell.position - 1
        state.cells_run += 1
        if not cell.source.strip():
            return  # nbclient skips empty cells; nothing changed, nothing to harvest
        self.replies.pop(nb_index, None)
        try:
            await self.client.async_execute_cell(
                self.nb.cells[nb_index], nb_index, store_history=True
            )
        except CellTimeoutError:
            await self._cell_timed_out(state, index, cell, limit_by_deadline)
            if not state.alive:
                return
        except DeadKernelError:
            self._kernel_died(state, index, cell, during="while running this cell")
            return
        except CellExecutionError as exc:  # only if errors were not allowed
            self._cell_error(state, cell, exc.ename, exc.evalue, exc.traceback)
        else:
            content = (self.replies.get(nb_index) or {}).get("content", {})
            if content.get("status") == "error":
                self._cell_error(
                    state,
                    cell,
                    str(content.get("ename", "")),
                    str(content.get("evalue", "")),
                    "\n".join(str(line) for line in content.get("traceback", [])),
                )
        if self.has_requests:
            await self._harvest(state, cell.position, final=False, index=index)

    def _budget(self, cell: Cell) -> float:
        """The seconds ``cell`` may run: its budget (by position, else by a marker in its
        source), else the largest of the ``limits.cells`` budgets matching its tags or
        the headings it sits under, else the cell limit."""
        if cell.position in self.budgets:
            return self.budgets[cell.position]
        for key, seconds in self.budgets.items():
            if isinstance(key, str) and key in cell.source:
                return seconds
        if self.limits.cells and self._headings is None:
            self._headings = enclosing_headings(self.nb.cells)  # once per notebook
        found = matching_budgets(self.limits.cells, self.nb.cells, cell.position, self._headings)
        return max(found) if found else self.limits.cell_timeout

    def _cell_error(self, state: RunState, cell: Cell, ename: str, evalue: str, tb: str) -> None:
        ename, evalue = _short(ename, _MAX_ENAME_CHARS), _short(evalue, _MAX_EVALUE_CHARS)
        state.failures.append(
            CellFailure(cell.position, "error", ename, evalue, _clean_traceback(tb))
        )
        raised = f"{ename}: {evalue}" if evalue else ename
        state.fates[cell.position] = Fate("error", f"which raised {raised}")

    async def _cell_timed_out(
        self, state: RunState, index: int, cell: Cell, by_deadline: bool
    ) -> None:
        state.timed_out = True
        limit = self.cell_timeout
        if by_deadline:
            state.limit_hit = f"the notebook may run for at most {self.limits.notebook_timeout:g} s"
            evalue = (
                f"the notebook's time limit of {self.limits.notebook_timeout:g} s ran out "
                "while this cell was running"
            )
        else:
            evalue = f"the cell did not finish within {limit:g} s and was stopped"
        stopped = await self._interrupt_and_wait(self.last_execute_id)
        if not stopped:
            evalue += (
                "; it did not stop when interrupted, so the kernel was shut down and "
                "the remaining cells did not run"
            )
        state.failures.append(CellFailure(cell.position, "timeout", "TimeoutError", evalue, ""))
        state.fates[cell.position] = Fate("timeout", f"which was stopped after {limit:g} s")
        if not stopped:
            await self._kill()
            state.alive = False
            why = f"because cell {cell.position} did not stop after {limit:g} s"
            self._mark_not_run(state, self.code[index + 1 :], why)

    def _kernel_died(self, state: RunState, index: int, cell: Cell, during: str) -> None:
        state.kernel_died = True
        state.alive = False
        how = self._exit_description()
        state.failures.append(
            CellFailure(cell.position, "kernel_died", "DeadKernelError", f"{how} {during}", "")
        )
        state.fates[cell.position] = Fate("kernel_died", f"where the kernel died ({how})")
        why = f"because the kernel died in cell {cell.position}"
        self._mark_not_run(state, self.code[index + 1 :], why)

    def _deadline_hit(self, state: RunState, rest: list[Cell]) -> None:
        state.timed_out = True
        state.limit_hit = f"the notebook may run for at most {self.limits.notebook_timeout:g} s"
        why = f"because the notebook's {self.limits.notebook_timeout:g} s time limit ran out"
        self._mark_not_run(state, rest, why)

    @staticmethod
    def _mark_not_run(state: RunState, rest: list[Cell], why: str) -> None:
        for c in rest:
            state.not_run.append(c.position)
            state.fates[c.position] = Fate("not_run", f"which never ran {why}")

    def _exit_description(self) -> str:
        process = getattr(getattr(self.km, "provisioner", None), "process", None)
        return describe_exit("the kernel process", process.poll() if process else None)

    # ------------------------------------------------------------------ silent code

    async def _harvest(
        self, state: RunState, position: int, *, final: bool, index: int | None = None
    ) -> None:
        code = (
            f"__import__('sys').modules[{HARNESS_MODULE!r}].harvest("
            f"globals(), {self.requests_json!r}, {position}, {final})"
        )
        when = "at the end" if final else f"after cell {position}"
        try:
            reply = await self._silent(code, self.limits.harvest_timeout)
        except KernelDied:
            msg = f"the kernel died while the grader read the answers {when}"
            state.warnings.append(msg)
            state.harvest_errors.append(msg)
            if index is not None:
                self._kernel_died(
                    state, index, self.code[index], "while the grader read the answers"
                )
            else:
                state.kernel_died = True
                state.alive = False
            return
        if reply is None:
            msg = f"reading the answers {when} took longer than {self.limits.harvest_timeout:g} s"
            stopped = await self._interrupt_and_wait(self.last_execute_id)
            if not stopped:
                msg += "; the kernel did not respond and was shut down"
                await self._kill()
                state.alive = False
                if index is not None:
                    why = f"because the kernel was shut down after cell {position}"
                    self._mark_not_run(state, self.code[index + 1 :], why)
            state.warnings.append(msg)
            state.harvest_errors.append(msg)
            return
        content = reply.get("content", {})
        if content.get("status") != "ok":
            msg = (
                f"reading the answers {when} failed: "
                f"{_short(content.get('ename'), _MAX_ENAME_CHARS)}: "
                f"{_short(content.get('evalue'), _MAX_EVALUE_CHARS)}"
            )
            state.warnings.append(msg)
            state.harvest_errors.append(msg)

    async def _silent(self, code: str, timeout: float) -> dict[str, Any] | None:
        """Execute ``code`` silently; its reply, or None after ``timeout`` seconds."""
        msg_id = self.kc.execute(
            code, silent=True, store_history=False, allow_stdin=False, stop_on_error=False
        )
        return await self._await_reply(msg_id, timeout)

    async def _await_reply(self, msg_id: str | None, timeout: float) -> dict[str, Any] | None:
        """Wait for the shell reply to ``msg_id``; raise KernelDied if the kernel exits."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                msg: dict[str, Any] = await self.kc.shell_channel.get_msg(
                    timeout=min(_POLL_S, left)
                )
            except Empty:
                if not await self.km.is_alive():
                    raise KernelDied from None
                continue
            if msg.get("parent_header", {}).get("msg_id") == msg_id:
                return msg

    async def _interrupt_and_wait(self, msg_id: str | None) -> bool:
        """Interrupt the kernel; True if the request ``msg_id`` then ends within grace."""
        try:
            await self.km.interrupt_kernel()
            return await self._await_reply(msg_id, self.limits.interrupt_grace) is not None
        except KernelDied:
            return False
        except Exception:
            return False

    def _log_tail(self) -> str:
        try:
            self.log.flush()
            tail = self.log.name and Path(self.log.name).read_bytes()[-2000:]
        except Exception:
            return ""
        text = tail.decode("utf-8", "replace").strip() if tail else ""
        return f"\nkernel log:\n{text}" if text else ""


def _short(text: object, limit: int) -> str:
    """``text`` as a string of at most about ``limit`` characters (the student's code
    chooses exception names and messages, of any size)."""
    text = str(text)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit:,} more characters)"


def _clean_traceback(tb: str) -> str:
    text = _ANSI.sub("", tb)
    if len(text) > _MAX_TRACEBACK_CHARS:
        head, tail = text[:1000], text[-(_MAX_TRACEBACK_CHARS - 1000) :]
        text = f"{head}\n...\n{tail}"
    return text
