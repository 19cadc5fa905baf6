"""What of a submission is compared: its code cells, modules and written answers, read
as plain files in the grader (nothing is run), and the assignment's given code."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from grader.errors import RubricError
from grader.models import Submission
from grader.sandbox import NotebookFormatError, read_notebook

UnitKind = Literal["code", "text"]

SOLUTION_BEGIN = "### BEGIN SOLUTION"
SOLUTION_END = "### END SOLUTION"
GIVEN_TAG = "given"


@dataclass(frozen=True)
class Unit:
    """One compared piece of a submission: a code cell, a module, a written answer."""

    kind: UnitKind
    name: str  # as the evidence names it: "cell 4", "layers.py", "answer q2_why"
    text: str


def cell_source(cell: Any) -> str:
    """A notebook cell's source as one string."""
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def cell_tags(cell: Any) -> tuple[str, ...]:
    """The nbformat ``metadata.tags`` of a cell."""
    meta = cell.get("metadata")
    tags = meta.get("tags", ()) if isinstance(meta, dict) else ()
    return tuple(str(t) for t in tags) if isinstance(tags, list) else ()


def notebook_path(sub: Submission, wanted: str | None) -> Path | None:
    """The submission's notebook as the sandbox finds it: a single ``.ipynb`` file, the
    file named ``wanted``, else the only notebook in the folder; None otherwise."""
    if sub.is_single_file:
        return sub.path if sub.path.suffix.lower() == ".ipynb" else None
    if wanted is not None and (sub.path / wanted).is_file():
        return sub.path / wanted
    found = [
        p for p in sub.files if p.suffix.lower() == ".ipynb" and ".ipynb_checkpoints" not in p.parts
    ]
    return found[0] if len(found) == 1 else None


def module_paths(sub: Submission) -> list[Path]:
    """The Python files of a submission (not symlinks, not checkpoints)."""
    return [
        p
        for p in sub.files
        if p.suffix == ".py" and not p.is_symlink() and ".ipynb_checkpoints" not in p.parts
    ]


def submission_units(
    sub: Submission, notebook: str | None, headings: tuple[str, ...]
) -> list[Unit]:
    """Every code cell, module and written answer of ``sub``.

    Written answers are those under the rubric's ``text`` check headings
    (:func:`grader.checks.text.find_answer`, as the check reads them), named by heading;
    a rubric without text checks compares each Markdown cell instead.
    """
    from grader.checks.text import find_answer

    units: list[Unit] = []
    path = notebook_path(sub, notebook)
    if path is not None:
        try:
            nb = read_notebook(path)
        except NotebookFormatError:
            nb = {"cells": []}
        markdown: list[str] = []
        for position, cell in enumerate(nb.get("cells", []), start=1):
            if not isinstance(cell, dict):
                continue
            source = cell_source(cell)
            if cell.get("cell_type") == "code":
                units.append(Unit("code", f"cell {position}", source))
            elif cell.get("cell_type") == "markdown":
                markdown.append(source)
                if not headings:
                    units.append(Unit("text", f"cell {position}", source))
        for heading in headings:
            answer = find_answer(tuple(markdown), heading)
            if answer:
                units.append(Unit("text", f"answer {heading}", answer))
    base = sub.path.parent if sub.is_single_file else sub.path
    for module in module_paths(sub):
        try:
            text = module.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        units.append(Unit("code", module.relative_to(base).as_posix(), text))
    return units


def without_solutions(source: str) -> str:
    """A cell's lines outside ``### BEGIN SOLUTION`` … ``### END SOLUTION`` regions."""
    kept: list[str] = []
    inside = False
    for line in source.splitlines():
        marker = line.strip()
        if marker.startswith(SOLUTION_BEGIN):
            inside = True
        elif marker.startswith(SOLUTION_END):
            inside = False
        elif not inside:
            kept.append(line)
    return "\n".join(kept)


def starter_units(rubric_path: Path, starter: list[str]) -> list[Unit]:
    """The assignment's given code and text from the rubric's ``similarity.starter``
    files: a student version notebook's ``given`` cells and the lines outside solution
    regions of its other code cells, and whole ``.py`` (or other text) files."""
    units: list[Unit] = []
    for name in starter:
        path = (rubric_path.parent / name).resolve()
        if not path.is_file():
            raise RubricError(
                rubric_path,
                f"similarity.starter names {name}, which does not exist (looked at {path}): "
                "give a path relative to the rubric's folder",
            )
        if path.suffix.lower() != ".ipynb":
            units.append(Unit("code", name, path.read_text(encoding="utf-8", errors="replace")))
            continue
        try:
            nb = read_notebook(path)
        except NotebookFormatError as exc:
            raise RubricError(rubric_path, f"similarity.starter {name}: {exc}") from None
        for position, cell in enumerate(nb.get("cells", []), start=1):
            source = cell_source(cell)
            kind: UnitKind = "code" if cell.get("cell_type") == "code" else "text"
            given = GIVEN_TAG in cell_tags(cell)
            text = source if given else without_solutions(source)
            if text.strip():
                units.append(Unit(kind, f"{name} cell {position}", text))
    return units


def text_headings(checks: list[Any]) -> tuple[str, ...]:
    """The headings of a rubric's ``text`` checks, in order."""
    return tuple(str(c.heading) for c in checks if getattr(c, "type", "") == "text")


_TRAILING = re.compile(r"[ \t]+$", re.MULTILINE)


def normalised(source: str) -> str:
    """A cell's source as compared for given cells: line endings, trailing spaces and
    blank lines at either end do not count (an editor's save changes them)."""
    return _TRAILING.sub("", source.replace("\r\n", "\n").replace("\r", "\n")).strip("\n")
