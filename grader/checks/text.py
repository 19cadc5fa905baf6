"""``type: text`` — a free-text answer under a Markdown heading, marked by an instructor.

The grader finds the answer, counts its words (CJK characters count one each), finds
the rubric's concepts sentence by sentence — by their phrases and by meaning, with a
multilingual sentence-embedding model (:mod:`grader.marks`) — and suggests the mark the
rubric's scheme gives (points per concept, ``all``/``any`` groups, caps, contradicting
statements). The status stays ``manual`` until an instructor confirms or overrides it
(``overrides.yaml``), unless the rubric says ``final: true``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

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
from grader.headings import HEADING
from grader.headings import heading_pattern as heading_pattern  # re-exported for its readers
from grader.marks.match import DEFAULT_MARGIN, match_answer
from grader.marks.scheme import (
    Cap,
    Concept,
    Group,
    best_possible,
    check_names,
    concept_points,
    scheme_mark,
)
from grader.marks.words import count_words
from grader.models import CheckResult, CheckStatus
from grader.report.format import text_direction

_MAX_ANSWER_CHARS = 1500


class TextSpec(CheckSpec):
    """A Markdown answer found under its heading, and the scheme that marks it."""

    type: Literal["text"]
    #: The heading the answer is under (``Q1a`` also finds ``Q1 (a)``, ``Q1 a)``).
    heading: str = Field(min_length=1)
    #: The mark is out of these points.
    points: float = Field(ge=0)
    #: Fewer words than this scale the suggestion down in proportion (CJK characters
    #: count one word each).
    min_words: int = Field(default=0, ge=0)
    #: What the answer should say: phrases (``any:``), statements matched by meaning
    #: (``means:``), ``points`` and ``contradicts:`` (see :mod:`grader.marks.scheme`).
    concepts: list[Concept] = Field(default_factory=list)
    #: Points earned when all (``all: [names]``) or any (``any: [names]``) are found.
    groups: list[Group] = Field(default_factory=list)
    #: ``{max: P, when: [names]}`` / ``{max: P, unless: [names]}``: the mark's limits.
    caps: list[Cap] = Field(default_factory=list)
    #: The instructor's model answer: its similarity to an answer is shown and used by
    #: the calibrated suggestions of the review page.
    model_answer: str = ""
    #: ``meaning`` (phrases and statements matched by meaning) or ``phrases`` (phrases
    #: only; the model is never loaded).
    match: Literal["meaning", "phrases"] = "meaning"
    #: How much more a sentence must resemble a concept's statements than the other
    #: concepts' to state it (default :data:`grader.marks.match.DEFAULT_MARGIN`).
    margin: float | None = Field(default=None, ge=0, le=1)
    #: ``true``: the suggested mark is the final mark (status pass/partial/fail, no
    #: review needed). Default ``false``: it stays a suggestion (status ``manual``).
    final: bool = False

    needs_notebook: ClassVar[bool] = True  # the answer is Markdown in the notebook
    needs_expected: ClassVar[bool] = False  # the concepts are the rubric's own
    needs_review: ClassVar[bool] = True  # the suggested mark awaits the instructor

    @model_validator(mode="after")
    def _scheme_names(self) -> TextSpec:
        check_names(self.concepts, self.groups, self.caps)
        if self.concepts and best_possible(self.concepts, self.groups, self.points) < self.points:
            raise ValueError(
                f"the scheme's concepts and groups give at most "
                f"{best_possible(self.concepts, self.groups, self.points):g} of the "
                f"{self.points:g} points: raise their points"
            )
        return self

    def margin_or_default(self) -> float:
        """The contrast margin in force."""
        return DEFAULT_MARGIN if self.margin is None else self.margin

    def max_points(self, expected: Mapping[str, Any]) -> float:
        """The instructor's mark is out of ``points``."""
        return self.points

    def rules(self) -> list[str]:
        """The scheme's caps and contradictions, in words."""
        out = [f"{cap.describe()}" for cap in self.caps]
        out += [
            f"{c.name!r} is cancelled by: {'; '.join(c.contradicts)}"
            for c in self.concepts
            if c.contradicts
        ]
        if self.final:
            out.append("the suggested mark is final (no instructor review)")
        return out


class FoundConcept(StrictModel):
    """A concept of the rubric and what found it in the answer, if anything."""

    name: str
    found: bool
    matched: str | None = None  # the phrase that found it
    points: float | None = None
    via: str | None = None  # "phrase" or "meaning"
    sentence: str | None = None  # the sentence that found it (or came closest)
    similarity: float | None = None
    margin: float | None = None
    contradicted_by: str | None = None


class TextDetails(Details):
    """The answer found, its length, the concepts found and the suggested mark."""

    concepts: list[FoundConcept] = Field(default_factory=list)
    found: list[str] = Field(default_factory=list)
    word_count: int | None = None
    min_words: int | None = None
    answer: str = ""
    suggested: float | None = None
    confidence: float | None = None
    low_confidence: bool = False
    capped: list[str] = Field(default_factory=list)
    model_similarity: float | None = None


def find_answer(markdown: tuple[str, ...], part: str) -> str | None:
    """The text under the first heading for ``part``, up to the next heading of the
    same or a higher level, across cells; None when there is no such heading."""
    pattern = heading_pattern(part)
    lines = [line for cell in markdown for line in cell.splitlines()]
    for start, line in enumerate(lines):
        match = HEADING.match(line.strip())
        if not match or not pattern.match(match.group(2)):
            continue
        level = len(match.group(1))
        body: list[str] = []
        for later in lines[start + 1 :]:
            nxt = HEADING.match(later.strip())
            if nxt and len(nxt.group(1)) <= level:
                break
            body.append(later)
        return "\n".join(body).strip()
    return None


@register("text", TextSpec, details=TextDetails)
def grade_text(spec: TextSpec, ctx: CheckContext) -> CheckResult:
    """Suggest the scheme's mark from the concepts found and the length; flag for the
    instructor (unless the rubric says the suggestion is final)."""
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
    match = match_answer(
        spec.concepts,
        answer,
        margin=spec.margin_or_default(),
        model_answer=spec.model_answer or None,
        prompt=spec.prompt or None,
        meaning=spec.match == "meaning",
    )
    found_map = match.found()
    suggested, capped = scheme_mark(spec.concepts, spec.groups, spec.caps, top, found_map)
    points = concept_points(spec.concepts, spec.groups, top)
    concepts = [
        FoundConcept(
            name=c.name,
            found=c.found,
            matched=c.phrase if c.found else None,
            points=points[c.name],
            via=c.via if c.found else None,
            sentence=c.evidence,
            similarity=c.similarity if c.margin > -1 else None,
            margin=c.margin if c.margin > -1 else None,
            contradicted_by=c.contradicted_by,
        )
        for c in match.concepts
    ]
    earning = [c for c in spec.concepts if points[c.name] > 0]
    found = [c.name for c in earning if found_map[c.name]]
    absent = [c.name for c in earning if not found_map[c.name]]
    wrong = [c.name for c in spec.concepts if points[c.name] == 0 and found_map[c.name]]
    words = count_words(answer)
    if spec.min_words and words < spec.min_words:
        suggested *= words / spec.min_words
    confidence = match.confidence()
    verb = "mark" if spec.final else "suggested"
    message = f"{verb} {round(suggested, 2):g}/{top:g}"
    if not spec.final:
        message += ", awaiting instructor review"
    if absent:
        message += "; not found: " + ", ".join(absent)
    contradicted = [c.name for c in match.concepts if c.contradicted_by]
    if contradicted:
        message += "; contradicted: " + ", ".join(contradicted)
    if wrong:
        message += "; says: " + ", ".join(wrong)
    if capped:
        message += "; " + "; ".join(capped)
    if spec.min_words and words < spec.min_words:
        message += f"; {words} words, fewer than the {spec.min_words} expected"
    details = TextDetails(
        concepts=concepts,
        found=found,
        word_count=words,
        min_words=spec.min_words,
        answer=answer[:_MAX_ANSWER_CHARS],
        suggested=round(suggested, 2),
        confidence=round(confidence, 3),
        low_confidence=confidence < 0.5,
        capped=capped,
        model_similarity=match.model_similarity,
    )
    if spec.final:
        status: CheckStatus = (
            "pass" if suggested >= top else ("partial" if suggested > 0 else "fail")
        )
        return result(spec, top, suggested, status, message, details=details)
    return result(spec, top, suggested, "manual", message, details=details)


@view("text", macros=MACROS / "text.html.j2", word="written answer", breakable=True)
def text_view(check: CheckResult, details: TextDetails) -> dict[str, Any]:
    """The answer as found (in its own writing direction), the concepts found and not,
    the word count, and the suggested mark while it awaits the instructor."""
    answer = details.answer[:_MAX_ANSWER_CHARS]
    return {
        "concepts": [
            {
                "name": c.name,
                "found": c.found,
                "matched": c.matched or "",
                "sentence": c.sentence if (c.found and c.via == "meaning") else "",
                "contradicted_by": c.contradicted_by or "",
                "wrong": c.points == 0,
            }
            for c in details.concepts
        ],
        "capped": details.capped,
        "confidence": details.confidence,
        "low_confidence": details.low_confidence,
        "word_count": details.word_count,
        "min_words": details.min_words,
        "answer": answer,
        "answer_truncated": len(details.answer) > _MAX_ANSWER_CHARS,
        "answer_dir": text_direction(answer),
        "awaiting": check.status == "manual",
    }
