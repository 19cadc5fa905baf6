"""What every check shares: its spec base class, its context, and the registry.

A check type is registered under the YAML ``type:`` it serves (the timm pattern: a
decorator and a dict). The rubric loader looks the type up here, so a check type cannot
exist without a spec model that rejects unknown keys.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, ClassVar, Generic, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

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


class StrictModel(BaseModel):
    """A frozen pydantic model that rejects keys it does not know."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class CheckSpec(StrictModel):
    """Keys every check accepts."""

    id: str = Field(min_length=1, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    type: str
    prompt: str = ""
    show_expected: bool = True
    expected: str | None = None  # reference key; defaults to the check id

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
        """Calls of the student's module this check needs (run in the sandboxed worker)."""
        return []

    def rules(self) -> list[str]:
        """The behavioural rules this check enforces beyond comparing values, in words
        (``grade validate`` lists them so an instructor can hold them against the
        handout). Each is declared by a rubric key that defaults to off."""
        return []


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
    module_problem: str | None = None  # why the module could not be imported / found


S = TypeVar("S", bound=CheckSpec)
GradeFn = Callable[[Any, CheckContext], CheckResult]


@dataclass(frozen=True)
class CheckType(Generic[S]):
    """A registered check type: the spec model and the grading function."""

    name: str
    spec: type[S]
    grade: Callable[[S, CheckContext], CheckResult]

    @property
    def needs_review(self) -> bool:
        """Results of this type await an instructor's mark (see ``CheckSpec.needs_review``)."""
        return self.spec.needs_review


REGISTRY: dict[str, CheckType[Any]] = {}


def register(
    name: str, spec: type[S]
) -> Callable[[Callable[[S, CheckContext], CheckResult]], Callable[[S, CheckContext], CheckResult]]:
    """Register ``fn`` as the grader of YAML ``type: name`` checks described by ``spec``."""

    def decorate(
        fn: Callable[[S, CheckContext], CheckResult],
    ) -> Callable[[S, CheckContext], CheckResult]:
        if name in REGISTRY:
            raise ValueError(f"check type {name!r} registered twice")
        REGISTRY[name] = CheckType(name=name, spec=spec, grade=fn)
        return fn

    return decorate


def result(
    spec: CheckSpec,
    top: float,
    score: float,
    status: CheckStatus,
    message: str,
    *,
    expected: Any = None,
    got: Any = None,
    details: Any = None,
) -> CheckResult:
    """Build a CheckResult for ``spec`` worth ``top``; expected values dropped unless shown."""
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
        details=details,
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
            details={"type": answer.type_name},
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
