"""The review queues: per check, every answer awaiting an instructor's mark.

An answer is in its check's queue when the grader left it to an instructor: its status
was ``manual`` (a written answer's suggested mark, or any check a rubric marks for
review) — whether or not it has been marked since. Nothing here names a check type: the
prompt, answer and concepts are read from what every such result holds (``prompt``,
``details.answer`` or ``got``, ``details.concepts``).

Two seams: :data:`Order` is how a queue is ordered (:func:`student_order` by default;
:class:`grader.review.learn.Learner` plugs in "most informative first" with suggestions
calibrated on the instructor's marks), and :attr:`Item.group` holds an optional group id
of similar answers that one decision can mark.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from grader.models import CheckResult, GradeRecord
from grader.report.format import fmt_compact

#: How long an answer the page shows (the PDF shows less); longer ones end with "…".
MAX_ANSWER_CHARS = 20_000


@dataclass(frozen=True)
class Concept:
    """A concept the rubric looks for in an answer, and whether it was found."""

    name: str
    found: bool
    matched: str = ""  # the phrase that found it
    points: float | None = None  # what it is worth in the scheme
    via: str | None = None  # "phrase" or "meaning"
    sentence: str | None = None  # the answer's sentence that stated it (or came closest)
    similarity: float | None = None  # that sentence's similarity to the concept
    contradicted_by: str | None = None  # the sentence that cancelled it


@dataclass(frozen=True)
class Proposal:
    """The mark the page offers to accept, and how sure it is.

    Before the instructor has marked ``needed`` answers to the check it is the check's
    own suggestion (the scheme's mark, in the result); from then on it is calibrated on
    those marks (``calibrated``). It is only ever a proposal: nothing is recorded until
    an instructor decides.
    """

    mark: float
    confidence: float | None
    low_confidence: bool
    calibrated: bool = False
    marked: int = 0  # answers to this check the instructor has marked
    needed: int = 0  # marks needed before calibration (0: this check does not learn)


@dataclass(frozen=True)
class Item:
    """One answer awaiting (or having had) an instructor's mark."""

    student: str
    check: str
    question: str
    question_title: str
    prompt: str
    answer: str
    concepts: tuple[Concept, ...]
    word_count: int | None
    suggested: float  # the grader's own mark
    max_score: float
    mark: float | None = None  # the instructor's mark, None while unreviewed
    comment: str = ""
    figure: str | None = None  # a PNG/JPEG data: URI, never anything else
    group: str | None = None  # an id shared by similar answers (set by an ordering plugin)
    proposal: Proposal | None = None  # what the page offers; None: ``suggested``

    @property
    def reviewed(self) -> bool:
        """Whether an instructor has marked this answer."""
        return self.mark is not None

    @property
    def offer(self) -> float:
        """The mark "accept" records: the proposal's, else the grader's own."""
        return self.proposal.mark if self.proposal is not None else self.suggested


#: Orders one check's items (the queue's order): ``order(items) -> items``.
Order = Callable[[list[Item]], list[Item]]


def student_order(items: list[Item]) -> list[Item]:
    """The default order: by student id (the pseudonyms hide it)."""
    return sorted(items, key=lambda i: i.student)


def awaits_review(check: CheckResult) -> bool:
    """Whether the grader left this check to an instructor (``manual``, before any
    override)."""
    status = check.override.original_status if check.override is not None else check.status
    return status == "manual"


_PNG = b"\x89PNG\r\n\x1a\n"
_JPEG = b"\xff\xd8\xff"


def safe_figure(data: bytes) -> str | None:
    """A ``data:`` URI for PNG or JPEG bytes (checked by their signature), None for
    anything else: a student's SVG or HTML could carry script, so it is never shown."""
    if data.startswith(_PNG):
        kind = "png"
    elif data.startswith(_JPEG):
        kind = "jpeg"
    else:
        return None
    return f"data:image/{kind};base64," + base64.b64encode(data).decode("ascii")


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _concepts(details: Mapping[str, Any]) -> tuple[Concept, ...]:
    out = []
    for c in details.get("concepts") or ():
        if isinstance(c, Mapping) and isinstance(c.get("name"), str):
            out.append(
                Concept(
                    c["name"],
                    bool(c.get("found")),
                    str(c.get("matched") or ""),
                    points=_number(c.get("points")),
                    via=_text(c.get("via")),
                    sentence=_text(c.get("sentence")),
                    similarity=_number(c.get("similarity")),
                    contradicted_by=_text(c.get("contradicted_by")),
                )
            )
    return tuple(out)


def _proposal(details: Mapping[str, Any], suggested: float) -> Proposal | None:
    """The check's own suggestion and confidence, when its details give a confidence
    (``text`` checks do)."""
    confidence = _number(details.get("confidence"))
    if confidence is None:
        return None
    return Proposal(suggested, confidence, bool(details.get("low_confidence")))


def _answer(check: CheckResult, details: Mapping[str, Any]) -> str:
    answer = details.get("answer")
    if isinstance(answer, str):
        text = answer
    elif check.got is not None:
        text = fmt_compact(check.got, MAX_ANSWER_CHARS)
    else:
        text = ""
    return text if len(text) <= MAX_ANSWER_CHARS else text[:MAX_ANSWER_CHARS] + " …"


def item_of(record: GradeRecord, check: CheckResult, question: str, title: str) -> Item:
    """The queue item of one check of one record (overrides applied or not)."""
    details = check.details if isinstance(check.details, Mapping) else {}
    override = check.override
    words = details.get("word_count")
    suggested = float(override.original_score if override is not None else check.score)
    return Item(
        student=record.student,
        check=check.id,
        question=question,
        question_title=title,
        prompt=check.prompt,
        answer=_answer(check, details),
        concepts=_concepts(details),
        word_count=words if isinstance(words, int) and not isinstance(words, bool) else None,
        suggested=suggested,
        max_score=float(check.max_score),
        mark=None if override is None else float(override.points),
        comment="" if override is None else override.comment,
        proposal=_proposal(details, suggested),
    )


def build_queues(
    records: Sequence[GradeRecord], order: Order = student_order
) -> dict[str, list[Item]]:
    """Every check's queue, in rubric order (the order checks first appear), each
    ordered by ``order``. ``records`` should have the overrides applied, so reviewed
    items carry their mark."""
    queues: dict[str, list[Item]] = {}
    for record in records:
        for q in record.questions:
            for c in q.checks:
                if awaits_review(c):
                    queues.setdefault(c.id, []).append(item_of(record, c, q.id, q.title))
    return {check: list(order(items)) for check, items in queues.items()}


def pseudonym(secret: bytes, student: str) -> str:
    """An opaque key for a student, stable for one ``secret`` (one review session):
    forms name answers by it, so an anonymous page never holds a student id."""
    return hmac.new(secret, student.encode("utf-8"), hashlib.sha256).hexdigest()[:16]


def with_group(items: Sequence[Item], groups: Mapping[str, str]) -> list[Item]:
    """``items`` with the group ids of ``groups`` (student → group id) set."""
    return [replace(i, group=groups.get(i.student, i.group)) for i in items]
