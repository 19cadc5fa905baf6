"""``grade assign RUBRIC --out DIR``: the student version of an assignment.

From the rubric's ``solution:`` folder it writes into ``DIR``:

* the notebook with every solution removed: the lines between ``### BEGIN SOLUTION`` and
  ``### END SOLUTION`` (markers included) become ``# YOUR CODE HERE`` +
  ``raise NotImplementedError()`` at the markers' indentation; a code cell tagged
  ``solution`` becomes that stub; a Markdown cell tagged ``solution`` keeps its headings
  and its text becomes ``YOUR ANSWER HERE``; every other cell is tagged ``given``;
  outputs, execution counts and all metadata but the tags (cells) and the kernel and
  language (notebook) are dropped;
* the module (``module:``) with the same markers replaced;
* the provided ``files:`` of the rubric, copied to their targets;
* ``check.py``, the public self-check (:mod:`grader.authoring.selfcheck_runner` after
  the comparison code of :mod:`grader.checks.compare`), with ``selfcheck/checks.json``
  and ``selfcheck/arrays.npz``: form checks of the harvested answers (never their
  expected values), heading checks of written answers and figures, and each function
  check's ``public_cases`` with the reference's outputs.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from grader.errors import GraderError, RubricError
from grader.rubric import Rubric, load_rubric
from grader.sandbox import provided_target

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
CODE_STUB = ("# YOUR CODE HERE", "raise NotImplementedError()")
TEXT_STUB = "YOUR ANSWER HERE"
SOLUTION_TAG = "solution"
GIVEN_TAG = "given"
SCRIPT = "check.py"
DATA_DIR = "selfcheck"
#: Notebook metadata kept in the student version (the rest may be the instructor's).
_KEPT_NOTEBOOK_METADATA = ("kernelspec", "language_info")


@dataclass
class StudentVersion:
    """What ``grade assign`` wrote: the files, and the public checks by kind."""

    out: Path
    files: list[Path] = field(default_factory=list)
    form_checks: int = 0
    heading_checks: int = 0
    function_cases: int = 0


# ------------------------------------------------------------------ stripping


def strip_source(text: str, where: str, stub: tuple[str, ...] = CODE_STUB) -> tuple[str, bool]:
    """``text`` with every marked region replaced by ``stub`` at the markers' indentation;
    (new text, whether anything was replaced). Unbalanced markers are an error naming
    ``where`` and the line."""
    out: list[str] = []
    inside: int | None = None
    replaced = False
    for number, line in enumerate(text.splitlines(), start=1):
        marker = line.strip()
        if marker == BEGIN:
            if inside is not None:
                raise GraderError(
                    f"{where}, line {number}: {BEGIN} inside the region opened at line "
                    f"{inside}: close it with {END} first"
                )
            inside = number
            indent = line[: len(line) - len(line.lstrip())]
            out += [indent + s for s in stub]
            replaced = True
        elif marker == END:
            if inside is None:
                raise GraderError(f"{where}, line {number}: {END} without a {BEGIN} before it")
            inside = None
        elif inside is None:
            out.append(line)
    if inside is not None:
        raise GraderError(f"{where}, line {inside}: {BEGIN} is never closed by {END}")
    return "\n".join(out) + ("\n" if text.endswith("\n") and out else ""), replaced


def _markdown_stub(text: str) -> str:
    headings = [line for line in text.splitlines() if line.lstrip().startswith("#")]
    return "\n\n".join(["\n".join(headings), TEXT_STUB]) if headings else TEXT_STUB


def student_notebook(solution: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The student version of a solution notebook (nbformat 4, as JSON data)."""
    cells = []
    for index, cell in enumerate(solution.get("cells", []), start=1):
        source = cell.get("source", "")
        text = "".join(source) if isinstance(source, list) else str(source)
        tags = [str(t) for t in (cell.get("metadata", {}).get("tags") or [])]
        kind = cell.get("cell_type")
        here = f"{where}, cell {index}"
        if SOLUTION_TAG in tags:
            text = "\n".join(CODE_STUB) if kind == "code" else _markdown_stub(text)
            answer = True
        else:
            stub = CODE_STUB if kind == "code" else (TEXT_STUB,)
            text, answer = strip_source(text, here, stub)
        tags = [t for t in tags if t not in (SOLUTION_TAG, GIVEN_TAG)]
        if not answer:
            tags.append(GIVEN_TAG)
        new: dict[str, Any] = {
            "cell_type": kind,
            "metadata": {"tags": tags} if tags else {},
            "source": text,
        }
        if "id" in cell:
            new["id"] = cell["id"]
        if kind == "code":
            new["execution_count"] = None
            new["outputs"] = []
        cells.append(new)
    metadata = solution.get("metadata", {})
    return {
        "cells": cells,
        "metadata": {k: metadata[k] for k in _KEPT_NOTEBOOK_METADATA if k in metadata},
        "nbformat": solution.get("nbformat", 4),
        "nbformat_minor": solution.get("nbformat_minor", 5),
    }


# ------------------------------------------------------------------ provided files


def provided_files(rubric_path: Path) -> list[tuple[Path, str]]:
    """The rubric's ``files:`` as (source path, target relative to the notebook): a
    string is both; a mapping has ``source`` and ``target``; an absolute target under
    ``/content/`` or ``/kaggle/input/`` loses its leading ``/``. Read from the YAML itself,
    so that it works whether or not this grader's rubric model knows the key."""
    data = yaml.safe_load(rubric_path.read_text(encoding="utf-8")) or {}
    entries = data.get("files") or []
    found = []
    for entry in entries:
        if isinstance(entry, str):
            source, target = entry, entry
        elif isinstance(entry, dict) and "source" in entry:
            source, target = str(entry["source"]), str(entry.get("target", entry["source"]))
        else:
            raise RubricError(
                rubric_path, f"files: {entry!r} is neither a path nor {{source, target}}"
            )
        try:
            checked = provided_target(target)
        except ValueError as exc:
            raise RubricError(rubric_path, f"files: {exc}") from exc
        # A Colab or Kaggle path (/kaggle/input/comp/x.csv) is shipped at the same path
        # inside the student folder (kaggle/input/comp/x.csv), never written to the host's.
        target = checked.relative_to("/").as_posix() if checked.is_absolute() else target
        path = (rubric_path.parent / source).resolve()
        if not path.exists():
            raise RubricError(rubric_path, f"files: {source!r} not found (looked for {path})")
        found.append((path, target.rstrip("/")))
    return found


# ------------------------------------------------------------------ public checks


class _Arrays:
    """Arrays of the checks' JSON, kept apart for ``arrays.npz`` (no pickles)."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray[Any, Any]] = {}

    def encode(self, value: Any) -> Any:
        if isinstance(value, np.ndarray):
            if value.dtype.kind not in "biufc":
                raise GraderError(f"a public case holds an array of {value.dtype}")
            key = f"a{len(self.arrays)}"
            self.arrays[key] = value
            return {"__array__": key}
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, float) and not math.isfinite(value):
            return {"__float__": str(value)}
        if isinstance(value, tuple):
            return {"__tuple__": [self.encode(v) for v in value]}
        if isinstance(value, list):
            return [self.encode(v) for v in value]
        if isinstance(value, dict):
            if "__torch_model__" in value:
                raise GraderError("public cases cannot hold a torch model (a __torch_model__ case)")
            return {str(k): self.encode(v) for k, v in value.items()}
        return value


def _form(spec: Any, name: str, kind: str, expected: Mapping[str, Any]) -> dict[str, Any]:
    """What the self-check may say of an answer's form, from the check's spec and the
    shape (never the values) of the reference's answer."""
    if kind == "model":
        return {"form": "model", "what": f"{name} exists and is a model"}
    if getattr(spec, "answer", None) == name and spec.type == "value":
        value = expected.get(spec.reference_key)
        if isinstance(value, tuple):  # a shape: students may write it in several ways
            return {"form": "plain", "what": f"{name} exists and is readable"}
        arr = np.asarray(value) if isinstance(value, np.ndarray | list | int | float) else None
        if arr is not None and arr.dtype.kind in "biuf":
            if arr.ndim == 0:
                return {"form": "number", "what": f"{name} exists and is a single number"}
            shape = list(arr.shape)
            return {"form": "array", "shape": shape, "what": f"{name} has shape {tuple(shape)}"}
    return {"form": "plain", "what": f"{name} exists and is readable"}


def public_checks(
    rubric: Rubric, expected: Mapping[str, Any]
) -> tuple[list[dict[str, Any]], _Arrays]:
    """The self-check's checks and their arrays."""
    from grader.checks.function import FunctionSpec
    from grader.checks.text import heading_pattern

    arrays = _Arrays()
    checks: list[dict[str, Any]] = []
    seen: set[str] = set()
    for spec in rubric.checks():
        heading = getattr(spec, "heading", None)
        if isinstance(heading, str) and rubric.notebook is not None:
            checks.append(
                {
                    "kind": "heading",
                    "id": spec.id,
                    "heading": heading,
                    "pattern": heading_pattern(heading).pattern,
                    "what": f"the notebook has a Markdown heading '{heading}'",
                }
            )
        for request in spec.requests():
            if request.name in seen:
                continue
            seen.add(request.name)
            checks.append(
                {
                    "kind": "form",
                    "id": spec.id,
                    "name": request.name,
                    "target": "notebook",
                    **_form(spec, request.name, request.kind, expected),
                }
            )
        if isinstance(spec, FunctionSpec) and spec.public_cases is not None:
            data = expected.get(spec.reference_key) or {}
            cases = data.get("public") or []
            source = getattr(spec, "source", None) or ("module" if rubric.module else "notebook")
            checks.append(
                {
                    "kind": "function",
                    "id": spec.id,
                    "target": source,
                    "function": spec.student_function,
                    "what": f"{spec.student_function} on its public cases",
                    "forward": spec.forward,
                    "cache_index": spec.cache_index,
                    "outputs": spec.outputs,
                    "output_names": list(spec.output_names),
                    "check_inplace": spec.check_inplace,
                    "tolerance": {
                        "rel_error": spec.rel_error,
                        "rtol": spec.rtol,
                        "atol": spec.atol,
                        "squeeze_size1": spec.squeeze_size1,
                    },
                    "cases": [
                        arrays.encode(
                            {
                                "name": c["name"],
                                "args": list(c["args"]),
                                "kwargs": dict(c.get("kwargs") or {}),
                                "dout": c.get("dout"),
                                "tuple": bool(c["tuple"]),
                                "returned": c["returned"],
                                "args_after": c.get("args_after") or {},
                            }
                        )
                        for c in cases
                    ],
                }
            )
    return checks, arrays


def selfcheck_source(title: str) -> str:
    """The self-check script: the comparison module's source, then the runner's."""
    package = resources.files("grader")
    compare = (package / "checks" / "compare.py").read_text(encoding="utf-8")
    runner = (package / "authoring" / "selfcheck_runner.py").read_text(encoding="utf-8")
    future = "from __future__ import annotations\n"
    body = [
        line
        for line in (compare + "\n\n" + runner).splitlines(keepends=True)
        if line != future and "# selfcheck: vendored" not in line
    ]
    header = (
        "#!/usr/bin/env python3\n"
        f'"""Public self-check of {title}: run `python check.py` in your assignment folder.\n\n'
        "Written by `grade assign`; it runs the public checks only, with the same comparison\n"
        'code as grading. Hidden checks are not included: passing them is not full marks."""\n\n'
    )
    return header + future + "".join(body)


# ------------------------------------------------------------------ the command


def make_student_version(rubric_arg: str | Path, out: Path) -> StudentVersion:
    """Write the student version of the rubric's solution into ``out``."""
    from grader.reference import load_expected

    rubric = load_rubric(rubric_arg)
    if rubric.solution is None or not rubric.solution.is_dir():
        raise RubricError(
            rubric.path,
            "grade assign needs `solution:`, the folder of the instructor's solution "
            f"(found {rubric.solution})",
        )
    expected = load_expected(rubric).values
    out.mkdir(parents=True, exist_ok=True)
    made = StudentVersion(out)
    if rubric.notebook is not None:
        source = rubric.solution / rubric.notebook
        if not source.is_file():
            raise RubricError(rubric.path, f"the solution has no notebook {source}")
        data = json.loads(source.read_text(encoding="utf-8"))
        student = student_notebook(data, str(source))
        target = out / rubric.notebook
        target.write_text(
            json.dumps(student, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        made.files.append(target)
    if rubric.module is not None:
        source = rubric.solution / rubric.module
        if not source.is_file():
            raise RubricError(rubric.path, f"the solution has no module {source}")
        text, _ = strip_source(source.read_text(encoding="utf-8"), str(source))
        target = out / rubric.module
        target.write_text(text, encoding="utf-8")
        made.files.append(target)
    for path, target_name in provided_files(rubric.path):
        target = out / target_name
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.is_dir():
            shutil.copytree(path, target, dirs_exist_ok=True)
        else:
            shutil.copy2(path, target)
        made.files.append(target)
    checks, arrays = public_checks(rubric, expected)
    data_dir = out / DATA_DIR
    data_dir.mkdir(exist_ok=True)
    spec = {
        "title": rubric.title,
        "notebook": rubric.notebook,
        "module": rubric.module,
        "notebook_timeout": rubric.limits.notebook_timeout,
        "call_timeout": max(rubric.limits.call_timeout, rubric.limits.import_timeout),
        "checks": checks,
    }
    (data_dir / "checks.json").write_text(json.dumps(spec, indent=1) + "\n", encoding="utf-8")
    np.savez(data_dir / "arrays.npz", **arrays.arrays)  # type: ignore[arg-type]
    script = out / SCRIPT
    script.write_text(selfcheck_source(rubric.title), encoding="utf-8")
    made.files += [script, data_dir / "checks.json", data_dir / "arrays.npz"]
    made.form_checks = sum(1 for c in checks if c["kind"] == "form")
    made.heading_checks = sum(1 for c in checks if c["kind"] == "heading")
    made.function_cases = sum(len(c["cases"]) for c in checks if c["kind"] == "function")
    _no_solution_left(made)
    return made


def _no_solution_left(made: StudentVersion) -> None:
    """A last guard: no marker survived in what students get."""
    for path in made.files:
        if path.suffix in (".py", ".ipynb") and path.name != SCRIPT:
            text = path.read_text(encoding="utf-8")
            if re.search(r"###\s*(BEGIN|END) SOLUTION", text):
                raise GraderError(f"{path}: a solution marker is left in the student version")
