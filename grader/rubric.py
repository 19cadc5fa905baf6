"""Rubric YAML → typed, validated ``Rubric``; errors name the file, the line and the key."""

from __future__ import annotations

import difflib
import functools
import hashlib
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from grader.checks import REGISTRY
from grader.checks.base import CheckSpec, StrictModel
from grader.errors import RubricError
from grader.integrity.settings import SimilaritySettings
from grader.late import LatePolicy
from grader.models import AnswerRequest, Call
from grader.sandbox import (
    Framework,
    LimitSettings,
    Mode,
    ProvidedFile,
    provided_size,
    provided_target,
)
from grader.yamlpos import Path_, line_of, load_with_lines

RUBRICS_DIR = Path(__file__).resolve().parent.parent / "rubrics"
MIB = 2**20


#: A rubric's ``devices:`` (:class:`RubricFile`).
Devices = Literal["cpu", "gpu", "strict"]

#: A data set's name in the grader's data cache (:mod:`grader.datasets`).
DATASET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")

#: A rubric's ``limits:``: the sandbox declares which of its limits an assignment may set,
#: with their defaults and bounds (:class:`grader.sandbox.ExecutionLimits` adds the rest).
Limits = LimitSettings


class QuestionSpec(StrictModel):
    """A question: its id (a gradebook column), title and checks."""

    id: str = Field(min_length=1, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    """The question's id: a gradebook column and the name reports use (q1)."""
    title: str = ""
    """The question's title in reports."""
    prompt: str = ""
    """The question's text, shown in reports above its checks (optional)."""
    checks: list[Any] = Field(min_length=1)


class ProvidedSpec(StrictModel):
    """One entry of ``files:`` in its long form: ``{source, target, replaceable}``."""

    #: The instructor's file or folder, relative to the rubric's folder.
    source: str = Field(min_length=1)
    #: Where the students have it, relative to the notebook's or module's folder
    #: (default: the same relative path as ``source``), or an absolute path under
    #: ``/content/`` or ``/kaggle/input/`` (Colab's and Kaggle's data folders), where it
    #: is bound read-only at exactly that path (needs the sandbox: bubblewrap).
    target: str | None = Field(default=None, min_length=1)
    #: True: a student's own file of that name is used instead of the provided one.
    #: False (default): the provided file is used and the student's is not (a warning says so).
    replaceable: bool = False


class RubricFile(StrictModel):
    """The top level of a rubric file."""

    assignment: str = Field(min_length=1)
    """A short name of the assignment (hw3), written into every result and the gradebook."""
    title: str = Field(min_length=1)
    """The assignment's title, shown at the top of every report."""
    course: str = ""
    """The course's name, shown in the reports (optional)."""
    reference: str = Field(min_length=1)
    """The reference module whose compute() gives the expected values: a name in the grader's
    reference/ folder (hw3), or a path ending in .py, relative to the rubric's folder
    (hw5_reference.py), for a course kept outside the grader."""
    solution: str | None = None
    """A folder holding the instructor's own solution, relative to the rubric's folder: `grade
    validate` grades it and fails unless it runs without a failed cell and earns full marks."""
    notebook: str | None = Field(default=None, min_length=1)
    """The notebook file name the students hand in (hw3.ipynb); it runs cell by cell in its own
    sandboxed kernel. At least one of notebook and module is required."""
    module: str | None = Field(default=None, min_length=1)
    """A Python file the students hand in (layers.py), imported in a sandboxed worker whose
    functions `function` and `statistical` checks call on grader-made inputs."""
    # What a warm kernel or worker has imported before the student's code starts.
    frameworks: tuple[Framework, ...] = ()
    """What the students' code imports, imported once by each warm template before any student
    code runs; changes speed only, never a result."""
    limits: Limits = Limits()
    """Limits of one submission's run (timeouts, memory, processes); see the limits page."""
    # due time, grace, penalty per day or hour, cap, cut-off (grader/late.py)
    late: LatePolicy | None = None
    """The late policy (due time, grace, penalty per day or hour, cap, cut-off); none: no
    penalty."""
    packages: tuple[str, ...] = ()
    """Import names of packages the grading environment must have beyond the grader's own
    (sklearn, pandas): `grade validate` fails unless each imports. Inside the sandbox a
    student's `!pip install X` of an installed package is skipped quietly; of a missing one
    it prints that the grading environment lacks X (packages are never installed while
    grading: there is no network)."""
    files: tuple[ProvidedSpec, ...] = ()
    """Instructor-provided files and folders, bound read-only into every sandbox at their
    target path relative to the notebook or module, or at an absolute target under /content/
    or /kaggle/input/ (as on Colab and Kaggle): a path (same source and target) or
    {source, target, replaceable}."""
    similarity: SimilaritySettings = SimilaritySettings()
    """Similarity across the batch and the policy for edited given cells (threshold, floor,
    starter files, given_cells: warn | run_original | ignore)."""
    devices: Devices = "cpu"
    """Where the notebook's code may run: `cpu` (default: no GPU is ever exposed, code
    that asks for CUDA runs on the CPU and the result says so), `gpu` (GPUs are exposed
    when graded with `grade --gpus all|N` on a machine that has them; see the GPU page)
    or `strict` (no GPU, and code that asks for one is not moved to the CPU: it fails as
    it would on a machine without CUDA, for assignments where the CPU would be unfair)."""
    datasets: tuple[str, ...] = ()
    """Data sets the notebook may load (mnist, ...), by their names in the grader's data
    cache (`grade data add NAME --from PATH`). Only these are bound, read-only, into the
    sandbox; `grade validate` fails when one is not in the cache."""
    questions: list[QuestionSpec] = Field(min_length=1)

    @field_validator("datasets")
    @classmethod
    def _dataset_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if not DATASET_NAME.fullmatch(name):
                raise ValueError(
                    f"{name!r} is not a data set name: use letters, digits, '-', '_' and '.' "
                    "(as `grade data list` shows them)"
                )
        return value

    @field_validator("files", mode="before")
    @classmethod
    def _short_files(cls, value: Any) -> Any:
        # A plain path is the short form of {source: path} (same target).
        if isinstance(value, list | tuple):
            return [{"source": v} if isinstance(v, str) else v for v in value]
        return value

    @field_validator("packages")
    @classmethod
    def _package_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if not all(part.isidentifier() for part in name.split(".")):
                raise ValueError(
                    f"{name!r} is not an import name: list what `import` takes (sklearn, "
                    "not scikit-learn)"
                )
        return value

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
    provided: tuple[ProvidedFile, ...] = ()  # `files:`, sources resolved
    packages: tuple[str, ...] = ()  # `packages:`, import names
    similarity: SimilaritySettings = field(default_factory=SimilaritySettings)
    devices: Devices = "cpu"  # `devices:`
    datasets: tuple[str, ...] = ()  # `datasets:`, names in the data cache

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
    provided = _provided_files(path, lines, top, solution)
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
        packages=top.packages,
        late=top.late,
        provided=provided,
        similarity=top.similarity,
        devices=top.devices,
        datasets=top.datasets,
    )


def _provided_files(
    path: Path, lines: dict[Path_, int], top: RubricFile, solution: Path | None
) -> tuple[ProvidedFile, ...]:
    """The rubric's ``files:``, checked before any student runs: each source exists (no
    symbolic link inside), each target stays inside the notebook's folder (or under /content/
    or /kaggle/input/), together they
    fit ``limits.provided_mb``, and none shows the rubric, the solution or golden files."""
    out: list[ProvidedFile] = []
    for i, spec in enumerate(top.files):
        line = line_of(lines, ("files", i))
        source = (path.parent / spec.source).resolve()
        if not source.exists():
            raise RubricError(
                path,
                f"files: provided file {spec.source!r} not found (looked for {source}): "
                "put it there or fix the path (relative to the rubric's folder)",
                line,
            )
        for problem in _provided_problems(source, path, solution):
            raise RubricError(path, f"files: {spec.source!r} {problem}", line)
        target = spec.target if spec.target is not None else spec.source
        try:
            target = provided_target(target).as_posix()
        except ValueError as exc:
            raise RubricError(path, f"files: {exc}", line) from exc
        inside = [
            o.target
            for o in out
            if o.target.startswith("/")
            and target.startswith("/")
            and (o.target.startswith(target + "/") or target.startswith(o.target + "/"))
        ]
        if inside:
            # bwrap cannot make a mount point inside an earlier read-only bind.
            raise RubricError(
                path,
                f"files: {target!r} and {inside[0]!r} lie one inside the other: give a "
                "folder's files their own targets, or provide the folder alone",
                line,
            )
        if spec.replaceable and target.startswith("/"):
            raise RubricError(
                path,
                f"files: {target!r} is an absolute target, where a student has no file of "
                "their own to keep: drop replaceable: true",
                line,
            )
        out.append(ProvidedFile(source, target, spec.replaceable))
    if out:
        total = provided_size([p.source for p in out])
        if total > top.limits.provided_mb * MIB:
            raise RubricError(
                path,
                f"files: the provided files take {total / MIB:.1f} MiB, more than "
                f"limits.provided_mb ({top.limits.provided_mb} MiB): raise it or provide less",
                line_of(lines, ("files",)),
            )
    return tuple(out)


def refuse_unbindable_files(rubric: Rubric, sandbox: Mode) -> None:
    """Raise :class:`RubricError` naming the ``files:`` line of the first absolute target
    (``/content/...``, ``/kaggle/input/...``) that ``sandbox`` cannot bind: ``off``, or
    ``permissive`` without bubblewrap (the grader never writes into the machine's own
    ``/content`` or ``/kaggle``). Called before any student runs."""
    absolute = [i for i, p in enumerate(rubric.provided) if p.target.startswith("/")]
    if not absolute:
        return
    if sandbox != "off":
        from grader.sandbox import detect_protections

        if detect_protections().bubblewrap:
            return
    _, lines = load_with_lines(rubric.path)
    first = rubric.provided[absolute[0]]
    why = "with the sandbox off" if sandbox == "off" else "without bubblewrap"
    raise RubricError(
        rubric.path,
        f"files: {first.target!r} can be bound only inside the sandbox, and it cannot be "
        f"{why} (the grader never writes into this machine's /content or /kaggle): grade "
        "with --sandbox=strict where bubblewrap runs, or give the entry a target relative "
        "to the notebook",
        line_of(lines, ("files", absolute[0])),
    )


def provided_sha256(provided: Sequence[ProvidedFile]) -> str | None:
    """SHA-256 of the provided files' contents, targets and ``replaceable`` flags (None
    without ``files:``): part of every result's provenance and of the execution cache
    key, so changing the data re-runs the students. Computed once per content (a file's
    size, time and inode unchanged: the digest already made is reused)."""
    if not provided:
        return None
    key = tuple(
        (str(p.source), p.target, p.replaceable, tuple(_stat_signature(p.source))) for p in provided
    )
    return _provided_digest(key)


def _files_under(source: Path) -> list[tuple[str, Path]]:
    if not source.is_dir():
        return [("", source)]
    found = []
    for root, _dirs, files in os.walk(source):
        for name in files:
            item = Path(root, name)
            found.append((item.relative_to(source).as_posix(), item))
    return sorted(found)


def _stat_signature(source: Path) -> list[tuple[str, int, int, int]]:
    out = []
    for rel, item in _files_under(source):
        st = os.stat(item)
        out.append((rel, st.st_size, st.st_mtime_ns, st.st_ino))
    return out


@functools.lru_cache(maxsize=16)
def _provided_digest(
    key: tuple[tuple[str, str, bool, tuple[tuple[str, int, int, int], ...]], ...],
) -> str:
    digest = hashlib.sha256()
    for source, target, replaceable, _ in key:
        digest.update(f"{target}\0{int(replaceable)}\0".encode())
        for rel, item in _files_under(Path(source)):
            content = hashlib.sha256()
            with item.open("rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    content.update(chunk)
            digest.update(f"{rel}\0".encode() + content.digest())
    return digest.hexdigest()


def _provided_problems(source: Path, rubric: Path, solution: Path | None) -> list[str]:
    """Why ``source`` must not be provided: it holds a symbolic link, or is or contains
    the rubric file, the solution or a ``solution``/``golden`` folder."""

    def inside(p: Path) -> bool:
        return p == source or source in p.parents

    if inside(rubric):
        return ["is or contains the rubric file itself: provide data, not the course folder"]
    if solution is not None and inside(solution):
        return [f"is or contains the solution ({solution}): students would see it"]
    if source.is_symlink():
        return ["is a symbolic link: provide the file itself"]
    if source.is_dir():
        for root, dirs, files in os.walk(source):
            for name in (*dirs, *files):
                item = Path(root, name)
                if item.is_symlink():
                    return [f"holds a symbolic link ({item}): provide real files"]
                if name in ("solution", "golden") and item.is_dir():
                    return [f"contains a {name}/ folder ({item}): students would see it"]
    return []


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


def missing_packages(rubric: Rubric, timeout: float = 120.0) -> list[str]:
    """A problem for each of the rubric's ``packages:`` that does not import in the
    grading environment (tried in a fresh interpreter, so nothing it does at import
    stays in the grader's process)."""
    import subprocess
    import sys

    problems = []
    for name in rubric.packages:
        try:
            done = subprocess.run(
                [sys.executable, "-c", f"import {name}"],
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            problems.append(f"packages: importing {name} took longer than {timeout:g} s")
            continue
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
            problems.append(
                f"packages: {name} does not import in the grading environment ({last}): "
                f"install it in the grader's environment (pip install into {sys.prefix})"
            )
    return problems
