"""``type: choice`` — answers picked from a closed set (true/false), item by item.

The reference gives a list of expected choices (``["false", "true", …]``); the student's
answer is a list, a tuple or a one-dimensional array (NumPy or torch, which arrive as
arrays) of the same length. Each item earns ``points_each`` when it names the same
choice. Booleans and the usual spellings are read: ``True``/``"T"``/``"yes"`` are
``"true"``, ``False``/``"F"``/``"no"`` are ``"false"`` (case and surrounding spaces are
ignored); where the expected choice is true/false, the numbers 1 and 0 are read as true
and false too (a 0/1 array). Other choices are compared as lower-case text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
from pydantic import Field

from grader.checks.base import (
    CheckContext,
    CheckSpec,
    Details,
    StrictModel,
    register,
    result,
    status_for,
    unavailable,
)
from grader.models import AnswerRequest, CheckResult
from grader.normalize import to_plain

_SYNONYMS = {
    "true": "true",
    "t": "true",
    "yes": "true",
    "y": "true",
    "false": "false",
    "f": "false",
    "no": "false",
    "n": "false",
}


_BOOLEAN = frozenset({"true", "false"})
FORMS = 'True/False: booleans (NumPy and torch bools included), 0/1, or the strings "true"/"false"'


def read_choice(value: Any, *, boolean: bool = False) -> str | None:
    """A choice as lower-case text (``True`` → ``"true"``), or None when unreadable.

    ``boolean`` says the expected choice is true/false, so that 1 and 0 (ints, or whole
    floats from a float array) read as ``"true"`` and ``"false"``; elsewhere a number
    names no choice.
    """
    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "biuf":
        value = value.item()  # one element of a torch bool tensor kept in a list
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, str):
        text = value.strip().lower().rstrip(".")
        return _SYNONYMS.get(text, text) if text else None
    if boolean and isinstance(value, int | float | np.integer | np.floating):
        if value == 1:
            return "true"
        if value == 0:
            return "false"
    return None


def _items(value: Any) -> list[Any] | None:
    """The answer's items: a list or tuple, or a 1-D array (size-1 axes dropped)."""
    if isinstance(value, list | tuple):
        return list(value)
    if isinstance(value, np.ndarray) and value.ndim >= 1:
        flat = value.reshape([n for n in value.shape if n != 1] or [1])
        if flat.ndim == 1:
            return list(flat.tolist())
    return None


class ChoiceSpec(CheckSpec):
    """A list of choices graded item by item."""

    type: Literal["choice"]
    answer: str = Field(min_length=1)
    """The name the notebook assigns its list of choices to; the reference's value is the list
    of expected choices."""
    points_each: float = Field(gt=0)
    """Points for each item that names the expected choice."""

    def max_points(self, expected: Mapping[str, Any]) -> float:
        """``points_each`` per expected item."""
        return self.points_each * len(expected[self.reference_key])

    def requests(self) -> list[AnswerRequest]:
        """The one list this check reads."""
        return [AnswerRequest(name=self.answer)]


class ChoiceItem(StrictModel):
    """One item: its 1-based position, the choice read from the answer, right or not."""

    item: int
    got: str | None
    ok: bool


class ChoiceDetails(Details):
    """Every item's verdict."""

    items: list[ChoiceItem] = Field(default_factory=list)


@register("choice", ChoiceSpec, details=ChoiceDetails)
def grade_choice(spec: ChoiceSpec, ctx: CheckContext) -> CheckResult:
    """Compare each item with the reference's choice at the same position."""
    top = spec.max_points(ctx.expected)
    missing = unavailable(spec, ctx, spec.answer, top)
    if missing is not None:
        return missing
    expected = [str(v) for v in ctx.expected[spec.reference_key]]
    got_raw = ctx.answers[spec.answer].value
    answers = _items(got_raw)
    if answers is None:
        forms = f"; each one {FORMS}" if _BOOLEAN.issuperset(expected) else ""
        return result(
            spec,
            top,
            0,
            "fail",
            f"{spec.answer} must be a list, a tuple or a 1-D array of {len(expected)} "
            f"answers{forms}",
            expected=expected,
            got=to_plain(got_raw),
        )
    items = []
    wrong = []
    for i, want in enumerate(expected):
        got = read_choice(answers[i], boolean=want in _BOOLEAN) if i < len(answers) else None
        ok = got == want
        items.append(ChoiceItem(item=i + 1, got=got, ok=ok))
        if not ok:
            wrong.append(str(i + 1))
    score = spec.points_each * (len(expected) - len(wrong))
    status = status_for(score, top)
    message = (
        f"all {len(expected)} answers are right"
        if not wrong
        else f"item{'s' if len(wrong) > 1 else ''} {', '.join(wrong)} of {len(expected)} "
        "wrong or unreadable"
    )
    if len(answers) != len(expected):
        message += f" ({spec.answer} has {len(answers)} items, not {len(expected)})"
    unreadable = [it for it in items[: len(answers)] if it.got is None]
    if unreadable and _BOOLEAN.issuperset(expected):
        message += f"; write each answer as {FORMS}"
    return result(
        spec,
        top,
        score,
        status,
        message,
        expected=expected,
        got=to_plain(got_raw),
        details=ChoiceDetails(items=items),
    )
