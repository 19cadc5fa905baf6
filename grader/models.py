"""The records that flow between the grader's stages.

Every record is a frozen dataclass holding plain data, so any stage can be replayed
from what the previous one wrote to disk. Student-derived values inside these records
were decoded in the grader's process from JSON and ``.npy`` files (never pickles).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

CheckStatus = Literal["pass", "partial", "fail", "error", "manual"]
AnswerStatus = Literal["ok", "missing", "unsupported", "too_large", "error"]
FailureKind = Literal["error", "timeout", "kernel_died", "limit"]
CallStatus = Literal["ok", "error", "timeout", "not_run", "missing_function", "unsupported"]


@dataclass(frozen=True)
class Submission:
    """One student's work: a folder, or a single file as LMS downloads come."""

    student: str
    path: Path
    files: tuple[Path, ...]
    is_single_file: bool = False


@dataclass(frozen=True)
class ProbeSpec:
    """How a student's ``torch.nn.Module`` is probed inside the kernel.

    The input batch is generated in the kernel from ``seed`` (uniform in
    ``[low, high]``), so no hidden data ever enters the student's process.
    """

    input_shape: tuple[int, ...]
    low: float = 0.0
    high: float = 1.0
    seed: int = 0
    dtype: str = "float32"


@dataclass(frozen=True)
class AnswerRequest:
    """A top-level name the harness harvests: a plain value, or a model to probe."""

    name: str
    kind: Literal["value", "model"] = "value"
    probe: ProbeSpec | None = None


@dataclass(frozen=True)
class CellFailure:
    """A notebook cell that did not finish normally."""

    cell: int  # 1-based position among all cells of the notebook
    kind: FailureKind
    ename: str
    evalue: str
    traceback: str  # trimmed, ANSI codes removed


@dataclass(frozen=True)
class ExecutionReport:
    """What happened when a submission's notebook ran."""

    notebook: str | None  # file name that was run, None when nothing could run
    cells_total: int
    cells_run: int
    cells_not_run: tuple[int, ...]
    failures: tuple[CellFailure, ...]
    timed_out: bool
    kernel_died: bool
    limit_hit: str | None
    warnings: tuple[str, ...]
    duration_s: float
    module: str | None = None  # the module file imported (layers.py), None when none
    module_problem: str | None = None  # why it could not be found or imported

    @classmethod
    def not_run(cls, notebook: str | None = None, warnings: Sequence[str] = ()) -> ExecutionReport:
        """The report when no notebook ran (none asked for, none found, unreadable, or
        the grader itself failed), carrying the warnings that say why."""
        return cls(
            notebook=notebook,
            cells_total=0,
            cells_run=0,
            cells_not_run=(),
            failures=(),
            timed_out=False,
            kernel_died=False,
            limit_hit=None,
            warnings=tuple(warnings),
            duration_s=0.0,
        )


@dataclass(frozen=True)
class Answer:
    """A harvested answer decoded into plain Python/NumPy data in the grader."""

    name: str
    status: AnswerStatus
    value: Any = None
    type_name: str = ""
    cell: int | None = None  # the cell after which this value was last harvested
    message: str = ""


@dataclass(frozen=True)
class NotebookRun:
    """The execution report of one notebook plus the answers harvested from it."""

    execution: ExecutionReport
    answers: dict[str, Answer]
    markdown: tuple[str, ...] = ()  # markdown cell sources in order, for text checks
    code: tuple[str, ...] = ()  # code cell sources in order
    code_cells: tuple[tuple[int, str], ...] = ()  # (1-based cell position, source) per code cell
    # (1-based position, enclosing Markdown heading lines) per cell that displayed an image
    # (display_data / execute_result with image/png or image/svg+xml); no image data kept
    image_cells: tuple[tuple[int, tuple[str, ...]], ...] = ()
    # the calls of functions the notebook defines, made in its kernel after the last
    # cell (a function or statistical check with ``source: notebook``), by Call.id
    calls: Mapping[str, CallResult] = field(default_factory=dict)


@dataclass(frozen=True)
class Stored:
    """Refers to a value kept in the module worker from an earlier call.

    ``key`` is the ``store`` key of that call; ``index`` picks an element of a returned
    tuple (``1`` for the cache of ``(out, cache)``), ``None`` the whole value.
    """

    key: str
    index: int | None = None


@dataclass(frozen=True)
class Call:
    """One call of a student's module function, made inside the sandboxed worker.

    ``args``/``kwargs`` hold NumPy arrays, numbers, strings, dicts/lists/tuples of those,
    or :class:`Stored` references; they travel to the worker as JSON + ``.npy``.
    ``store`` keeps the raw return value in the worker under that key; ``return_args``
    sends these positional arguments back after the call (stateful dicts such as
    ``bn_param``); ``seed`` seeds ``random``, NumPy and (when imported) torch right
    before the call. ``record_structure`` asks the worker to record, while the function
    runs, the modules that ran and the torch functions called
    (:mod:`grader.harness.recorders`; only ``structure`` checks ask, it slows torch calls).
    """

    id: str  # unique within a submission, e.g. "affine_backward/case3"
    function: str  # name in the student's module
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    store: str | None = None
    return_args: tuple[int, ...] = ()
    seed: int | None = None
    record_structure: bool = False


@dataclass(frozen=True)
class CallResult:
    """What one :class:`Call` gave, decoded in the grader (tuples come back as lists)."""

    id: str
    status: CallStatus
    value: Any = None
    args_after: Mapping[int, Any] = field(default_factory=dict)
    mutated: tuple[int, ...] = ()  # positions of ndarray args modified in place
    message: str = ""  # error text a student can act on
    traceback: str = ""
    # What the recorders saw during the call (``Call.record_structure``), read back by
    # ``grader.harness.recorders.clean_record``; None when not asked for or not written.
    structure: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class ModuleRun:
    """The import of a student's module and the results of every call made on it."""

    module: str | None  # file name imported, None when absent
    import_error: str | None  # why the module could not be imported
    results: Mapping[str, CallResult]
    duration_s: float
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class CheckOverride:
    """An instructor's mark replacing a check's automatic one (``overrides.yaml``).

    ``points`` is the check's score once overridden; ``original_score`` and
    ``original_status`` are what the grader gave, kept so reports can show both.
    """

    points: float
    comment: str
    original_score: float
    original_status: str


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one rubric check for one student.

    ``details`` is plain JSON-able data built by the check type's details model
    (:class:`grader.checks.base.Details`), so a record round-trips through its JSON file
    unchanged; the check type's view reads it back through the same model.
    """

    id: str
    type: str
    score: float
    max_score: float
    status: CheckStatus
    message: str
    expected: Any = None
    got: Any = None
    details: Mapping[str, Any] | None = None
    show_expected: bool = True
    prompt: str = ""
    override: CheckOverride | None = None


@dataclass(frozen=True)
class QuestionResult:
    """A question's checks and its points."""

    id: str
    title: str
    score: float
    max_score: float
    checks: tuple[CheckResult, ...]


@dataclass(frozen=True)
class Provenance:
    """Everything needed to reproduce a grade."""

    submission_sha256: str
    rubric_sha256: str
    reference_sha256: str
    grader_version: str
    python: str
    torch: str
    numpy: str
    seeds: dict[str, int] = field(default_factory=dict)
    graded_at: str = ""
    provided_sha256: str | None = None  # the rubric's `files:` contents; None without any


@dataclass(frozen=True)
class GradeRecord:
    """One student's complete result, written to ``results/<student>.json``.

    The optional sections (result schema version 2) are free-form JSON objects that
    later stages fill; None means the section is absent from the file: ``late`` (the
    submission time and any lateness penalty), ``review`` (an instructor's review
    state), ``devices`` (the devices the code ran on) and ``integrity`` (similarity or
    integrity findings) and ``lms`` (the LMS's display name, roster facts and flags such
    as "no submission": :class:`grader.lms.StudentInfo`). See
    ``grader/schema/result.schema.json``.
    """

    student: str
    assignment: str
    title: str
    course: str
    score: float
    max_score: float
    questions: tuple[QuestionResult, ...]
    execution: ExecutionReport
    provenance: Provenance
    late: Mapping[str, Any] | None = None
    review: Mapping[str, Any] | None = None
    devices: Mapping[str, Any] | None = None
    integrity: Mapping[str, Any] | None = None
    lms: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Batch:
    """Facts about a whole batch, true of every result in it, kept in ``OUT/batch.json``
    (``OUT/results/`` holds one file per student and nothing else).

    Written when grading starts, so an interrupted batch has it too; ``grade report``
    reads it for the warning every report carries.
    """

    assignment: str
    rubric_sha256: str
    reference_sha256: str
    sandbox: str  # strict | permissive | off
    warnings: tuple[str, ...] = ()  # sandbox protections that were off (here or on workers)
    cluster: str | None = None  # the Dask scheduler the executions ran on
    grader_version: str = ""
    started_at: str = ""  # ISO 8601, UTC
    layout: str = "plain"  # how intake read the submissions (canvas, moodle, ...)
    roster: str | None = None  # the --roster file, None without one

    @property
    def sandbox_warning(self) -> str | None:
        """The warning shown at the top of every report, or None when nothing was off."""
        return "; ".join(self.warnings) or None
