"""Run a student's notebook cell by cell in a fresh Jupyter kernel and harvest answers.

The runner drives nbclient one code cell at a time so it can decide what happens after
each cell: a cell that raises is recorded and the run goes on; a cell that runs too
long is interrupted, and if the kernel does not come back within a grace period it is
killed; a kernel that dies is recorded. After every cell the in-kernel harness
(:mod:`grader.harness.kernel`) writes the requested answers to ``outbox``, so answers
defined before a crash survive it. Nothing here waits without a deadline.

The kernel gets a minimal environment of its own, not the grader's, and its argv can be
wrapped by a ``launcher`` (the sandbox prefixes ``bwrap ...``). The connection file and
the ZeroMQ transport are configurable so that a sandbox can bind one directory.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import json
import math
import os
import re
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from queue import Empty
from typing import Any, Literal

import nbformat
import zmq
import zmq.asyncio
from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

from grader.answers import read_answers
from grader.harness import encoding as _encoding
from grader.harness import kernel as _harness
from grader.models import (
    Answer,
    AnswerRequest,
    CellFailure,
    ExecutionReport,
    FailureKind,
    NotebookRun,
)

Launcher = Callable[[list[str]], list[str]]
"""Wraps the kernel's argv, e.g. to run it inside ``bwrap``; identity by default."""

Transport = Literal["tcp", "ipc"]

_HARNESS_MODULE = "__grader_harness__"
_HARNESS_SOURCE = Path(_harness.__file__).read_text(encoding="utf-8")
_ENCODING_MODULE = "__grader_encoding__"
_ENCODING_SOURCE = Path(_encoding.__file__).read_text(encoding="utf-8")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_MAX_TRACEBACK_CHARS = 5000
_MAX_EVALUE_CHARS = 2000  # a student's exception message, kept in the result
_MAX_ENAME_CHARS = 200
# The largest Jupyter message the grader accepts from a kernel. A larger one (a cell
# printing hundreds of MB at once, an exception message of that size) would be read and
# decoded whole in the grader's process; ZeroMQ drops the connection instead, which
# only loses that kernel's output (the grader never keeps output anyway).
MAX_MESSAGE_BYTES = 16 * 2**20
_POLL_S = 0.25  # how often a wait for a reply checks that the kernel is still alive
_IOPUB_QUIET_S = 0.02  # a new kernel's IOPub is drained until this long without messages
_SHUTDOWN_TIMEOUT_S = 15.0
# Variables passed through from the grader's environment: OpenBLAS needs these on CPUs
# it cannot detect, and would otherwise crash at import.
_PASSTHROUGH_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")

# Runs in the kernel inside ``exec(..., {fresh dict})``, so nothing is bound in the
# student's namespace. The harness arrives as source text (the sandbox binds nothing of
# the grader's tree) and runs with the notebook folder removed from sys.path, so a
# student's ``numpy.py`` cannot shadow what it imports.
_SETUP_SOURCE = """
import os, sys
_cwd = os.getcwd()
_saved = list(sys.path)
sys.path[:] = [p for p in _saved if p not in ("", ".") and os.path.abspath(p) != _cwd]
try:
    _enc = type(sys)(ARGS["encoding_module"])
    _enc.__file__ = "<grader encoding>"
    sys.modules[ARGS["encoding_module"]] = _enc
    exec(compile(ARGS["encoding_source"], "<grader encoding>", "exec"), _enc.__dict__)
    _mod = type(sys)(ARGS["module"])
    _mod.__file__ = "<grader harness>"
    sys.modules[ARGS["module"]] = _mod
    exec(compile(ARGS["source"], "<grader harness>", "exec"), _mod.__dict__)
    _mod.setup(
        ARGS["outbox"],
        ARGS["seed"],
        seed_torch=ARGS["seed_torch"],
        max_answer_bytes=ARGS["max_answer_bytes"],
        harvest_timeout_s=ARGS["harvest_timeout_s"],
    )
finally:
    sys.path[:] = _saved
"""


def describe_exit(what: str, code: int | None) -> str:
    """How a sandboxed process ended, in words (``what`` names it: "the kernel process")."""
    if code is None:
        return f"{what} stopped"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " (often: out of memory)" if name == "SIGKILL" else ""
        return f"{what} was killed by {name}{hint}"
    return f"{what} exited with code {code}"


class NotebookFormatError(Exception):
    """The submitted file cannot be read as a Jupyter notebook."""


class KernelStartError(RuntimeError):
    """The kernel (or the harness inside it) did not start: a grader-side problem."""


@dataclass(frozen=True)
class RunLimits:
    """Time and size limits of one notebook run."""

    cell_timeout_s: float = 60.0
    notebook_timeout_s: float = 900.0
    interrupt_grace_s: float = 5.0  # after an interrupt, wait this long, then kill the kernel
    harvest_timeout_s: float = 60.0  # per harvest call (model probes run a forward pass)
    max_answer_bytes: int = 64 * 2**20  # cap on one answer's encoded size
    startup_timeout_s: float = 60.0


@dataclass(frozen=True)
class _Cell:
    position: int  # 1-based among all cells
    source: str


@dataclass
class _Fate:
    """Why a code cell did not complete, worded for the student."""

    kind: FailureKind | Literal["not_run"]
    reason: str


@dataclass
class _RunState:
    cells_run: int = 0
    failures: list[CellFailure] = field(default_factory=list)
    fates: dict[int, _Fate] = field(default_factory=dict)
    not_run: list[int] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    harvest_errors: list[str] = field(default_factory=list)
    timed_out: bool = False
    kernel_died: bool = False
    limit_hit: str | None = None
    alive: bool = True


class _KernelDied(Exception):
    """The kernel process exited while the runner waited for a reply."""


class _GraderKernelClient(AsyncKernelClient):
    """A kernel client whose sockets refuse messages above :data:`MAX_MESSAGE_BYTES`."""

    def _context_default(self) -> zmq.asyncio.Context:
        self._created_context = True
        context = zmq.asyncio.Context()
        context.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
        return context

    async def wait_for_ready(self, timeout: float | None = None) -> None:
        """jupyter_client's wait (a kernel_info reply, with IOPub seen connected), except
        that the IOPub drain at the end needs :data:`_IOPUB_QUIET_S` of quiet instead of
        0.2 s: that wait was a fixed 0.2 s of every kernel start. The runner matches
        every reply and output by its request's msg_id, so a late status message is
        ignored."""
        deadline = time.monotonic() + (math.inf if timeout is None else timeout)
        while True:
            self.kernel_info()
            try:
                msg = await self.shell_channel.get_msg(timeout=1)
            except Empty:
                pass
            else:
                if msg["msg_type"] == "kernel_info_reply":
                    try:  # IOPub connected? (the reply's busy/idle status arrives there)
                        await self.iopub_channel.get_msg(timeout=0.2)
                    except Empty:
                        pass
                    else:
                        self._handle_kernel_info_reply(msg)
                        break
            if not await self._async_is_alive():
                raise RuntimeError("Kernel died before replying to kernel_info")
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kernel didn't respond in {timeout:g} seconds")
        while True:
            try:
                await self.iopub_channel.get_msg(timeout=_IOPUB_QUIET_S)
            except Empty:
                break


class _GraderKernelManager(AsyncKernelManager):
    """A kernel manager that launches this interpreter's ipykernel through a launcher."""

    def __init__(self, launcher: Launcher, **kwargs: Any) -> None:
        kwargs.setdefault("client_factory", _GraderKernelClient)
        super().__init__(**kwargs)
        self._grader_launcher = launcher
        # Signals do not cross a sandbox's PID namespace; ipykernel also accepts an
        # interrupt_request on its control channel, which works in both cases.
        spec = self.kernel_spec
        if spec is not None:
            spec.interrupt_mode = "message"

    async def _async_wait(self, pollinterval: float = 0.1) -> None:
        # After a kill, jupyter_client polls every 0.1 s for the process to end; the
        # first poll always finds it alive, so every kernel stop cost 0.1 s.
        await super()._async_wait(pollinterval=min(pollinterval, 0.01))

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        """The kernel argv, ignoring any kernelspec found on the machine."""
        argv = [sys.executable, "-m", "ipykernel_launcher", "-f", str(self.connection_file)]
        return list(self._grader_launcher([*argv, *(extra_arguments or [])]))


class _QuietClient(NotebookClient):
    """A NotebookClient that keeps no cell outputs (a cell may print gigabytes)."""

    def output(
        self, outs: list[Any], msg: dict[str, Any], display_id: Any, cell_index: int
    ) -> None:
        """Drop the output, noting only whether it displayed an image (figure checks)."""
        images: set[int] | None = getattr(self, "grader_image_cells", None)
        if images is not None and msg.get("msg_type") in ("display_data", "execute_result"):
            data = msg.get("content", {}).get("data", {})
            if isinstance(data, dict) and _IMAGE_TYPES.intersection(data):
                images.add(cell_index + 1)
        return None


_IMAGE_TYPES = frozenset({"image/png", "image/svg+xml"})
_MD_HEADING = re.compile(r"^(#{1,6})[ \t]+\S")


def _enclosing_headings(cells: list[Any]) -> dict[int, tuple[str, ...]]:
    """For each cell position (1-based), the Markdown heading lines enclosing it."""
    stack: list[tuple[int, str]] = []
    out: dict[int, tuple[str, ...]] = {}
    for position, cell in enumerate(cells, start=1):
        out[position] = tuple(line for _, line in stack)
        if cell.get("cell_type") != "markdown":
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        for raw in source.splitlines():
            line = raw.strip()
            match = _MD_HEADING.match(line)
            if match:
                level = len(match.group(1))
                stack = [(lvl, text) for lvl, text in stack if lvl < level]
                stack.append((level, line))
    return out


def read_notebook(path: Path) -> Any:
    """Read ``path`` as an nbformat-4 notebook, tolerating schema validation problems.

    Raises :class:`NotebookFormatError` with a message a student can act on when the
    file is not UTF-8, not JSON, or not a notebook.
    """
    fix = "re-download the notebook from Jupyter (File > Download) and submit that file"
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise NotebookFormatError(f"{path.name} cannot be read ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise NotebookFormatError(
            f"{path.name} is not UTF-8 text (byte {exc.start}) — {fix}"
        ) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise NotebookFormatError(
            f"{path.name} is not valid JSON (line {exc.lineno}, column {exc.colno}): "
            f"{exc.msg} — {fix}"
        ) from None
    except RecursionError:
        raise NotebookFormatError(f"{path.name} is not valid JSON (nested too deeply)") from None
    if type(data) is not dict or not isinstance(data.get("cells", []), list):
        raise NotebookFormatError(f"{path.name} is JSON but not a Jupyter notebook — {fix}")
    if "nbformat" not in data:
        raise NotebookFormatError(
            f"{path.name} is JSON but not a Jupyter notebook (no 'nbformat' field) — {fix}"
        )
    try:
        # reads() validates and only logs schema problems; as_version=4 upgrades v3.
        return nbformat.reads(text, as_version=4)  # type: ignore[no-untyped-call]
    except Exception as exc:
        raise NotebookFormatError(
            f"{path.name} is not a readable Jupyter notebook ({type(exc).__name__}: {exc}) — {fix}"
        ) from None


def kernel_env(
    workdir: Path, runtime_dir: Path, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The kernel's environment: minimal and deterministic, never the grader's own."""
    env = {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": str(workdir),
        "LANG": "C.UTF-8",
        "PYTHONHASHSEED": "0",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MPLBACKEND": "Agg",
        # Keep IPython's and Jupyter's profile/config dirs out of the student's folder,
        # so nothing there (a copied .ipython/startup script) runs before the harness.
        "IPYTHONDIR": str(runtime_dir / "ipython"),
        "JUPYTER_CONFIG_DIR": str(runtime_dir / "jupyter"),
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    }
    for name in _PASSTHROUGH_ENV:
        if name in os.environ:
            env[name] = os.environ[name]
    env.update(extra or {})
    return env


def run_notebook(
    notebook: Path,
    workdir: Path,
    outbox: Path,
    requests: Sequence[AnswerRequest],
    limits: RunLimits = RunLimits(),  # frozen, so sharing the default is safe
    seed: int = 0,
    launcher: Launcher | None = None,
    env: Mapping[str, str] | None = None,
    *,
    transport: Transport = "tcp",
    runtime_dir: Path | None = None,
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
        )
    )


async def run_notebook_async(
    notebook: Path,
    workdir: Path,
    outbox: Path,
    requests: Sequence[AnswerRequest],
    limits: RunLimits = RunLimits(),  # frozen, so sharing the default is safe
    seed: int = 0,
    launcher: Launcher | None = None,
    env: Mapping[str, str] | None = None,
    *,
    transport: Transport = "tcp",
    runtime_dir: Path | None = None,
) -> NotebookRun:
    """Run ``notebook`` with ``workdir`` as the kernel's cwd and harvest ``requests``.

    ``outbox`` must be an empty directory the kernel can write. ``runtime_dir`` holds
    the connection file (and the sockets, with ``transport="ipc"``); by default a fresh
    temporary directory that is removed afterwards. Raises :class:`NotebookFormatError`
    when the file is not a notebook and :class:`KernelStartError` when the kernel or the
    harness cannot start; every failure of the student's code is reported in the
    returned :class:`NotebookRun` instead.
    """
    started = time.monotonic()
    nb = read_notebook(notebook)
    markdown: list[str] = []
    code: list[_Cell] = []
    for position, cell in enumerate(nb.get("cells", []), start=1):
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        if cell.get("cell_type") == "markdown":
            markdown.append(source)
        elif cell.get("cell_type") == "code":
            code.append(_Cell(position, source))

    state = _RunState()
    images: set[int] = set()
    own_runtime = runtime_dir is None
    rdir = Path(tempfile.mkdtemp(prefix="grader-kernel-")) if runtime_dir is None else runtime_dir
    try:
        if any(c.source.strip() for c in code):
            runner = _Runner(
                nb, code, workdir, outbox, requests, limits, seed, launcher, env, transport, rdir
            )
            runner.image_cells = images
            await runner.run(state)
        else:
            state.cells_run = len(code)
    finally:
        if own_runtime:
            shutil.rmtree(rdir, ignore_errors=True)

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
        warnings=tuple(state.warnings),
        duration_s=round(time.monotonic() - started, 3),
    )
    return NotebookRun(
        execution=report,
        answers=answers,
        markdown=tuple(markdown),
        code=tuple(c.source for c in code),
        code_cells=tuple((c.position, c.source) for c in code),
        image_cells=_image_cells(nb, images),
    )


def _image_cells(nb: Any, images: set[int]) -> tuple[tuple[int, tuple[str, ...]], ...]:
    """Each cell that displayed an image, with the Markdown headings enclosing it."""
    if not images:
        return ()
    headings = _enclosing_headings(list(nb.get("cells", [])))
    return tuple((p, headings.get(p, ())) for p in sorted(images))


class _Runner:
    """One kernel's life: start, set up, run cells with harvests, final harvest, stop."""

    def __init__(
        self,
        nb: Any,
        code: list[_Cell],
        workdir: Path,
        outbox: Path,
        requests: Sequence[AnswerRequest],
        limits: RunLimits,
        seed: int,
        launcher: Launcher | None,
        env: Mapping[str, str] | None,
        transport: Transport,
        runtime_dir: Path,
    ) -> None:
        self.nb = nb
        self.code = code
        self.workdir = workdir
        self.outbox = outbox
        self.limits = limits
        self.seed = seed
        self.launcher: Launcher = launcher or (lambda argv: argv)
        self.env = env
        self.transport = transport
        self.runtime_dir = runtime_dir
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
        self.cell_timeout = limits.cell_timeout_s
        self.last_execute_id: str | None = None
        self.km: Any = None
        self.kc: Any = None
        self.client: Any = None
        self.image_cells: set[int] = set()  # 1-based positions of cells that showed an image

    # ------------------------------------------------------------------ lifecycle

    async def run(self, state: _RunState) -> None:
        """Run every code cell, recording what happened into ``state``."""
        try:
            await self._start()
            deadline = time.monotonic() + self.limits.notebook_timeout_s
            for index, cell in enumerate(self.code):
                if not state.alive:
                    break  # whoever stopped the kernel marked the rest "not run"
                left = deadline - time.monotonic()
                if left <= 0:
                    self._deadline_hit(state, self.code[index:])
                    break
                await self._run_cell(state, index, cell, left)
            if state.alive and self.has_requests:
                last = self.code[-1].position if self.code else 0
                await self._harvest(state, last, final=True)
        finally:
            await self._stop()

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
        self.km = _GraderKernelManager(self.launcher, **kwargs)
        self.client = _QuietClient(
            self.nb,
            km=self.km,
            timeout_func=lambda cell: self.cell_timeout,
            allow_errors=True,  # errors come back in the reply; no stop_on_error aborts
            interrupt_on_timeout=False,  # nbclient would re-interrupt forever; we kill
            startup_timeout=max(1, math.ceil(self.limits.startup_timeout_s)),
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
        args = {
            "module": _HARNESS_MODULE,
            "source": _HARNESS_SOURCE,
            "encoding_module": _ENCODING_MODULE,
            "encoding_source": _ENCODING_SOURCE,
            "outbox": str(self.outbox),
            "seed": self.seed,
            "seed_torch": self.seed_torch,
            "max_answer_bytes": self.limits.max_answer_bytes,
            "harvest_timeout_s": self.limits.harvest_timeout_s,
        }
        setup = f"__import__('builtins').exec({_SETUP_SOURCE!r}, {{'ARGS': {args!r}}})"
        try:
            reply = await self._silent(setup, self.limits.startup_timeout_s)
        except _KernelDied:
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

    async def _run_cell(self, state: _RunState, index: int, cell: _Cell, left: float) -> None:
        limit_by_deadline = left < self.limits.cell_timeout_s
        self.cell_timeout = min(self.limits.cell_timeout_s, left)
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

    def _cell_error(self, state: _RunState, cell: _Cell, ename: str, evalue: str, tb: str) -> None:
        ename, evalue = _short(ename, _MAX_ENAME_CHARS), _short(evalue, _MAX_EVALUE_CHARS)
        state.failures.append(
            CellFailure(cell.position, "error", ename, evalue, _clean_traceback(tb))
        )
        raised = f"{ename}: {evalue}" if evalue else ename
        state.fates[cell.position] = _Fate("error", f"which raised {raised}")

    async def _cell_timed_out(
        self, state: _RunState, index: int, cell: _Cell, by_deadline: bool
    ) -> None:
        state.timed_out = True
        limit = self.cell_timeout
        if by_deadline:
            state.limit_hit = (
                f"the notebook may run for at most {self.limits.notebook_timeout_s:g} s"
            )
            evalue = (
                f"the notebook's time limit of {self.limits.notebook_timeout_s:g} s ran out "
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
        state.fates[cell.position] = _Fate("timeout", f"which was stopped after {limit:g} s")
        if not stopped:
            await self._kill()
            state.alive = False
            why = f"because cell {cell.position} did not stop after {limit:g} s"
            self._mark_not_run(state, self.code[index + 1 :], why)

    def _kernel_died(self, state: _RunState, index: int, cell: _Cell, during: str) -> None:
        state.kernel_died = True
        state.alive = False
        how = self._exit_description()
        state.failures.append(
            CellFailure(cell.position, "kernel_died", "DeadKernelError", f"{how} {during}", "")
        )
        state.fates[cell.position] = _Fate("kernel_died", f"where the kernel died ({how})")
        why = f"because the kernel died in cell {cell.position}"
        self._mark_not_run(state, self.code[index + 1 :], why)

    def _deadline_hit(self, state: _RunState, rest: list[_Cell]) -> None:
        state.timed_out = True
        state.limit_hit = f"the notebook may run for at most {self.limits.notebook_timeout_s:g} s"
        why = f"because the notebook's {self.limits.notebook_timeout_s:g} s time limit ran out"
        self._mark_not_run(state, rest, why)

    @staticmethod
    def _mark_not_run(state: _RunState, rest: list[_Cell], why: str) -> None:
        for c in rest:
            state.not_run.append(c.position)
            state.fates[c.position] = _Fate("not_run", f"which never ran {why}")

    def _exit_description(self) -> str:
        process = getattr(getattr(self.km, "provisioner", None), "process", None)
        return describe_exit("the kernel process", process.poll() if process else None)

    # ------------------------------------------------------------------ silent code

    async def _harvest(
        self, state: _RunState, position: int, *, final: bool, index: int | None = None
    ) -> None:
        code = (
            f"__import__('sys').modules[{_HARNESS_MODULE!r}].harvest("
            f"globals(), {self.requests_json!r}, {position}, {final})"
        )
        when = "at the end" if final else f"after cell {position}"
        try:
            reply = await self._silent(code, self.limits.harvest_timeout_s)
        except _KernelDied:
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
            msg = f"reading the answers {when} took longer than {self.limits.harvest_timeout_s:g} s"
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
        """Wait for the shell reply to ``msg_id``; raise _KernelDied if the kernel exits."""
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
                    raise _KernelDied from None
                continue
            if msg.get("parent_header", {}).get("msg_id") == msg_id:
                return msg

    async def _interrupt_and_wait(self, msg_id: str | None) -> bool:
        """Interrupt the kernel; True if the request ``msg_id`` then ends within grace."""
        try:
            await self.km.interrupt_kernel()
            return await self._await_reply(msg_id, self.limits.interrupt_grace_s) is not None
        except _KernelDied:
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


# ---------------------------------------------------------------------- answers


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


def _explain(answer: Answer, code: list[_Cell], state: _RunState) -> Answer:
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


_MAGIC_LINE = re.compile(r"^(\s*)[%!].*$", re.MULTILINE)


def assigns(source: str, name: str) -> bool:
    """Whether the cell ``source`` binds ``name`` anywhere (a deliberate over-approximation).

    IPython magics and shell lines are blanked before parsing; a cell that still is not
    Python falls back to a regular expression.
    """
    lines = source.splitlines()
    if lines and lines[0].lstrip().startswith("%%"):
        lines = lines[1:]
    cleaned = _MAGIC_LINE.sub(lambda m: f"{m.group(1)}pass", "\n".join(lines))
    try:
        tree = ast.parse(cleaned)
    except (SyntaxError, ValueError):
        return re.search(rf"\b{re.escape(name)}\s*(?::[^=\n]*)?=(?!=)", source) is not None
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id == name and isinstance(node.ctx, ast.Store):
            return True
        if (
            isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
            and node.name == name
        ):
            return True
        if isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                bound = alias.asname or alias.name.split(".")[0]
                if bound == name:
                    return True
    return False
