"""Every limit of one execution, in one record, with each default declared once.

:class:`LimitSettings` holds the limits an assignment may set: a rubric's ``limits:``
mapping is validated by it (same names, same units, unknown keys rejected), so a field
added here is a rubric key at once. :class:`ExecutionLimits` adds the grader's own limits
and is what the sandbox enforces: the pipeline builds one per submission from the
rubric's settings (``ExecutionLimits(**settings.model_dump())``), and every runner and
session reads its limits from it. Where each one is enforced is listed in CONTRIBUTING.md
("Adding a limit").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextvars import ContextVar
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from grader.headings import heading_matches
from grader.sandbox.nbfile import enclosing_headings

MIB = 2**20


class CellBudget(BaseModel):
    """Seconds for the cells with a tag, or under a Markdown heading, instead of the cell
    limit: ``{tag: train, timeout: 600}`` or ``{heading: Q7, timeout: 900}``.

    ``tag``: a cell metadata tag (nbformat ``metadata.tags``, as Jupyter's tag editor and
    Colab write them). ``heading``: the cells under a Markdown heading for that part,
    matched as a text answer's ``heading:`` is (``Q7`` finds ``## Q7 (b) Training``; any
    enclosing heading level counts). Where several budgets match a cell the largest wins;
    what is left of ``notebook_timeout`` caps every cell.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    tag: str | None = Field(default=None, min_length=1)
    """A cell metadata tag; the budget applies to every cell carrying it."""
    heading: str | None = Field(default=None, min_length=1)
    """A heading's part (``Q7``); the budget applies to every code cell under it."""
    timeout: float = Field(gt=0)
    """Seconds each matching cell may run."""

    @model_validator(mode="after")
    def _one_selector(self) -> CellBudget:
        if (self.tag is None) == (self.heading is None):
            raise ValueError("a cell budget names exactly one of `tag:` or `heading:`")
        return self


class LimitSettings(BaseModel):
    """The limits a rubric may set under ``limits:`` (seconds, MiB, counts)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cell_timeout: float = Field(default=60.0, gt=0)
    """Seconds one notebook cell may run; it is then interrupted and recorded as timed out,
    and the notebook runs on (a kernel that does not stop is shut down instead)."""
    notebook_timeout: float = Field(default=900.0, gt=0)
    """Seconds all cells of a notebook may run together; cells not started by then do not run."""
    cells: tuple[CellBudget, ...] = ()
    """Time budgets for particular cells (training cells), by cell tag or by the heading
    the cells sit under: ``cells: [{tag: train, timeout: 600}, {heading: Q7, timeout:
    900}]``. The largest matching budget wins over ``cell_timeout``, capped by what is left
    of ``notebook_timeout``; a cell past its budget is interrupted like any other and the
    answers defined before it still count."""
    gpu_memory_mb: int | None = Field(default=None, ge=256)
    """MiB of GPU memory one submission should use (with `devices: gpu`). Advisory: it
    is passed to the kernel (``GRADER_GPU_MEMORY_MB``, TensorFlow's memory growth, JAX's
    memory fraction) before student code runs; CUDA itself enforces no per-process cap."""
    memory_mb: int = Field(default=2048, ge=256)
    """MiB of memory for the submission's whole process tree (kernel or worker and its
    children)."""
    processes: int = Field(default=256, ge=8)
    """Processes and threads the submission may have at once."""
    import_timeout: float = Field(default=20.0, gt=0)
    """Seconds importing the student's module may take."""
    call_timeout: float = Field(default=10.0, gt=0)
    """Seconds one call of a module's or a notebook's function may take; the worker (or the
    kernel) is then restarted for the next call."""
    module_timeout: float = Field(default=300.0, gt=0)
    """Seconds all calls of the module's (or the notebook's) functions may take together."""
    provided_mb: int = Field(default=2048, ge=1)
    """MiB of the rubric's `files:`, all together; a larger set is refused when the rubric
    is loaded."""


class ExecutionLimits(LimitSettings):
    """Every limit of one execution: the rubric's settings plus the grader's own.

    Resource limits (memory, processes, CPU, rlimits, disk quotas, ``/tmp``) are applied
    by :mod:`grader.sandbox.confine` for both the cold and the warm session; time and
    size limits by the notebook runner (:mod:`grader.sandbox.cells`) and the module
    runner (:mod:`grader.sandbox.module`).
    """

    cpu_cores: float = Field(default=1.0, gt=0)
    """CPU quota in cores; also the number of BLAS threads of the kernel."""
    interrupt_grace: float = Field(default=5.0, gt=0)
    """Seconds a kernel has to stop after an interrupt before it is killed."""
    harvest_timeout: float = Field(default=60.0, gt=0)
    """Seconds one harvest of an answer may take (a model probe's forward pass)."""
    kernel_start_timeout: float = Field(default=60.0, gt=0)
    """Seconds until the kernel is ready and the harness is set up."""
    worker_start_timeout: float = Field(default=30.0, gt=0)
    """Seconds until a module worker and NumPy have started."""
    max_answer_bytes: int = Field(default=64 * MIB, gt=0)
    """Bytes one harvested answer may take, encoded; larger answers are too large to grade."""
    max_call_bytes: int = Field(default=64 * MIB, gt=0)
    """Bytes one module call's JSON record and arrays may take."""
    max_restarts: int = Field(default=3, ge=0)
    """New module workers started after hung calls, at most."""
    file_size_bytes: int = Field(default=256 * MIB, gt=0)
    """The largest file the submission may write (RLIMIT_FSIZE)."""
    open_files: int = Field(default=256, gt=0)
    """Files the submission may hold open at once (RLIMIT_NOFILE)."""
    scratch_bytes: int = Field(default=1024 * MIB, gt=0)
    """Bytes of the scratch copy of the submission (a tmpfs quota)."""
    outbox_bytes: int = Field(default=256 * MIB, gt=0)
    """Bytes of the outbox the harness writes answers to (a tmpfs quota)."""
    tmp_bytes: int = Field(default=256 * MIB, gt=0)
    """Bytes of the sandbox's private /tmp and /dev/shm."""

    @property
    def memory_bytes(self) -> int:
        """The memory limit in bytes (the cgroup's unit)."""
        return self.memory_mb * MIB


def matching_budgets(
    rules: Sequence[CellBudget],
    cells: list[Any],
    position: int,
    headings: dict[int, tuple[str, ...]] | None = None,
) -> list[float]:
    """The seconds of every rule in ``rules`` that matches the cell at 1-based
    ``position`` of ``cells`` (nbformat cells): by a metadata tag it carries, or by a
    Markdown heading enclosing it (:func:`grader.headings.heading_matches`).
    ``headings``: :func:`~grader.sandbox.nbfile.enclosing_headings` of ``cells``, when
    the caller keeps it (computed here otherwise)."""
    if not rules:
        return []
    meta = cells[position - 1].get("metadata") or {}
    raw_tags = meta.get("tags") or []
    tags = {str(t) for t in raw_tags} if isinstance(raw_tags, list) else set()
    around = (headings if headings is not None else enclosing_headings(cells)).get(position, ())
    return [
        rule.timeout
        for rule in rules
        if (rule.tag is not None and rule.tag in tags)
        or (rule.heading is not None and any(heading_matches(h, rule.heading) for h in around))
    ]


#: Called as ``hook(n, total)`` when the notebook runner starts its ``n``-th code cell of
#: ``total`` (1-based): how a batch's progress bar learns which cell of a long notebook
#: runs. Set it in the thread that calls :func:`grader.sandbox.execute` (a context
#: variable: each grading thread has its own; ``asyncio.run`` carries it to the runner).
CELL_PROGRESS: ContextVar[Callable[[int, int], None] | None] = ContextVar(
    "cell_progress", default=None
)
