"""``type: text`` — a free-text answer under a Markdown heading, marked by an instructor.

The grader finds the answer, counts its words, looks for the rubric's concepts (each
with synonyms) and suggests a mark; the status stays ``manual`` until an instructor
confirms or overrides it (``overrides.yaml``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import Field

from grader.checks.base import (
    MACROS,
    CheckContext,
    CheckSpec,
    Details,
    StrictModel,
    register,
    result,
    view,
)
from grader.models import CheckResult
from grader.report.format import text_direction

_HEADING = re.compile(r"^(#{1,6})[ \t]+(.*?)[ \t#]*$")
_MAX_ANSWER_CHARS = 1500


class Concept(StrictModel):
    """An idea the answer should contain, recognised by any of its phrases."""

    name: str = Field(min_length=1)
    """The idea, in words, as the report lists it."""
    any: list[str] = Field(min_length=1)
    """Phrases that show the idea (case-insensitive, matched from a word start); any one
    counts."""


class TextSpec(CheckSpec):
    """A Markdown answer found under its heading."""

    type: Literal["text"]
    heading: str = Field(min_length=1)
    """The start of the Markdown heading (Q3) whose section holds the written answer."""
    points: float = Field(ge=0)
    """Points of the answer; the suggested mark is the share of concepts found, reduced when
    the answer is shorter than min_words."""
    min_words: int = Field(default=0, ge=0)
    """Answers shorter than this get a proportionally lower suggested mark (0: no minimum)."""
    concepts: list[Concept] = Field(default_factory=list)
    """The ideas a full answer contains; none: the suggested mark is full when an answer is
    found."""

    needs_notebook: ClassVar[bool] = True  # the answer is Markdown in the notebook
    needs_expected: ClassVar[bool] = False  # the concepts are the rubric's own
    needs_review: ClassVar[bool] = True  # the suggested mark awaits the instructor

    def max_points(self, expected: Mapping[str, Any]) -> float:
        """The instructor's mark is out of ``points``."""
        return self.points


class FoundConcept(StrictModel):
    """A concept of the rubric and the phrase that found it in the answer, if any."""

    name: str
    found: bool
    matched: str | None = None


class TextDetails(Details):
    """The answer found, its length, the concepts found and the suggested mark."""

    concepts: list[FoundConcept] = Field(default_factory=list)
    found: list[str] = Field(default_factory=list)
    word_count: int | None = None
    min_words: int | None = None
    answer: str = ""
    suggested: float | None = None


def heading_pattern(part: str) -> re.Pattern[str]:
    """A regex matching headings that start with ``part`` (``Q1a`` ≡ ``Q1 a)`` ≡ ``Q1 (a)``)."""
    tokens = re.findall(r"[A-Za-z]+|\d+", part)
    body = r"[\s\-_.:]*[(\[]?\s*".join(re.escape(t) for t in tokens)
    return re.compile(r"^\W*" + body + r"(?![A-Za-z0-9])", re.IGNORECASE)


def find_answer(markdown: tuple[str, ...], part: str) -> str | None:
    """The text under the first heading for ``part``, up to the next heading of the
    same or a higher level, across cells; None when there is no such heading."""
    pattern = heading_pattern(part)
    lines = [line for cell in markdown for line in cell.splitlines()]
    for start, line in enumerate(lines):
        match = _HEADING.match(line.strip())
        if not match or not pattern.match(match.group(2)):
            continue
        level = len(match.group(1))
        body: list[str] = []
        for later in lines[start + 1 :]:
            nxt = _HEADING.match(later.strip())
            if nxt and len(nxt.group(1)) <= level:
                break
            body.append(later)
        return "\n".join(body).strip()
    return None


def _found(text: str, phrase: str) -> bool:
    """``phrase`` occurs case-insensitively, starting at a word boundary."""
    return re.search(r"(?<![A-Za-z0-9])" + re.escape(phrase.lower()), text) is not None


@register("text", TextSpec, details=TextDetails)
def grade_text(spec: TextSpec, ctx: CheckContext) -> CheckResult:
    """Suggest a mark from concepts found and length; flag for the instructor."""
    top = spec.points
    if ctx.notebook_problem is not None:
        return result(
            spec, top, 0, "fail", f"{spec.heading} could not be graded: {ctx.notebook_problem}"
        )
    answer = find_answer(ctx.markdown, spec.heading)
    if answer is None:
        return result(
            spec,
            top,
            0,
            "fail",
            f"no Markdown heading starting with {spec.heading} was found: put the answer under "
            f"a heading such as '### {spec.heading}'",
        )
    lowered = answer.lower()
    hits = {c.name: next((p for p in c.any if _found(lowered, p)), None) for c in spec.concepts}
    concepts = [FoundConcept(name=n, found=hit is not None, matched=hit) for n, hit in hits.items()]
    found = [name for name, hit in hits.items() if hit is not None]
    absent = [name for name, hit in hits.items() if hit is None]
    words = len(answer.split())
    suggested = top * (len(found) / len(hits) if hits else 1.0)
    if spec.min_words and words < spec.min_words:
        suggested *= words / spec.min_words
    message = f"suggested {round(suggested, 2):g}/{top:g}, awaiting instructor review"
    if absent:
        message += "; not found: " + ", ".join(absent)
    if spec.min_words and words < spec.min_words:
        message += f"; {words} words, fewer than the {spec.min_words} expected"
    details = TextDetails(
        concepts=concepts,
        found=found,
        word_count=words,
        min_words=spec.min_words,
        answer=answer[:_MAX_ANSWER_CHARS],
        suggested=round(suggested, 2),
    )
    return result(spec, top, suggested, "manual", message, details=details)


@view("text", macros=MACROS / "text.html.j2", word="written answer", breakable=True)
def text_view(check: CheckResult, details: TextDetails) -> dict[str, Any]:
    """The answer as found (in its own writing direction), the concepts found and not,
    the word count, and the suggested mark while it awaits the instructor."""
    answer = details.answer[:_MAX_ANSWER_CHARS]
    return {
        "concepts": [
            {"name": c.name, "found": c.found, "matched": c.matched or ""} for c in details.concepts
        ],
        "word_count": details.word_count,
        "min_words": details.min_words,
        "answer": answer,
        "answer_truncated": len(details.answer) > _MAX_ANSWER_CHARS,
        "answer_dir": text_direction(answer),
        "awaiting": check.status == "manual",
    }
