"""What every check shares: its spec and details base classes, its context, the registry.

A check type is registered under the YAML ``type:`` it serves (the timm pattern: a
decorator and a dict). Its parts meet in its :class:`CheckType`:

* ``spec``: the rubric entry's model (unknown keys rejected), with its capabilities as
  class variables (``needs_expected``, ``needs_review``, ``needs_module``, …);
* ``grade``: the grading function, registered by :func:`register`;
* ``details``: the model of what it keeps in ``CheckResult.details`` (:class:`Details`);
* ``view``: how a report draws it (:class:`CheckView`, registered by :func:`view`): a
  function turning a result and its details into plain data, and a Jinja macro file.

The rubric loader, the pipeline, ``grade validate``, the reports and the summary look a
type up here; none of them names one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any, ClassVar, Generic, Literal, Self, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, WithJsonSchema

from grader.harness.encoding import ACCEPTED_FORMS
from grader.models import (
    Answer,
    AnswerRequest,
    Call,
    CallResult,
    CheckResult,
    CheckStatus,
    ExecutionReport,
)
from grader.normalize import to_plain


class StrictModel(BaseModel):
    """A frozen pydantic model that rejects keys it does not know."""

    model_config = ConfigDict(extra="forbid", frozen=True)


#: A float that may be infinite or NaN: results store those as the strings ``"inf"``,
#: ``"-inf"``, ``"nan"`` (JSON has no such numbers), which read back as floats.
Real = Annotated[
    float,
    WithJsonSchema({"anyOf": [{"type": "number"}, {"enum": ["inf", "-inf", "nan"]}]}),
]


class Details(StrictModel):
    """What a check keeps in ``CheckResult.details`` besides its score and message.

    Each check type subclasses this with its own fields, builds its details through it
    and reads them back through it in its view, so check and view share a written
    contract; the record itself holds plain data (:meth:`dump`). Any check may carry the
    two fields declared here.
    """

    #: A traceback shown under the check (the check's own code, or the student's, raised).
    traceback: str | None = None
    #: The Python type of an answer the grader cannot read (see :func:`unavailable`).
    type: str | None = None

    def dump(self) -> dict[str, Any]:
        """The details as plain data for the record: the fields the check set."""
        return self.model_dump(exclude_unset=True)


class CheckSpec(StrictModel):
    """Keys every check accepts."""

    id: str = Field(min_length=1, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    """The check's id, unique in the rubric: reports, overrides.yaml and gradebook exports name
    the check by it; also the default reference key."""
    type: str
    """The check type: which registered check grades this entry."""
    prompt: str = ""
    """The task in words, shown in the student's report above the result (optional)."""
    show_expected: bool = True
    """Whether reports show students the expected value; false keeps it out of the result file
    too."""
    expected: str | None = None
    """The key of the reference's compute() values this check compares with; default: the
    check's id."""

    #: The check calls functions of the student's module (the rubric must name ``module:``).
    needs_module: ClassVar[bool] = False
    #: The check reads the notebook beyond its harvested answers (its Markdown, say).
    needs_notebook: ClassVar[bool] = False
    #: The check compares with a value of the reference (``compute()[reference_key]`` or
    #: its own ``compute_expected``), which must therefore exist. False where the rubric
    #: entry itself says everything (a heading to find, concepts to look for).
    needs_expected: ClassVar[bool] = True
    #: An instructor marks the answer: the check only finds it and suggests a mark
    #: (status ``manual``). ``grade validate`` asks a solution only to have its answer
    #: found; review pages and integrity reports ask this, never a type name.
    needs_review: ClassVar[bool] = False

    @property
    def reference_key(self) -> str:
        """The key of the reference's computed values this check compares with."""
        return self.expected or self.id

    def max_points(self, expected: Mapping[str, Any]) -> float:
        """Points this check is worth (a table's worth depends on the reference's rows)."""
        raise NotImplementedError

    def requests(self) -> list[AnswerRequest]:
        """Top-level names the harness must harvest for this check."""
        return []

    def compute_expected(self, reference: ModuleType) -> Any:
        """This check's expected value computed from the loaded reference module, or
        ``None`` to take ``reference.compute()[reference_key]`` (the default). Runs in the
        grader; the result is cached with the other expected values."""
        return None

    def calls(self, expected: Mapping[str, Any]) -> list[Call]:
        """Calls of the student's functions this check needs (made in the sandbox, where
        :meth:`call_source` says)."""
        return []

    def call_source(self) -> CallSource | None:
        """Where :meth:`calls` are made: ``module`` (the student's module, in a worker),
        ``notebook`` (functions the notebook defines, in its kernel after the last cell),
        None when the check makes no calls."""
        return "module" if self.needs_module else None

    def for_rubric(self, *, module: str | None) -> Self:
        """This spec with the defaults that depend on the rubric's top level filled in
        (the rubric loader calls it once; ``module``: the rubric's ``module:``)."""
        return self

    def rules(self) -> list[str]:
        """The behavioural rules this check enforces beyond comparing values, in words
        (``grade validate`` lists them so an instructor can hold them against the
        handout). Each is declared by a rubric key that defaults to off."""
        return []


CallSource = Literal["module", "notebook"]
"""Where a check's calls are made (:meth:`CheckSpec.call_source`)."""


class CallingSpec(CheckSpec):
    """A check that calls the student's functions: the ``source`` key and its results."""

    source: CallSource | None = None
    """Where the function or class called lives: ``module`` (in the module the rubric
    names under ``module:``, imported in a worker) or ``notebook`` (defined by the
    notebook, called in the same kernel after its last cell, on the hidden cases). Default:
    ``module`` when the rubric names a ``module:``, otherwise ``notebook``."""

    def call_source(self) -> CallSource:
        """``source``, or ``module`` for a spec not loaded from a rubric."""
        return self.source or "module"

    def for_rubric(self, *, module: str | None) -> Self:
        """``source`` defaulted from the rubric: ``module`` when it names one."""
        if self.source is not None:
            return self
        return self.model_copy(update={"source": "module" if module else "notebook"})

    def call_results(self, ctx: CheckContext) -> Mapping[str, CallResult]:
        """The results of this check's calls, by call id, from where they were made."""
        return ctx.notebook_calls if self.call_source() == "notebook" else ctx.calls

    def calls_unavailable(self, ctx: CheckContext, function: str) -> CheckResult | None:
        """The result when none of ``function``'s calls could be made: its module is
        missing (``fail``) or did not import (``error``), or the notebook did not run
        (``fail``); None when the calls were made (each result says how it went)."""
        points = self.max_points(ctx.expected)
        if self.call_source() == "notebook":
            if ctx.notebook_problem is None:
                return None
            return result(
                self, points, 0, "fail", f"{function} could not be graded: {ctx.notebook_problem}"
            )
        if ctx.module_problem is None:
            return None
        imported = ctx.execution is not None and ctx.execution.module is not None
        return result(
            self,
            points,
            0,
            "error" if imported else "fail",
            f"{function} could not be graded: {ctx.module_problem}",
        )


@dataclass(frozen=True)
class CheckContext:
    """What a check may look at: the student's harvested data and the reference's."""

    answers: Mapping[str, Answer]
    expected: Mapping[str, Any]
    markdown: tuple[str, ...]
    execution: ExecutionReport | None
    notebook_problem: str | None = None  # why nothing could run (no notebook, not JSON)
    extras: Mapping[str, Any] = field(default_factory=dict)
    calls: Mapping[str, CallResult] = field(default_factory=dict)  # by Call.id
    notebook_calls: Mapping[str, CallResult] = field(default_factory=dict)  # in the kernel
    module_problem: str | None = None  # why the module could not be imported / found


S = TypeVar("S", bound=CheckSpec)
GradeFn = Callable[[Any, CheckContext], CheckResult]
#: A view: a result and its details (read back through the type's model) → plain data
#: for the type's macro ``body(b, c)`` (``b``: this data, ``c``: the check's block).
ViewFn = Callable[[CheckResult, Any], Mapping[str, Any]]
#: The class summary's keys of a wrong answer: ``(short text, is it code?)`` per way the
#: result is wrong, or None for the summary's default (the answer, else the message).
WrongFn = Callable[[CheckResult, Any], list[tuple[str, bool]] | None]

#: Where the check types of this package keep their Jinja macro files.
MACROS = Path(__file__).resolve().parent / "templates"


@dataclass(frozen=True)
class CheckView:
    """How reports draw a check type.

    ``body`` turns a result into the plain data its macro file draws (None: the report's
    default, the expected and submitted values as text); ``macros`` is a Jinja file
    defining ``body(b, c)`` (None: the report's default); ``word`` names the type in a
    report; ``breakable`` lets the check's block break across pages (long free text);
    ``wrong`` gives the class summary's keys of a wrong answer.
    """

    word: str
    body: ViewFn | None = None
    macros: Path | None = None
    breakable: bool = False
    wrong: WrongFn | None = None


@dataclass(frozen=True)
class CheckType(Generic[S]):
    """A registered check type: where its spec, grading, details and view meet."""

    name: str
    spec: type[S]
    grade: Callable[[S, CheckContext], CheckResult]
    details: type[Details] = Details
    view: CheckView | None = None


REGISTRY: dict[str, CheckType[Any]] = {}


def register(
    name: str, spec: type[S], *, details: type[Details] = Details
) -> Callable[[Callable[[S, CheckContext], CheckResult]], Callable[[S, CheckContext], CheckResult]]:
    """Register ``fn`` as the grader of YAML ``type: name`` checks described by ``spec``,
    whose results keep ``details`` (the type's :class:`Details` model)."""

    def decorate(
        fn: Callable[[S, CheckContext], CheckResult],
    ) -> Callable[[S, CheckContext], CheckResult]:
        if name in REGISTRY:
            raise ValueError(f"check type {name!r} registered twice")
        REGISTRY[name] = CheckType(name=name, spec=spec, grade=fn, details=details)
        return fn

    return decorate


def view(
    name: str,
    *,
    macros: Path | None = None,
    word: str | None = None,
    breakable: bool = False,
    wrong: WrongFn | None = None,
) -> Callable[[ViewFn], ViewFn]:
    """Register ``fn`` as the report view of check type ``name`` (registered before with
    :func:`register`); see :class:`CheckView` for the other parts."""

    def decorate(fn: ViewFn) -> ViewFn:
        entry = REGISTRY.get(name)
        if entry is None:
            raise ValueError(f"register check type {name!r} before its view")
        if entry.view is not None:
            raise ValueError(f"check type {name!r} has a view already")
        if macros is not None and not macros.is_file():
            raise ValueError(f"check type {name!r}: no macro file {macros}")
        shown = CheckView(word or default_word(name), fn, macros, breakable, wrong)
        REGISTRY[name] = dataclasses.replace(entry, view=shown)
        return fn

    return decorate


def default_word(name: str) -> str:
    """A type's name in words when its view gives none (``shape_table`` → shape table)."""
    return name.replace("_", " ")


def view_of(name: str) -> CheckView:
    """The report view of check type ``name``; the report's default for a type with
    none, or one not registered here (a result written by another grader version)."""
    entry = REGISTRY.get(name)
    if entry is not None and entry.view is not None:
        return entry.view
    return CheckView(default_word(name))


def read_details(check: CheckResult) -> Details | None:
    """A result's details read back through its type's model (the base model for a type
    not registered here); None when they do not fit it (a result another version of the
    type wrote), for callers to fall back on what every result has. The details are made
    plain first, as the results file stores them, so a record read from disk and one
    straight from grading (arrays, tuples) read the same."""
    entry = REGISTRY.get(check.type)
    model = entry.details if entry is not None else Details
    try:
        return model.model_validate(to_plain(check.details or {}))
    except ValidationError:
        return None


def result(
    spec: CheckSpec,
    top: float,
    score: float,
    status: CheckStatus,
    message: str,
    *,
    expected: Any = None,
    got: Any = None,
    details: Details | None = None,
) -> CheckResult:
    """Build a CheckResult for ``spec`` worth ``top``; expected values dropped unless shown;
    ``details`` kept as the plain data its model dumps."""
    got = preview(got)
    return CheckResult(
        id=spec.id,
        type=spec.type,
        score=round(max(0.0, min(score, top)), 2),
        max_score=round(top, 2),
        status=status,
        message=message,
        expected=expected if spec.show_expected else None,
        got=got,
        details=details.dump() if details is not None else None,
        show_expected=spec.show_expected,
        prompt=spec.prompt,
    )


def status_for(score: float, top: float) -> CheckStatus:
    """pass / partial / fail from points earned."""
    if top > 0 and score >= top - 1e-9:
        return "pass"
    return "partial" if score > 0 else "fail"


def unavailable(spec: CheckSpec, ctx: CheckContext, name: str, top: float) -> CheckResult | None:
    """The result for an answer that is absent or unusable, or None when it is usable.

    Shared by every check that reads a harvested name, so missing, crashed and
    unsupported answers read the same everywhere.
    """
    if ctx.notebook_problem is not None:
        return result(spec, top, 0, "fail", f"{name} could not be graded: {ctx.notebook_problem}")
    answer = ctx.answers.get(name)
    if answer is None or answer.status == "missing":
        msg = (
            answer.message
            if answer is not None and answer.message
            else (
                f"{name} is not defined at the notebook's top level: assign it in a code cell "
                "and make sure that cell runs"
            )
        )
        return result(spec, top, 0, "fail", msg)
    if answer.status == "error":
        return result(spec, top, 0, "error", answer.message or f"{name} could not be read")
    if answer.status == "unsupported":
        return result(
            spec,
            top,
            0,
            "fail",
            answer.message
            or f"{name} has an unsupported type ({answer.type_name}): store it as "
            + ACCEPTED_FORMS,
            details=Details(type=answer.type_name),
        )
    if answer.status == "too_large":
        return result(spec, top, 0, "fail", answer.message or f"{name} is too large to grade")
    return None


_MAX_TEXT = 2000
_MAX_ITEMS = 4096


def preview(value: Any) -> Any:
    """A student's answer as stored in results: long strings and huge arrays shortened.

    A result file must stay small whatever a student assigns (a 10-million-character
    string, a 1000×1000 matrix); the comparison itself always uses the full value.
    """
    if isinstance(value, str):
        return (
            value
            if len(value) <= _MAX_TEXT
            else value[:_MAX_TEXT] + f"… ({len(value):,} characters)"
        )
    if isinstance(value, np.ndarray):
        if value.size > _MAX_ITEMS:
            return {"shape": list(value.shape), "note": "too large to show"}
        return value
    if isinstance(value, list | tuple):
        if _count(value) > _MAX_ITEMS:
            return {"length": len(value), "note": "too large to show"}
        return [preview(v) for v in value]
    if isinstance(value, dict):
        if _count(value) > _MAX_ITEMS:
            return {"keys": len(value), "note": "too large to show"}
        return {k: preview(v) for k, v in value.items()}
    return value


def _count(value: Any, budget: int = _MAX_ITEMS + 1) -> int:
    """Leaves in a nested value, counting no further than ``budget``."""
    if isinstance(value, list | tuple | dict):
        total = 0
        for item in value.values() if isinstance(value, dict) else value:
            total += _count(item, budget - total)
            if total >= budget:
                break
        return total
    if isinstance(value, np.ndarray):
        return int(value.size)
    return 1
