"""``type: value`` — a number, matrix or shape read by name and compared with tolerances."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
from pydantic import Field

from grader.checks.base import (
    MACROS,
    CheckContext,
    CheckSpec,
    Details,
    register,
    result,
    unavailable,
    view,
)
from grader.checks.tolerance import within
from grader.models import AnswerRequest, CheckResult
from grader.normalize import FloatArray, NotNumeric, to_array, to_plain, to_shape
from grader.report.format import expected_of, fmt_number, got_of
from grader.report.matrix import count_cells, count_true, depth, matrix_view

#: Expected and submitted matrices narrower than this (characters, together) are drawn
#: side by side, wider ones one above the other.
SIDE_BY_SIDE_MAX_CHARS = 96


class ValueSpec(CheckSpec):
    """A named answer compared with the reference's value, all or nothing."""

    type: Literal["value"]
    answer: str = Field(min_length=1)
    """The name the notebook assigns the answer to (a top-level variable), harvested after the
    notebook ran."""
    points: float = Field(ge=0)
    """Points for a correct answer (all or nothing)."""
    atol: float = Field(default=1e-6, ge=0)
    """Absolute tolerance: each element passes when |got − expected| ≤ atol + rtol·|expected|."""
    rtol: float = Field(default=0.0, ge=0)
    """Relative tolerance (see atol)."""
    leading_none: bool = False
    """When the answer is a shape: accept and drop a leading None, the batch axis as Keras
    prints it ("(None, 498, 16)", a tf.TensorShape). Only for shapes Keras prints (an
    output shape); an argument value such as an LSTM's input_shape leaves it false, so
    (None, 1, 5) stays wrong there."""

    def max_points(self, expected: Mapping[str, Any]) -> float:
        """All or nothing."""
        return self.points

    def requests(self) -> list[AnswerRequest]:
        """The one name this check reads."""
        return [AnswerRequest(name=self.answer)]


class ValueDetails(Details):
    """Why a value is wrong: its shape and the expected one, or which entries differ."""

    expected_shape: list[int] | None = None
    got_shape: list[int] | None = None
    #: Nested lists of booleans shaped like the answer, true where an entry differs
    #: (none for a single number).
    mismatch: list[Any] | None = None


def _describe_shape(shape: tuple[int, ...]) -> str:
    if not shape:
        return "a single number"
    if len(shape) == 2:
        return f"a {shape[0]}×{shape[1]} matrix"
    return f"an array of shape {shape}"


def _read(expected: Any, got: Any, leading_none: bool = False) -> tuple[FloatArray, FloatArray]:
    """Student and reference values as arrays, a shape answer read as a shape."""
    if isinstance(expected, tuple):  # the reference marks shapes as tuples
        return (
            np.asarray(expected, dtype=np.float64),
            np.asarray(to_shape(got, leading_none=leading_none), dtype=np.float64),
        )
    exp = to_array(expected)
    arr = to_array(got)
    if exp.ndim == 0 and arr.size == 1:
        arr = arr.reshape(())
    return exp, arr


@register("value", ValueSpec, details=ValueDetails)
def grade_value(spec: ValueSpec, ctx: CheckContext) -> CheckResult:
    """Compare elementwise with |got − expected| ≤ atol + rtol·|expected|."""
    top = spec.points
    missing = unavailable(spec, ctx, spec.answer, top)
    if missing is not None:
        return missing
    got_raw = ctx.answers[spec.answer].value
    expected_raw = ctx.expected[spec.reference_key]
    shown = to_plain(expected_raw)
    try:
        exp, got = _read(expected_raw, got_raw, spec.leading_none)
    except NotNumeric as exc:
        return result(
            spec,
            top,
            0,
            "fail",
            f"{spec.answer} could not be read as numbers: {exc}",
            expected=shown,
            got=to_plain(got_raw),
        )
    if exp.shape != got.shape:
        hint = ""
        if exp.size == got.size:
            hint = f" (it has the right number of entries: reshape it to {exp.shape})"
        return result(
            spec,
            top,
            0,
            "fail",
            f"{spec.answer} should be {_describe_shape(exp.shape)}, got "
            f"{_describe_shape(got.shape)}{hint}",
            expected=shown,
            got=got,
            details=ValueDetails(expected_shape=list(exp.shape), got_shape=list(got.shape)),
        )
    close = within(got, exp, atol=spec.atol, rtol=spec.rtol)
    if bool(np.all(close)):
        return result(spec, top, top, "pass", f"{spec.answer} is correct", expected=shown, got=got)
    details = ValueDetails(mismatch=(~close).tolist()) if exp.ndim >= 1 else None
    message = _wrong_message(spec.answer, exp, got, close)
    return result(spec, top, 0, "fail", message, expected=shown, got=got, details=details)


def _wrong_message(name: str, exp: FloatArray, got: FloatArray, close: np.ndarray) -> str:
    if exp.ndim == 0:
        return f"{name} = {got.item():g} is not the expected value"
    wrong = int((~close).sum())
    message = f"{name} differs from the expected value in {wrong} of {exp.size} entries"
    if exp.ndim == 2 and exp.shape[0] == exp.shape[1] and np.allclose(got.T, exp, atol=1e-9):
        message += ": it equals the transpose of the right answer, so check which index is the row"
    elif np.allclose(got, -exp, atol=1e-9):
        message += ": every entry has the wrong sign"
    return message


@view("value", macros=MACROS / "value.html.j2")
def value_view(check: CheckResult, details: ValueDetails) -> dict[str, Any]:
    """Two numbers side by side, or the expected and submitted matrices with the
    differing cells highlighted (and how many differ), or the two shapes."""
    has_exp, expected = expected_of(check)
    got = got_of(check)
    has_got = got is not None
    mismatch = details.mismatch
    shown: dict[str, Any] = {
        "has_expected": has_exp,
        "has_got": has_got,
        "expected_shape": details.expected_shape,
        "got_shape": details.got_shape,
        "scalar": False,
    }
    if has_exp and has_got and depth(expected) == 0 and depth(got) == 0:
        shown.update(scalar=True, expected_text=fmt_number(expected), got_text=fmt_number(got))
        return shown
    shown["expected"] = matrix_view(expected, mismatch) if has_exp else None
    shown["got"] = matrix_view(got, mismatch) if has_got else None
    matrices = [m for m in (shown["expected"], shown["got"]) if m is not None]
    if mismatch is not None:
        shown["n_diff"] = count_true(mismatch)
        shown["n_cells"] = count_cells(mismatch)
        shown["n_hidden_diff"] = shown["n_diff"] - max(
            (m["shown_diffs"] for m in matrices), default=0
        )
    shown["side_by_side"] = sum(m["chars"] for m in matrices) <= SIDE_BY_SIDE_MAX_CHARS
    return shown
