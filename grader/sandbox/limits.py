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

from pydantic import BaseModel, ConfigDict, Field

MIB = 2**20


class LimitSettings(BaseModel):
    """The limits a rubric may set under ``limits:`` (seconds, MiB, counts)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cell_timeout: float = Field(default=60.0, gt=0)  # one notebook cell
    notebook_timeout: float = Field(default=900.0, gt=0)  # all cells of the notebook
    memory_mb: int = Field(default=2048, ge=256)  # the submission's whole process tree
    processes: int = Field(default=256, ge=8)  # processes and threads at once
    import_timeout: float = Field(default=20.0, gt=0)  # importing the student's module
    call_timeout: float = Field(default=10.0, gt=0)  # one call of a module/notebook function
    module_timeout: float = Field(default=300.0, gt=0)  # all calls of the module/notebook


class ExecutionLimits(LimitSettings):
    """Every limit of one execution: the rubric's settings plus the grader's own.

    Resource limits (memory, processes, CPU, rlimits, disk quotas, ``/tmp``) are applied
    by :mod:`grader.sandbox.confine` for both the cold and the warm session; time and
    size limits by the notebook runner (:mod:`grader.sandbox.cells`) and the module
    runner (:mod:`grader.sandbox.module`).
    """

    cpu_cores: float = Field(default=1.0, gt=0)  # CPU quota; also the kernel's BLAS threads
    interrupt_grace: float = Field(default=5.0, gt=0)  # after an interrupt, then kill
    harvest_timeout: float = Field(default=60.0, gt=0)  # one harvest (a probe's forward pass)
    kernel_start_timeout: float = Field(default=60.0, gt=0)  # kernel ready, harness set up
    worker_start_timeout: float = Field(default=30.0, gt=0)  # worker and NumPy start
    max_answer_bytes: int = Field(default=64 * MIB, gt=0)  # one harvested answer, encoded
    max_call_bytes: int = Field(default=64 * MIB, gt=0)  # one call's JSON record and arrays
    max_restarts: int = Field(default=3, ge=0)  # new module workers after a hung call
    file_size_bytes: int = Field(default=256 * MIB, gt=0)  # RLIMIT_FSIZE
    open_files: int = Field(default=256, gt=0)  # RLIMIT_NOFILE
    scratch_bytes: int = Field(default=1024 * MIB, gt=0)  # tmpfs quota of the scratch copy
    outbox_bytes: int = Field(default=256 * MIB, gt=0)  # tmpfs quota of the outbox
    tmp_bytes: int = Field(default=256 * MIB, gt=0)  # the sandbox's private /tmp and /dev/shm

    @property
    def memory_bytes(self) -> int:
        """The memory limit in bytes (the cgroup's unit)."""
        return self.memory_mb * MIB
