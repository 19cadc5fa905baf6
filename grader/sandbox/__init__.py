"""The sandbox: runs one submission's notebook and/or module confined, returns plain data.

One entry, :func:`execute`: an :class:`ExecutionRequest` in (the files, what to run, the
answers to harvest and the calls to make, what to preload, one :class:`ExecutionLimits`,
the mode), an :class:`Executed` out. Before a batch, :func:`sandbox_warnings` says what
cannot be protected here and :func:`preflight` starts one kernel. Warm or cold, notebook
or module, cgroup v1 or v2 are decided inside. Errors are
:class:`~grader.errors.SandboxError` subclasses.

Nothing outside this package imports its modules; it imports nothing from
``grader.rubric``, ``grader.reference``, ``grader.checks`` or ``grader.report``.
"""

from grader.models import (
    Answer,
    AnswerRequest,
    Call,
    CallResult,
    CellFailure,
    ExecutionReport,
    ModuleRun,
    NotebookRun,
    ProbeSpec,
    Stored,
)
from grader.sandbox import gpus
from grader.sandbox.entry import execute
from grader.sandbox.errors import (
    CgroupError,
    KernelStartError,
    SandboxError,
    SandboxUnavailable,
    UnsupportedRequest,
)
from grader.sandbox.limits import CELL_PROGRESS, ExecutionLimits, LimitSettings
from grader.sandbox.nbfile import NotebookFormatError, read_notebook
from grader.sandbox.protections import detect_protections
from grader.sandbox.provided import provided_size
from grader.sandbox.provided import target_path as provided_target
from grader.sandbox.readiness import preflight, sandbox_warnings
from grader.sandbox.records import (
    KERNEL_SEED,
    DatasetBind,
    DeviceRequest,
    Executed,
    ExecutionRequest,
    Framework,
    Mode,
    ModuleTask,
    NotebookTask,
    ProvidedFile,
    SubmissionFiles,
)

__all__ = [
    "CELL_PROGRESS",
    "KERNEL_SEED",
    "Answer",
    "AnswerRequest",
    "Call",
    "CallResult",
    "CellFailure",
    "CgroupError",
    "DatasetBind",
    "DeviceRequest",
    "Executed",
    "ExecutionLimits",
    "ExecutionReport",
    "ExecutionRequest",
    "Framework",
    "KernelStartError",
    "LimitSettings",
    "Mode",
    "ModuleRun",
    "ModuleTask",
    "NotebookFormatError",
    "NotebookRun",
    "NotebookTask",
    "ProbeSpec",
    "ProvidedFile",
    "SandboxError",
    "SandboxUnavailable",
    "Stored",
    "SubmissionFiles",
    "UnsupportedRequest",
    "detect_protections",
    "execute",
    "gpus",
    "preflight",
    "provided_size",
    "provided_target",
    "read_notebook",
    "sandbox_warnings",
]
