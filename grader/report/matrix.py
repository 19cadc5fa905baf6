"""Arrays as preformatted text, the cells where two arrays differ highlighted.

A matrix becomes one line per row of right-aligned cells, which lays out many times
faster than a table with a box per entry; the values are the plain lists of a result.
"""

from __future__ import annotations

from typing import Any

from markupsafe import Markup, escape

from grader.report.format import fmt_number, fmt_shape

MAX_MATRIX_ROWS = 12
MAX_MATRIX_COLS = 10


def depth(value: Any) -> int:
    """How many list levels a value has (0 for a number)."""
    levels = 0
    while isinstance(value, list):
        levels += 1
        if not value:
            break
        value = value[0]
    return levels


def _as_grid(value: Any) -> tuple[list[list[Any]], list[int]] | None:
    """A scalar, vector, matrix or higher array as rows of cells plus its shape."""
    levels = depth(value)
    if levels == 0:
        return [[value]], []
    if levels == 1:
        return [list(value)], [len(value)]
    if levels == 2:
        if not all(isinstance(r, list) for r in value):
            return None
        width = max((len(r) for r in value), default=0)
        return [list(r) for r in value], [len(value), width]
    shape: list[int] = []
    probe = value
    while isinstance(probe, list):
        shape.append(len(probe))
        probe = probe[0] if probe else None
    rows: list[list[Any]] = []

    def walk(node: Any, level_: int) -> None:
        if level_ == len(shape) - 1:
            rows.append(list(node) if isinstance(node, list) else [node])
        elif isinstance(node, list):
            for child in node:
                walk(child, level_ + 1)

    walk(value, 0)
    return rows, shape


def matrix_view(value: Any, mismatch: Any = None) -> dict[str, Any] | None:
    """A matrix as preformatted HTML lines with the differing cells highlighted, or None.

    Each row becomes one line of right-aligned, space-separated cells (cheap to lay out
    compared with a table cell per entry); cells marked in ``mismatch`` are wrapped in
    ``<span class="d">``. Large arrays are cut to ``MAX_MATRIX_ROWS`` × ``MAX_MATRIX_COLS``.
    """
    grid = _as_grid(value)
    if grid is None:
        return None
    rows, shape = grid
    mask = _as_grid(mismatch) if mismatch is not None else None
    mask_grid = mask[0] if mask is not None and len(mask[0]) == len(rows) else None
    n_rows = len(rows)
    n_cols = max((len(r) for r in rows), default=0)
    texts = [[fmt_number(c) for c in r[:MAX_MATRIX_COLS]] for r in rows[:MAX_MATRIX_ROWS]]
    width = max((len(t) for r in texts for t in r), default=1)
    lines: list[str] = []
    shown_diffs = 0
    for i, row in enumerate(texts):
        mask_row = mask_grid[i] if mask_grid is not None and isinstance(mask_grid[i], list) else []
        parts = []
        for j, text in enumerate(row):
            cell = str(escape(text.rjust(width)))
            if j < len(mask_row) and mask_row[j] is True:
                shown_diffs += 1
                cell = f'<span class="d">{cell}</span>'
            parts.append(cell)
        if n_cols > MAX_MATRIX_COLS:
            parts.append("…")
        lines.append("  ".join(parts))
    if n_rows > MAX_MATRIX_ROWS:
        lines.append(
            f"… {n_rows - MAX_MATRIX_ROWS} more row{'s' if n_rows - MAX_MATRIX_ROWS != 1 else ''}"
        )
    chars = max(len(texts[0]) if texts else 0, 1) * (width + 2) + (
        2 if n_cols > MAX_MATRIX_COLS else 0
    )
    return {
        "html": Markup("\n".join(lines)),
        "chars": chars,
        "shape": shape,
        "shape_text": fmt_shape(shape) if shape else "scalar",
        "more_cols": max(n_cols - MAX_MATRIX_COLS, 0),
        "shown_diffs": shown_diffs,
        "flattened": len(shape) > 2,
    }


def count_true(mask: Any) -> int:
    """How many entries of a nested list of booleans are true."""
    if isinstance(mask, list):
        return sum(count_true(m) for m in mask)
    return 1 if mask is True else 0


def count_cells(value: Any) -> int:
    """How many leaves a nested list has."""
    if isinstance(value, list):
        return sum(count_cells(v) for v in value)
    return 1
