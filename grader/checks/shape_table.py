"""``type: shape_table`` — a layer table (name, output shape, parameters) row by row.

The reference builds the model in torch and reads every row from a forward pass, so
the expected rows are the reference's; each graded row earns its shape point and its
parameter point separately, compared with the reference's row at the same position.
A reference row whose shape is ``"invalid"`` (a size went non-positive) expects the
student to write ``"invalid"`` too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from markupsafe import Markup, escape
from pydantic import Field

from grader.checks.base import (
    MACROS,
    CheckContext,
    CheckSpec,
    Details,
    StrictModel,
    register,
    result,
    status_for,
    unavailable,
    view,
)
from grader.models import AnswerRequest, CheckResult
from grader.normalize import NotNumeric, to_count, to_plain, to_shape
from grader.report.format import fmt_compact, fmt_number, fmt_points, fmt_shape, shorten

INVALID = "invalid"


class ShapeTableSpec(CheckSpec):
    """Rows ``[layer_name, output_shape, trainable_params]`` graded row by row."""

    type: Literal["shape_table"]
    answer: str = Field(min_length=1)
    """The name of the student's table: a list of rows [layer_name, output_shape,
    trainable_params]."""
    convention: Literal["steps_channels", "height_width_channels", "channels_first"] = (
        "steps_channels"
    )
    """How an output shape is written without the batch axis: (steps, channels), (height,
    width, channels) or channels first."""
    leading_none: bool = False
    """Accept and drop a leading None in a row's shape: the batch axis as Keras prints it
    in ``model.summary()`` ("(None, 498, 16)", a tf.TensorShape). Set it where the handout
    says the table's shapes may be copied from Keras."""
    skip_rows: int = Field(default=1, ge=0)
    """Leading rows not graded (the input row, whose values the handout gives)."""
    shape_points: float = Field(default=1.0, ge=0)
    """Points for each row whose output shape matches the reference's."""
    param_points: float = Field(default=1.0, ge=0)
    """Points for each row whose parameter count matches the reference's."""

    def max_points(self, expected: Mapping[str, Any]) -> float:
        """Shape and parameter points for every graded reference row."""
        rows = len(expected[self.reference_key]) - self.skip_rows
        return max(rows, 0) * (self.shape_points + self.param_points)

    def requests(self) -> list[AnswerRequest]:
        """The table's name."""
        return [AnswerRequest(name=self.answer)]


class TableRow(StrictModel):
    """One graded row: the student's shape and count (as read, or as written when
    unreadable), the reference's where they may be shown, and the points earned."""

    row: int
    layer: str
    got_shape: Any
    got_params: Any
    shape_ok: bool
    params_ok: bool
    points: float
    max_points: float
    expected_shape: Any = None  # a shape, or "invalid"
    expected_params: int | None = None


class ShapeTableDetails(Details):
    """Every graded row."""

    rows: list[TableRow] = Field(default_factory=list)


_CONVENTION_WORDS = {
    "steps_channels": "(steps, channels)",
    "height_width_channels": "(height, width, channels)",
    "channels_first": "(channels, …)",
}


def _row_cells(row: Any) -> tuple[Any, Any, Any] | None:
    if isinstance(row, list | tuple) and len(row) == 3:
        return row[0], row[1], row[2]
    if isinstance(row, dict):
        keys = {k.lower(): v for k, v in row.items()}
        shape = keys.get("output_shape", keys.get("shape"))
        params = keys.get("trainable_params", keys.get("params", keys.get("parameters")))
        if shape is not None and params is not None:
            return keys.get("layer", keys.get("name", "")), shape, params
    return None


def _shape_of(value: Any, leading_none: bool) -> tuple[int, ...] | str:
    if isinstance(value, str) and value.strip().lower() == INVALID:
        return INVALID
    return to_shape(value, leading_none=leading_none)


@register("shape_table", ShapeTableSpec, details=ShapeTableDetails)
def grade_shape_table(spec: ShapeTableSpec, ctx: CheckContext) -> CheckResult:
    """Award each graded row's shape and parameter points independently."""
    reference_rows: list[Any] = ctx.expected[spec.reference_key]
    top = spec.max_points(ctx.expected)
    missing = unavailable(spec, ctx, spec.answer, top)
    if missing is not None:
        return missing
    table = ctx.answers[spec.answer].value
    if not isinstance(table, list | tuple):
        return result(
            spec,
            top,
            0,
            "fail",
            f"{spec.answer} must be a list of rows [layer_name, output_shape, trainable_params]",
            got=to_plain(table),
        )
    rows_out: list[TableRow] = []
    score = 0.0
    problems: list[str] = []
    for index in range(spec.skip_rows, len(reference_rows)):
        row_result = _grade_row(spec, index, reference_rows[index], table)
        score += row_result["points"]
        if row_result.get("problem"):
            problems.append(row_result.pop("problem"))
        rows_out.append(TableRow(**row_result))
    if len(table) != len(reference_rows):
        problems.insert(
            0,
            f"the table has {len(table)} rows; it should have {len(reference_rows)} "
            "(one for the input and one per layer)",
        )
    status = status_for(score, top)
    if status == "pass":
        message = f"all {len(rows_out)} graded rows are correct"
    else:
        message = "; ".join(problems[:4]) + ("; …" if len(problems) > 4 else "")
    return result(
        spec,
        top,
        score,
        status,
        message,
        got=to_plain(table),
        details=ShapeTableDetails(rows=rows_out),
    )


def _grade_row(
    spec: ShapeTableSpec, index: int, reference: Any, table: list[Any] | tuple[Any, ...]
) -> dict[str, Any]:
    layer, exp_shape, exp_params = reference
    exp_shape_v = exp_shape if exp_shape == INVALID else tuple(exp_shape)
    out: dict[str, Any] = {
        "row": index + 1,
        "layer": str(layer),
        "got_shape": None,
        "got_params": None,
        "shape_ok": False,
        "params_ok": False,
        "points": 0.0,
        "max_points": spec.shape_points + spec.param_points,
    }
    if spec.show_expected:
        out["expected_shape"] = to_plain(exp_shape_v)
        out["expected_params"] = exp_params
    cells = _row_cells(table[index]) if index < len(table) else None
    if cells is None:
        out["problem"] = f"row {index + 1} ({layer}) is missing or not [name, shape, params]"
        return out
    _, got_shape_raw, got_params_raw = cells
    notes = []
    try:
        got_shape = _shape_of(got_shape_raw, spec.leading_none)
        out["got_shape"] = to_plain(got_shape)
    except NotNumeric as exc:
        got_shape = None
        out["got_shape"] = to_plain(got_shape_raw)
        notes.append(f"its shape cannot be read ({exc})")  # names the accepted forms
    if got_shape is not None and got_shape == exp_shape_v:
        out["shape_ok"] = True
        out["points"] += spec.shape_points
    elif got_shape is not None:
        wrong = f"the output shape {_shape_text(got_shape)} is wrong"
        if (
            isinstance(got_shape, tuple)
            and isinstance(exp_shape_v, tuple)
            and len(got_shape) > 1
            and got_shape == exp_shape_v[::-1]
        ):
            wrong += f": write it as {_CONVENTION_WORDS[spec.convention]}"
        notes.append(wrong)
    got_params = to_count(got_params_raw)
    out["got_params"] = got_params if got_params is not None else to_plain(got_params_raw)
    if got_params is not None and got_params == exp_params:
        out["params_ok"] = True
        out["points"] += spec.param_points
    else:
        wrong = f"the parameter count {out['got_params']!r} is wrong"
        if (
            got_params
            and isinstance(exp_shape_v, tuple)
            and exp_shape_v
            and got_params * exp_shape_v[-1] == exp_params
        ):
            wrong += " (it is the count for one filter: multiply by the number of filters)"
        notes.append(wrong)
    if notes:
        out["problem"] = f"row {index + 1} ({layer}): " + " and ".join(notes)
    return out


def _shape_text(shape: tuple[int, ...] | str) -> str:
    """A shape as students write it: ``(498, 16)``, ``(3776,)``."""
    return shape if isinstance(shape, str) else str(tuple(shape))


# ------------------------------------------------------------------ the report's view

SHAPE_ROW_CHARS = 30  # the "row · layer" column of a report's table


def wrong_rows(check: CheckResult, details: ShapeTableDetails) -> list[tuple[str, bool]] | None:
    """The class summary's keys of a wrong table: each wrong row as the student wrote it."""
    if not details.rows:
        return None
    return [
        (
            f"row {r.row} {r.layer}: {fmt_shape(r.got_shape)}, "
            f"{fmt_compact(r.got_params, 20)} params",
            True,
        )
        for r in details.rows
        if not (r.shape_ok and r.params_ok)
    ]


@view("shape_table", macros=MACROS / "shape_table.html.j2", wrong=wrong_rows)
def shape_table_view(check: CheckResult, details: ShapeTableDetails) -> dict[str, Any]:
    """The table as aligned text, a mark per row, the wrong entries highlighted; the
    reference's shapes and counts only where the record may show them."""
    rows = []
    for row in details.rows:
        has_exp = check.show_expected and (
            "expected_shape" in row.model_fields_set or "expected_params" in row.model_fields_set
        )
        rows.append(
            {
                "row": row.row,
                "layer": row.layer,
                "expected_shape": fmt_shape(row.expected_shape) if has_exp else None,
                "got_shape": fmt_shape(row.got_shape),
                "expected_params": fmt_number(row.expected_params) if has_exp else None,
                "got_params": fmt_number(row.got_params),
                "shape_ok": row.shape_ok,
                "params_ok": row.params_ok,
                "ok": row.shape_ok and row.params_ok,
                "points": fmt_points(row.points),
                "max_points": fmt_points(row.max_points),
            }
        )
    has_expected = any(r["expected_shape"] is not None for r in rows)
    return {
        "rows": rows,
        "has_expected": has_expected,
        "n_wrong": sum(1 for r in rows if not r["ok"]),
        "html": shape_table_text(rows, has_expected),
    }


def shape_table_text(rows: Sequence[dict[str, Any]], has_expected: bool) -> Markup:
    """A shape table as preformatted lines: aligned columns, a ✓/✗ mark per row.

    Wrong rows are wrapped in ``<span class="w">`` and their wrong entries in
    ``<span class="bad">``. One text block lays out many times faster than a table with
    a cell per entry (each cell is a box with its own line breaking and borders).
    """
    head = ["Row · layer", "Your shape"]
    head += ["Expected shape"] if has_expected else []
    head += ["Your params"]
    head += ["Expected params"] if has_expected else []
    head += ["Points"]
    table: list[list[str]] = []
    for r in rows:
        line = [shorten(f"{r['row']} · {r['layer']}", SHAPE_ROW_CHARS), str(r["got_shape"])]
        line += [str(r["expected_shape"] or "")] if has_expected else []
        line += [str(r["got_params"])]
        line += [str(r["expected_params"] or "")] if has_expected else []
        line += [f"{r['points']} / {r['max_points']}"]
        table.append(line)
    widths = [max(len(x) for x in col) for col in zip(head, *table, strict=True)]
    bad_cols = (1, 3 if has_expected else 2)  # your shape, your params

    def fmt(cells: Sequence[str], bad: Sequence[bool] = ()) -> str:
        out = []
        for i, (cell, width) in enumerate(zip(cells, widths, strict=True)):
            text = cell.rjust(width) if i == len(cells) - 1 else cell.ljust(width)
            text = str(escape(text))
            if i in bad_cols and bad and bad[bad_cols.index(i)]:
                text = f'<span class="bad">{text}</span>'
            out.append(text)
        return "  ".join(out)

    lines = [f'<span class="h">  {fmt(head)}</span>']
    for r, cells in zip(rows, table, strict=True):
        if r["ok"]:
            lines.append(f"✓ {fmt(cells)}")
        else:
            bad = (not r["shape_ok"], not r["params_ok"])
            lines.append(f'<span class="w">✗ {fmt(cells, bad)}</span>')
    return Markup("\n".join(lines))
