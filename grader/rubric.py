"""Rubric YAML → typed, validated ``Rubric``; errors name the file, the line and the key."""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from grader.checks import REGISTRY
from grader.checks.base import CheckSpec, StrictModel
from grader.errors import RubricError
from grader.late import LatePolicy
from grader.models import AnswerRequest, Call
from grader.sandbox import Framework, LimitSettings
from grader.yamlpos import Path_, line_of, load_with_lines

RUBRICS_DIR = Path(__file__).resolve().parent.parent / "rubrics"


#: A rubric's ``limits:``: the sandbox declares which of its limits an assignment may set,
#: with their defaults and bounds (:class:`grader.sandbox.ExecutionLimits` adds the rest).
Limits = LimitSettings


class QuestionSpec(StrictModel):
    """A question: its id (a gradebook column), title and checks."""

    id: str = Field(min_length=1, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    title: str = ""
    prompt: str = ""
    checks: list[Any] = Field(min_length=1)


class RubricFile(StrictModel):
    """The top level of a rubric file."""

    assignment: str = Field(min_length=1)
    title: str = Field(min_length=1)
    course: str = ""
    reference: str = Field(min_length=1)
    solution: str | None = None
    notebook: str | None = Field(default=None, min_length=1)
    module: str | None = Field(default=None, min_length=1)
    # What a warm kernel or worker has imported before the student's code starts.
    frameworks: tuple[Framework, ...] = ()
    limits: Limits = Limits()
    # due time, grace, penalty per day or hour, cap, cut-off (grader/late.py)
    late: LatePolicy | None = None
    questions: list[QuestionSpec] = Field(min_length=1)

    @field_validator("notebook")
    @classmethod
    def _notebook_name(cls, value: str | None) -> str | None:
        if value is not None and (not value.endswith(".ipynb") or "/" in value):
            raise ValueError("must be a notebook file name such as hw3.ipynb")
        return value

    @field_validator("module")
    @classmethod
    def _module_name(cls, value: str | None) -> str | None:
        if value is not None and (
            not value.endswith(".py") or "/" in value or not value[:-3].isidentifier()
        ):
            raise ValueError("must be a Python file name such as layers.py")
        return value

    @model_validator(mode="after")
    def _something_to_run(self) -> RubricFile:
        if self.notebook is None and self.module is None:
            raise ValueError(
                "a rubric needs `notebook:` (e.g. hw3.ipynb), `module:` (e.g. layers.py) "
                "or both: what the students submit"
            )
        return self


@dataclass(frozen=True)
class Question:
    """A validated question with its typed check specs."""

    id: str
    title: str
    prompt: str
    checks: tuple[CheckSpec, ...]


@dataclass(frozen=True)
class Rubric:
    """A validated rubric, with where it came from and its content hash."""

    path: Path
    sha256: str
    assignment: str
    title: str
    course: str
    reference: str
    solution: Path | None
    notebook: str | None
    limits: Limits
    questions: tuple[Question, ...]
    module: str | None = None
    frameworks: tuple[Framework, ...] = ()
    late: LatePolicy | None = None

    def checks(self) -> list[CheckSpec]:
        """Every check, in rubric order."""
        return [c for q in self.questions for c in q.checks]

    def requests(self) -> list[AnswerRequest]:
        """Every name the harness must harvest, each once."""
        seen: dict[str, AnswerRequest] = {}
        for check in self.checks():
            for request in check.requests():
                seen.setdefault(request.name, request)
        return list(seen.values())

    def calls(
        self, expected: Mapping[str, Any], source: Literal["module", "notebook"] | None = None
    ) -> list[Call]:
        """Every call the checks need, in rubric order: those made in the student's module
        (``source="module"``), in the notebook's kernel (``"notebook"``) or all (None)."""
        calls: list[Call] = []
        owner: dict[str, str] = {}
        for check in self.checks():
            if source is not None and check.call_source() != source:
                continue
            for call in check.calls(expected):
                if call.id in owner:
                    raise RubricError(
                        self.path,
                        f"checks {owner[call.id]!r} and {check.id!r} both make a call "
                        f"with id {call.id!r}: call ids must be unique",
                    )
                owner[call.id] = check.id
                calls.append(call)
        return calls

    def max_score(self, expected: Mapping[str, Any]) -> float:
        """Total points available."""
        return round(sum(c.max_points(expected) for c in self.checks()), 2)


def resolve_rubric_path(name_or_path: str) -> Path:
    """A rubric path as given, or a name looked up in ``rubrics/`` (``hw3`` or ``hw3.yaml``)."""
    given = Path(name_or_path)
    if given.is_file():
        return given.resolve()
    for candidate in (RUBRICS_DIR / name_or_path, RUBRICS_DIR / f"{name_or_path}.yaml"):
        if candidate.is_file():
            return candidate.resolve()
    known = ", ".join(sorted(p.stem for p in RUBRICS_DIR.glob("*.yaml"))) or "none"
    raise RubricError(
        given, f"no such rubric file, and no rubric of that name in {RUBRICS_DIR} (known: {known})"
    )


def load_rubric(name_or_path: str | Path) -> Rubric:
    """Load and validate a rubric; raise RubricError naming the file, line and key."""
    path = resolve_rubric_path(str(name_or_path))
    data, lines = load_with_lines(path)
    if not isinstance(data, dict):
        raise RubricError(
            path, "a rubric must be a mapping with assignment, title, questions, …", 1
        )
    try:
        top = RubricFile.model_validate(data)
    except ValidationError as exc:
        raise _rubric_error(path, lines, exc, ()) from exc
    questions = []
    ids: dict[str, Path_] = {}
    for qi, question in enumerate(top.questions):
        specs = []
        for ci, raw in enumerate(question.checks):
            here: Path_ = ("questions", qi, "checks", ci)
            spec = _check_spec(path, lines, raw, here).for_rubric(module=top.module)
            if spec.id in ids:
                first = line_of(lines, ids[spec.id])
                raise RubricError(
                    path,
                    f"check id {spec.id!r} is used twice (also at line {first})",
                    line_of(lines, here),
                )
            ids[spec.id] = here
            specs.append(spec)
        questions.append(Question(question.id, question.title, question.prompt, tuple(specs)))
    for qi, built in enumerate(questions):
        for ci, spec in enumerate(built.checks):
            here = ("questions", qi, "checks", ci)
            if spec.call_source() == "module" and top.module is None:
                raise RubricError(
                    path,
                    f"check {spec.id!r} ({spec.type}) calls the student's module, but the "
                    "rubric names none: add `module: <file>.py` at the top level",
                    line_of(lines, here),
                )
            notebook_calls = spec.call_source() == "notebook"
            if (spec.requests() or spec.needs_notebook or notebook_calls) and top.notebook is None:
                raise RubricError(
                    path,
                    f"check {spec.id!r} ({spec.type}) "
                    + ("calls functions of" if notebook_calls else "reads answers from")
                    + " the notebook, but "
                    "the rubric names none: add `notebook: <file>.ipynb` at the top level",
                    line_of(lines, here),
                )
    qids = [q.id for q in questions]
    if len(set(qids)) != len(qids):
        dup = next(q for q in qids if qids.count(q) > 1)
        raise RubricError(
            path, f"question id {dup!r} is used twice", line_of(lines, ("questions",))
        )
    solution = (path.parent / top.solution).resolve() if top.solution else None
    return Rubric(
        path=path,
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        assignment=top.assignment,
        title=top.title,
        course=top.course,
        reference=top.reference,
        solution=solution,
        notebook=top.notebook,
        limits=top.limits,
        questions=tuple(questions),
        module=top.module,
        frameworks=top.frameworks,
        late=top.late,
    )


def _check_spec(path: Path, lines: dict[Path_, int], raw: Any, here: Path_) -> CheckSpec:
    line = line_of(lines, here)
    if not isinstance(raw, dict):
        raise RubricError(path, "a check must be a mapping with id, type, …", line)
    kind = raw.get("type")
    if kind not in REGISTRY:
        known = ", ".join(sorted(REGISTRY))
        raise RubricError(
            path,
            f"check {raw.get('id', '?')!r}: unknown type {kind!r} (known types: {known})",
            line_of(lines, (*here, "type")),
        )
    try:
        spec: CheckSpec = REGISTRY[kind].spec.model_validate(raw)
    except ValidationError as exc:
        raise _rubric_error(path, lines, exc, here, check=str(raw.get("id", "?"))) from exc
    return spec


def _rubric_error(
    path: Path,
    lines: dict[Path_, int],
    exc: ValidationError,
    prefix: Path_,
    check: str | None = None,
) -> RubricError:
    errors = exc.errors()
    # A misspelt key shows up both as unknown and as missing: the unknown one is the cause.
    first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc: Path_ = (*prefix, *first["loc"])
    key = ".".join(str(part) for part in first["loc"]) or "(top level)"
    if first["type"] == "extra_forbidden":
        what = f"unknown key {key!r}"
        missing = [str(e["loc"][-1]) for e in errors if e["type"] == "missing"]
        close = difflib.get_close_matches(str(first["loc"][-1]), missing, n=1)
        if close:
            what += f" (did you mean {close[0]!r}?)"
    elif first["type"] == "missing":
        what = f"missing key {key!r}"
    else:
        what = f"{key}: {first['msg']}"
    where = f"check {check!r}: " if check else ""
    more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
    return RubricError(path, f"{where}{what}{more}", line_of(lines, loc))
