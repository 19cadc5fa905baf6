"""Given cells: the code cells the student version tags ``given`` (its imports, data
loading, public checks), hashed and looked for in each submission.

A submission whose given cells changed gets a warning in its result's ``integrity``
section and in its report, naming the cells. With ``similarity.given_cells:
run_original`` the original cells run instead (nbgrader's behaviour): the notebook is
restored in a copy of the submission made before execution (the student's files are
never edited), and the result says so.

Matching a student's cells to the given ones: first the alignment of unchanged cells (by
content, in order, so inserted cells do not shift anything); then each given cell left
over is looked for unchanged anywhere (moved, not changed), then among the student's
unaligned code cells between its aligned neighbours, preferring one still tagged
``given`` and then the most similar text.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from grader.errors import RubricError
from grader.integrity.sources import (
    GIVEN_TAG,
    cell_source,
    cell_tags,
    normalised,
    notebook_path,
)
from grader.models import Submission
from grader.sandbox import NotebookFormatError, read_notebook

Change = Literal["edited", "deleted"]
#: An edited cell is at least this similar to its given cell; a less similar one
#: between the same neighbours is the student's own cell, and the given cell deleted.
MATCH_RATIO = 0.4
RUN_DIR = ".integrity/run"


@dataclass(frozen=True)
class GivenCell:
    """A given code cell of the student version: its 1-based position and source."""

    position: int
    source: str

    @property
    def sha256(self) -> str:
        """The hash of its normalised source."""
        return source_sha256(self.source)


def source_sha256(source: str) -> str:
    """The SHA-256 of a cell's normalised source (what counts as a change)."""
    return hashlib.sha256(normalised(source).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CellChange:
    """A given cell the submission changed: where it is in the student version and in the
    submission (None when deleted)."""

    given: int
    cell: int | None
    change: Change


def given_cells(path: Path) -> list[GivenCell]:
    """The code cells tagged ``given`` in a student version notebook."""
    nb = read_notebook(path)
    return [
        GivenCell(position, cell_source(cell))
        for position, cell in enumerate(nb.get("cells", []), start=1)
        if isinstance(cell, dict)
        and cell.get("cell_type") == "code"
        and GIVEN_TAG in cell_tags(cell)
    ]


def compare_cells(given: Sequence[GivenCell], cells: Sequence[Any]) -> list[CellChange]:
    """The given cells that the notebook ``cells`` (nbformat cell dicts) changed."""
    code = [
        (position, cell)
        for position, cell in enumerate(cells, start=1)
        if isinstance(cell, dict) and cell.get("cell_type") == "code"
    ]
    theirs = [normalised(cell_source(c)) for _, c in code]
    ours = [normalised(g.source) for g in given]
    matcher = difflib.SequenceMatcher(a=ours, b=theirs, autojunk=False)
    aligned: dict[int, int] = {}  # given index -> student code index
    for block in matcher.get_matching_blocks():
        for offset in range(block.size):
            aligned[block.a + offset] = block.b + offset
    taken = set(aligned.values())
    changes = []
    for gi, source in enumerate(ours):
        if gi in aligned:
            continue
        moved = next((si for si, t in enumerate(theirs) if t == source and si not in taken), None)
        if moved is not None:  # unchanged, only moved: nothing ran differently in it
            taken.add(moved)
            aligned[gi] = moved
            continue
        before = max((aligned[x] for x in aligned if x < gi), default=-1)
        after = min((aligned[x] for x in aligned if x > gi), default=len(code))
        best: tuple[bool, float, int] | None = None
        for si in range(before + 1, after):
            if si in taken:
                continue
            ratio = difflib.SequenceMatcher(a=source, b=theirs[si], autojunk=False).ratio()
            tagged = GIVEN_TAG in cell_tags(code[si][1])
            if not tagged and ratio < MATCH_RATIO:
                continue
            key = (tagged, ratio, -si)
            if best is None or key > best:
                best = key
        if best is None:
            changes.append(CellChange(given[gi].position, None, "deleted"))
            continue
        si = -best[2]
        taken.add(si)
        aligned[gi] = si
        changes.append(CellChange(given[gi].position, code[si][0], "edited"))
    return changes


def _describe(changes: Sequence[CellChange], restored: bool) -> str:
    parts = []
    for c in changes:
        if c.cell is None:
            parts.append(f"given cell {c.given} was deleted")
        else:
            parts.append(f"cell {c.cell} (given cell {c.given}) was edited")
    tail = (
        "; the original given cells were run instead"
        if restored
        else "; your version was run and graded"
    )
    return "The assignment's given cells were changed: " + ", ".join(parts) + tail + "."


class GivenCheck:
    """The given cells of one rubric's student version, checked per submission."""

    def __init__(self, student_version: Path | None, policy: str, notebook: str | None) -> None:
        self.path = student_version
        self.policy = policy
        self.notebook = notebook
        self.cells = given_cells(student_version) if student_version is not None else []

    @classmethod
    def for_rubric(
        cls, rubric_path: Path, starter: Sequence[str], policy: str, notebook: str | None
    ) -> GivenCheck:
        """From the rubric's ``similarity`` settings: the first ``.ipynb`` starter is the
        student version (none: nothing is checked)."""
        for name in starter:  # every starter file, before any grading starts
            if not (rubric_path.parent / name).is_file():
                raise RubricError(
                    rubric_path,
                    f"similarity.starter names {name}, which does not exist (looked at "
                    f"{(rubric_path.parent / name).resolve()}): give a path relative to the "
                    "rubric's folder",
                )
        names = [s for s in starter if s.lower().endswith(".ipynb")]
        if policy == "ignore" or not names:
            return cls(None, policy, notebook)
        path = (rubric_path.parent / names[0]).resolve()
        try:
            return cls(path, policy, notebook)
        except (OSError, NotebookFormatError) as exc:
            raise RubricError(rubric_path, f"similarity.starter {names[0]}: {exc}") from None

    @property
    def active(self) -> bool:
        """Whether there are given cells to check."""
        return bool(self.cells)

    def changes(self, sub: Submission) -> tuple[list[CellChange], Any]:
        """The changed given cells of ``sub`` and its notebook (None when unreadable)."""
        if not self.active:
            return [], None
        path = notebook_path(sub, self.notebook)
        if path is None:
            return [], None
        try:
            nb = read_notebook(path)
        except NotebookFormatError:
            return [], None
        return compare_cells(self.cells, nb.get("cells", [])), nb

    def section(self, sub: Submission) -> dict[str, Any] | None:
        """The result's ``integrity`` section for ``sub``; None when nothing changed."""
        changes, nb = self.changes(sub)
        if not changes:
            return None
        restored = self.policy == "run_original"
        by_given = {g.position: g for g in self.cells}
        cells = nb.get("cells", [])
        return {
            "given_cells": {
                "policy": self.policy,
                "ran_original": restored,
                "student_version": self.path.name if self.path else "",
                "cells": [
                    {
                        "given": c.given,
                        "cell": c.cell,
                        "change": c.change,
                        "given_sha256": by_given[c.given].sha256,
                        "cell_sha256": None
                        if c.cell is None
                        else source_sha256(cell_source(cells[c.cell - 1])),
                    }
                    for c in changes
                ],
                "message": _describe(changes, restored),
            }
        }

    def prepare(self, sub: Submission, out_dir: Path) -> Submission:
        """The submission to execute: ``sub`` itself, or with ``run_original`` and changed
        given cells a copy under ``OUT/.integrity/run/`` whose notebook has the original
        given cells (edited ones replaced, deleted ones put back after the cell before)."""
        if self.policy != "run_original":
            return sub
        changes, nb = self.changes(sub)
        if not changes or nb is None:
            return sub
        cells = list(nb.get("cells", []))
        by_given = {g.position: g for g in self.cells}
        for change in changes:
            if change.cell is not None:
                cells[change.cell - 1] = _restored(cells[change.cell - 1], by_given[change.given])
        # deleted cells go back after the student's cell holding the given cell before
        # them (or first), last deletion first so earlier insert points do not move
        placed = _placements(self.cells, cells)
        for change in sorted(
            (c for c in changes if c.cell is None), key=lambda c: c.given, reverse=True
        ):
            at = placed.get(change.given, 0)
            cells.insert(at, _new_cell(by_given[change.given]))
        copy_root = out_dir / RUN_DIR / sub.student
        if copy_root.exists():
            shutil.rmtree(copy_root)
        base = sub.path.parent if sub.is_single_file else sub.path
        original_nb = notebook_path(sub, self.notebook)
        assert original_nb is not None  # changes() found it
        files = []
        for path in sub.files:
            if path.is_symlink():
                continue  # the sandbox refuses symlinks anyway
            target = copy_root / path.relative_to(base)
            target.parent.mkdir(parents=True, exist_ok=True)
            if path == original_nb:
                target.write_text(json.dumps({**nb, "cells": cells}, indent=1), encoding="utf-8")
            else:
                shutil.copyfile(path, target)
            files.append(target)
        if sub.is_single_file:
            return Submission(sub.student, files[0], tuple(files), is_single_file=True)
        return Submission(sub.student, copy_root, tuple(sorted(files)))


def _restored(cell: Mapping[str, Any], given: GivenCell) -> dict[str, Any]:
    meta = dict(cell.get("metadata") or {})
    tags = [t for t in cell_tags(cell) if t != GIVEN_TAG]
    meta["tags"] = [*tags, GIVEN_TAG]
    return {**cell, "source": given.source, "metadata": meta}


def _new_cell(given: GivenCell) -> dict[str, Any]:
    return {
        "cell_type": "code",
        "execution_count": None,
        "metadata": {"tags": [GIVEN_TAG]},
        "outputs": [],
        "source": given.source,
    }


def _placements(given: Sequence[GivenCell], cells: Sequence[Any]) -> dict[int, int]:
    """For each given cell, the index after the student's copy of the given cell before
    it (0 when there is none)."""
    where: dict[str, int] = {}
    for i, cell in enumerate(cells):
        if isinstance(cell, dict) and cell.get("cell_type") == "code":
            where.setdefault(normalised(cell_source(cell)), i)
    out: dict[int, int] = {}
    last = 0
    for g in given:
        out[g.position] = last
        found = where.get(normalised(g.source))
        if found is not None:
            last = found + 1
    return out
