"""``type: choice`` — answers picked from a closed set (true/false), item by item.

The reference gives a list of expected choices (``["false", "true", …]``); the student's
answer is a list of the same length. Each item earns ``points_each`` when it names the
same choice. Booleans and the usual spellings are read: ``True``/``"T"``/``"yes"`` are
``"true"``, ``False``/``"F"``/``"no"`` are ``"false"`` (case and surrounding spaces are
ignored); other choices are compared as lower-case text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field

from grader.checks.base import CheckContext, CheckSpec, register, result, status_for, unavailable
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


def read_choice(value: Any) -> str | None:
    """A choice as lower-case text (``True`` → ``"true"``), or None when unreadable."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = value.strip().lower().rstrip(".")
        return _SYNONYMS.get(text, text) if text else None
    return None


class ChoiceSpec(CheckSpec):
    """A list of choices graded item by item."""

    type: Literal["choice"]
    answer: str = Field(min_length=1)
    points_each: float = Field(gt=0)

    def max_points(self, expected: Mapping[str, Any]) -> float:
        """``points_each`` per expected item."""
        return self.points_each * len(expected[self.reference_key])

    def requests(self) -> list[AnswerRequest]:
        """The one list this check reads."""
        return [AnswerRequest(name=self.answer)]


@register("choice", ChoiceSpec)
def grade_choice(spec: ChoiceSpec, ctx: CheckContext) -> CheckResult:
    """Compare each item with the reference's choice at the same position."""
    top = spec.max_points(ctx.expected)
    missing = unavailable(spec, ctx, spec.answer, top)
    if missing is not None:
        return missing
    expected = [str(v) for v in ctx.expected[spec.reference_key]]
    got_raw = ctx.answers[spec.answer].value
    if not isinstance(got_raw, list | tuple):
        return result(
            spec,
            top,
            0,
            "fail",
            f"{spec.answer} must be a list of {len(expected)} answers",
            expected=expected,
            got=to_plain(got_raw),
        )
    items = []
    wrong = []
    for i, want in enumerate(expected):
        got = read_choice(got_raw[i]) if i < len(got_raw) else None
        ok = got == want
        items.append({"item": i + 1, "got": got, "ok": ok})
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
    if len(got_raw) != len(expected):
        message += f" ({spec.answer} has {len(got_raw)} items, not {len(expected)})"
    return result(
        spec,
        top,
        score,
        status,
        message,
        expected=expected,
        got=to_plain(got_raw),
        details={"items": items},
    )
