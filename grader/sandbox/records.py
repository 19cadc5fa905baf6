"""What :func:`grader.sandbox.execute` takes and gives: plain, frozen records.

An :class:`ExecutionRequest` holds everything one execution needs, so the sandbox reads
no rubric, reference or check: the submission's files, what to run (a notebook and/or a
module, by the names the handout asks for), the answers to harvest and the calls to
make, what to preload, devices, provided files, one :class:`ExecutionLimits` and the
sandbox mode. :class:`Executed` is what came out, as plain data (the execution cache
keeps it, :mod:`grader.cache`).

Fields marked "later" are contracts for the next capabilities: a request that uses one
is refused with :class:`~grader.sandbox.errors.UnsupportedRequest` until the sandbox
does it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from grader.models import AnswerRequest, Call, ExecutionReport, ModuleRun, NotebookRun
from grader.sandbox.limits import ExecutionLimits

Mode = Literal["strict", "permissive", "off"]
"""``strict`` refuses to run without every protection; ``permissive`` runs with what
exists (and says what is missing); ``off`` runs student code with the grader's rights."""

#: The seed of ``random``, NumPy and torch in every kernel and worker call, unless a
#: request says otherwise. Declared here, in the sandbox's code, so that the execution
#: cache's hash of that code changes with it (:func:`grader.cache.execution_code_hash`).
KERNEL_SEED = 0

Framework = Literal["numpy", "torch", "tensorflow", "keras", "jax"]
"""A framework a rubric declares (``frameworks:``), by its import name: a warm template
imports it once so that no student pays for its import."""


@dataclass(frozen=True)
class SubmissionFiles:
    """The student's files: ``paths`` (POSIX, relative to ``root``) are read from ``root``.

    ``single_file``: the submission is one file directly in the submissions folder (as
    LMS downloads come), ``paths`` its name alone.
    """

    root: Path
    paths: tuple[str, ...]
    single_file: bool = False


@dataclass(frozen=True)
class ProvidedFile:
    """An instructor's file or folder, read-only in every sandbox at ``target``.

    ``source``: an absolute path on the grader's machine. ``target``: a relative POSIX
    path, relative to the folder of the notebook or module being run (where the student
    has it), or an absolute one under ``/content/`` or ``/kaggle/input/``, bound at
    exactly that path (sandboxed runs only). A student's own file of that name is not
    used (a warning says so) unless ``replaceable``: then the student's file is used
    instead. See :mod:`grader.sandbox.provided`.
    """

    source: Path  # read by the grader
    target: str  # POSIX path relative to the notebook's folder, or under /content, /kaggle/input
    replaceable: bool = False


@dataclass(frozen=True)
class DeviceRequest:
    """Devices the execution may use: ``gpus`` whole GPUs (or MIG instances) lent from
    this process's pool (:mod:`grader.sandbox.gpus`) for the run, 0 for the CPU only.
    ``memory_mb``: the advisory GPU memory cap passed to the kernel. ``policy``: the
    rubric's ``devices:`` (``cpu``, ``gpu`` or ``strict``), for the in-kernel CUDA shim
    (:mod:`grader.harness.shims`): with ``cpu`` or ``gpu``, when torch in the sandbox has
    no usable CUDA device, code asking for one (``.to('cuda')``, ``.cuda()``,
    ``device='cuda'``, GPU checkpoints) runs on the CPU and the run says so once;
    ``strict`` lets such code fail as it would on a CPU-only torch."""

    gpus: int = 0
    memory_mb: int | None = None
    policy: Literal["cpu", "gpu", "strict"] = "cpu"


#: Where the named data sets are, inside the sandbox: ``/grader-data/NAME``.
DATASETS_MOUNT = "/grader-data"


@dataclass(frozen=True)
class DatasetBind:
    """A data set of the grader's data cache (:mod:`grader.datasets`) the notebook may
    read: ``source`` (its folder on the grader's machine) is bound read-only at
    ``/grader-data/<name>``; the kernel's ``GRADER_DATASETS`` (JSON, name to folder)
    says where each is."""

    name: str
    source: Path


@dataclass(frozen=True)
class NotebookTask:
    """Run the notebook the handout names (``wanted``, e.g. ``hw3.ipynb``) cell by cell.

    ``harvest``: the top-level names read after every cell (values, or models to probe).
    ``cell_budgets``: seconds for particular cells instead of the cell limit, keyed by the
    cell's 1-based position among all cells or by a marker text its source contains
    (the first matching key wins, positions before markers). ``calls``: functions the
    notebook defines, called in its kernel after its last cell, with the module worker's
    call semantics (:mod:`grader.sandbox.kernel_calls`); results in ``NotebookRun.calls``.
    """

    wanted: str
    harvest: tuple[AnswerRequest, ...] = ()
    cell_budgets: Mapping[int | str, float] = field(default_factory=dict)
    calls: tuple[Call, ...] = ()


@dataclass(frozen=True)
class ModuleTask:
    """Import the module the handout names (``wanted``, e.g. ``layers.py``), make ``calls``."""

    wanted: str
    calls: tuple[Call, ...] = ()


@dataclass(frozen=True)
class ExecutionRequest:
    """One submission's execution, complete: nothing else is read to run it.

    ``frameworks`` are imported by a warm template before any student code runs (a
    speed-up: a cold kernel imports them when the student does). ``seed`` seeds
    ``random``, NumPy and torch in the kernel. ``workroot``: where the scratch copies are
    made (default: the system's temporary folder; warm starts need it under ``/tmp``).
    """

    files: SubmissionFiles
    notebook: NotebookTask | None = None
    module: ModuleTask | None = None
    frameworks: tuple[Framework, ...] = ()
    devices: DeviceRequest = field(default_factory=DeviceRequest)
    provided: tuple[ProvidedFile, ...] = ()
    datasets: tuple[DatasetBind, ...] = ()
    limits: ExecutionLimits = field(default_factory=ExecutionLimits)
    mode: Mode = "strict"
    seed: int = KERNEL_SEED
    workroot: Path | None = None

    def __post_init__(self) -> None:
        if self.notebook is None and self.module is None:
            raise ValueError("an execution request names a notebook, a module or both")


@dataclass(frozen=True)
class Executed:
    """Everything the EXECUTION stage produced for one submission (plain data only)."""

    run: NotebookRun | None  # None when no notebook ran
    problem: str | None  # why the notebook did not run
    execution: ExecutionReport  # merged notebook + module report
    module_run: ModuleRun | None
    module_problem: str | None
    devices: Mapping[str, Any] | None = None  # GPU use (the result's `devices` section)
