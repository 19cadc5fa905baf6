"""A submitted notebook file: read it, split its cells, find headings and assignments.

Nothing here runs student code: the notebook is read as untrusted JSON, and a cell's
source is only parsed (never executed) to say where a name is assigned.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat


class NotebookFormatError(Exception):
    """The submitted file cannot be read as a Jupyter notebook (the student's problem: it
    becomes the execution's ``problem``, never a grader error)."""


@dataclass(frozen=True)
class Cell:
    """A code cell: its 1-based position among all cells, and its source."""

    position: int
    source: str


def split_cells(nb: Any) -> tuple[list[str], list[Cell]]:
    """The Markdown sources and the code cells of ``nb``, in order."""
    markdown: list[str] = []
    code: list[Cell] = []
    for position, cell in enumerate(nb.get("cells", []), start=1):
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        if cell.get("cell_type") == "markdown":
            markdown.append(source)
        elif cell.get("cell_type") == "code":
            code.append(Cell(position, source))
    return markdown, code


_MD_HEADING = re.compile(r"^(#{1,6})[ \t]+\S")


def enclosing_headings(cells: list[Any]) -> dict[int, tuple[str, ...]]:
    """For each cell position (1-based), the Markdown heading lines enclosing it."""
    stack: list[tuple[int, str]] = []
    out: dict[int, tuple[str, ...]] = {}
    for position, cell in enumerate(cells, start=1):
        out[position] = tuple(line for _, line in stack)
        if cell.get("cell_type") != "markdown":
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        for raw in source.splitlines():
            line = raw.strip()
            match = _MD_HEADING.match(line)
            if match:
                level = len(match.group(1))
                stack = [(lvl, text) for lvl, text in stack if lvl < level]
                stack.append((level, line))
    return out


def read_notebook(path: Path) -> Any:
    """Read ``path`` as an nbformat-4 notebook, tolerating schema validation problems.

    Raises :class:`NotebookFormatError` with a message a student can act on when the
    file is not UTF-8, not JSON, or not a notebook.
    """
    fix = "re-download the notebook from Jupyter (File > Download) and submit that file"
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise NotebookFormatError(f"{path.name} cannot be read ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise NotebookFormatError(
            f"{path.name} is not UTF-8 text (byte {exc.start}) — {fix}"
        ) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise NotebookFormatError(
            f"{path.name} is not valid JSON (line {exc.lineno}, column {exc.colno}): "
            f"{exc.msg} — {fix}"
        ) from None
    except RecursionError:
        raise NotebookFormatError(f"{path.name} is not valid JSON (nested too deeply)") from None
    if type(data) is not dict or not isinstance(data.get("cells", []), list):
        raise NotebookFormatError(f"{path.name} is JSON but not a Jupyter notebook — {fix}")
    if "nbformat" not in data:
        raise NotebookFormatError(
            f"{path.name} is JSON but not a Jupyter notebook (no 'nbformat' field) — {fix}"
        )
    try:
        # reads() validates and only logs schema problems; as_version=4 upgrades v3.
        return nbformat.reads(text, as_version=4)  # type: ignore[no-untyped-call]
    except Exception as exc:
        raise NotebookFormatError(
            f"{path.name} is not a readable Jupyter notebook ({type(exc).__name__}: {exc}) — {fix}"
        ) from None


def image_cells(nb: Any, images: set[int]) -> tuple[tuple[int, tuple[str, ...]], ...]:
    """Each cell (1-based position) that displayed an image, with the Markdown headings
    enclosing it."""
    if not images:
        return ()
    headings = enclosing_headings(list(nb.get("cells", [])))
    return tuple((p, headings.get(p, ())) for p in sorted(images))


_MAGIC_LINE = re.compile(r"^(\s*)[%!].*$", re.MULTILINE)


def assigns(source: str, name: str) -> bool:
    """Whether the cell ``source`` binds ``name`` anywhere (a deliberate over-approximation).

    IPython magics and shell lines are blanked before parsing; a cell that still is not
    Python falls back to a regular expression.
    """
    lines = source.splitlines()
    if lines and lines[0].lstrip().startswith("%%"):
        lines = lines[1:]
    cleaned = _MAGIC_LINE.sub(lambda m: f"{m.group(1)}pass", "\n".join(lines))
    try:
        tree = ast.parse(cleaned)
    except (SyntaxError, ValueError):
        return re.search(rf"\b{re.escape(name)}\s*(?::[^=\n]*)?=(?!=)", source) is not None
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id == name and isinstance(node.ctx, ast.Store):
            return True
        if (
            isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
            and node.name == name
        ):
            return True
        if isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                bound = alias.asname or alias.name.split(".")[0]
                if bound == name:
                    return True
    return False
