"""Suggestions that learn from the instructor's marks, wired into the review queues.

A :class:`Learner` is the queue order (:data:`grader.review.queue.Order`) of a review
session for the rubric's ``text`` checks (other checks keep the student order). For each
such queue it uses :mod:`grader.marks.calibrate` as its API:

- the proposal: until the instructor has marked ``min_marks`` answers to the check (the
  marks ``overrides.yaml`` holds, which is where the review page records its decisions)
  it is the check's own suggestion from the result; from then on the calibrated
  suggestion (:func:`~grader.marks.calibrate.suggest`), with its evidence (which sentence
  matched which concept, and how closely) and its confidence;
- the order: the answers already marked first (so the page's "next answer to mark" is
  the first unmarked one), then the unmarked ones, the low-confidence ones first, each
  part most informative first (:func:`~grader.marks.calibrate.review_order`), the
  members of a group of similar answers kept together;
- the groups (:func:`~grader.marks.calibrate.group_answers`, of unmarked answers only):
  one decision can mark a whole group; :meth:`Learner.ungroup` takes an answer out of
  its group before deciding.

Nothing here writes anything: a proposal becomes a mark only by an instructor's
decision (the result's status stays ``manual``; ``final: true`` checks never reach a
queue). The embedding model loads once per review process, on the first queue that
needs it; every answer's sentences are embedded once (:class:`CachedEncoder`), and a
queue's order is recomputed only when its answers, marks or groups change.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from grader.marks.calibrate import MIN_MARKS, Suggestion, group_answers, review_order, suggest
from grader.marks.embed import Encoder, Vectors
from grader.review.queue import Concept, Item, Proposal, student_order

if TYPE_CHECKING:
    from grader.checks.text import TextSpec
    from grader.rubric import Rubric

#: Answers at least this similar (cosine), with the same concepts found, form a group.
#: Stricter than ``group_answers``' 0.93: on bench/marks' 21 hand-marked lr_high answers
#: (as HW3 Q1a) 0.93 grouped answers marked 1, 2 and 3 together, and answers with the
#: same concepts but different marks reached 0.965; at 0.97 only near-duplicates group.
GROUP_SIMILARITY = 0.97


class CachedEncoder:
    """An encoder that embeds each text once for the life of the review process (the
    model's own cache is bounded; a review goes over the same answers again after every
    decision)."""

    def __init__(self, inner: Encoder) -> None:
        self.inner = inner
        self.name = inner.name
        self._rows: dict[str, Vectors] = {}
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str]) -> Vectors:
        """One normalised row per text, in order (new texts embedded in one batch)."""
        with self._lock:
            missing = [t for t in dict.fromkeys(texts) if t not in self._rows]
            if missing:
                for text, row in zip(missing, self.inner.encode(missing), strict=True):
                    self._rows[text] = row
            if not texts:
                return self.inner.encode([])
            return np.stack([self._rows[t] for t in texts])


class Learner:
    """The learning queue order of one review session (see the module's docstring)."""

    def __init__(
        self,
        specs: Mapping[str, TextSpec],
        *,
        encoder: Encoder | None = None,
        min_marks: int = MIN_MARKS,
        similarity: float = GROUP_SIMILARITY,
    ) -> None:
        self.specs = dict(specs)
        self._given = encoder
        self._encoder: CachedEncoder | None = None
        self.min_marks = min_marks
        self.similarity = similarity
        self.ungrouped: set[tuple[str, str]] = set()  # (check, student) taken out of groups
        self.error: str | None = None  # why the last order fell back to student order
        self._lock = threading.RLock()
        self._cache: dict[str, tuple[Hashable, list[Item]]] = {}

    @classmethod
    def for_rubric(cls, rubric: Rubric, **options: object) -> Learner:
        """A learner for the rubric's ``text`` checks whose suggestion is not final."""
        from grader.checks.text import TextSpec

        specs = {s.id: s for s in rubric.checks() if isinstance(s, TextSpec) and not s.final}
        return cls(specs, **options)  # type: ignore[arg-type]

    @property
    def encoder(self) -> CachedEncoder:
        """The session's encoder (the process's model, created on first use)."""
        if self._encoder is None:
            from grader.marks.embed import default_encoder

            self._encoder = CachedEncoder(self._given or default_encoder())
        return self._encoder

    def ungroup(self, check: str, student: str) -> None:
        """Take ``student``'s answer to ``check`` out of its group (for this session)."""
        with self._lock:
            self.ungrouped.add((check, student))

    def __call__(self, items: list[Item]) -> list[Item]:
        """The queue of one check, in the learning order (see the module's docstring)."""
        if not items or items[0].check not in self.specs:
            return student_order(items)
        check = items[0].check
        key = (
            tuple(sorted((i.student, i.answer, i.mark) for i in items)),
            frozenset(s for c, s in self.ungrouped if c == check),
        )
        with self._lock:
            cached = self._cache.get(check)
            if cached is not None and cached[0] == key:
                return list(cached[1])
            try:
                ordered = self._order(self.specs[check], items)
            except Exception as exc:  # the queue stays usable in student order
                self.error = f"suggestions for {check} failed ({type(exc).__name__}: {exc})"
                return student_order(items)
            self.error = None
            self._cache[check] = (key, ordered)
            return list(ordered)

    def _order(self, spec: TextSpec, items: list[Item]) -> list[Item]:
        answers = {i.student: i.answer for i in items if i.answer.strip()}
        marks = {i.student: i.mark for i in items if i.mark is not None and i.student in answers}
        enc = self.encoder
        found = suggest(spec, answers, marks, min_marks=self.min_marks, encoder=enc)
        informative = review_order(spec, answers, marks, min_marks=self.min_marks, encoder=enc)
        groups = self._groups(spec, {s: answers[s] for s in informative})
        by_student = {
            i.student: self._with_proposal(i, found.get(i.student), len(marks), groups)
            for i in items
        }
        marked = sorted((i for i in items if i.reviewed), key=lambda i: i.student)
        low = [s for s in informative if _low(by_student[s])]
        rest = [s for s in informative if not _low(by_student[s])]
        pending: list[str] = []
        for s in low + rest:
            if s in pending:
                continue
            group = by_student[s].group
            pending += [s] if group is None else [m for m in groups[group] if m not in pending]
        empty = sorted(i.student for i in items if not i.reviewed and i.student not in answers)
        return [by_student[i.student] for i in marked] + [by_student[s] for s in pending + empty]

    def _groups(self, spec: TextSpec, answers: Mapping[str, str]) -> dict[str, list[str]]:
        """Group id → members (two or more, in ``answers``' order) of the unmarked answers."""
        check = spec.id
        out: dict[str, list[str]] = {}
        rank = {s: n for n, s in enumerate(answers)}
        found = group_answers(spec, answers, similarity=self.similarity, encoder=self.encoder)
        for members in found:
            kept = [m for m in members if (check, m) not in self.ungrouped]
            kept.sort(key=lambda m: rank[m])
            if len(kept) > 1:
                out[f"G{len(out) + 1}"] = kept
        return out

    def _with_proposal(
        self,
        item: Item,
        suggestion: Suggestion | None,
        n_marks: int,
        groups: Mapping[str, list[str]],
    ) -> Item:
        group = next((g for g, members in groups.items() if item.student in members), None)
        base = item.proposal
        if suggestion is None or not suggestion.calibrated:
            proposal = Proposal(
                item.suggested,
                base.confidence if base is not None else None,
                base.low_confidence if base is not None else False,
                calibrated=False,
                marked=n_marks,
                needed=self.min_marks,
            )
            concepts = item.concepts
        else:
            proposal = Proposal(
                suggestion.mark,
                suggestion.confidence,
                suggestion.low_confidence,
                calibrated=True,
                marked=n_marks,
                needed=self.min_marks,
            )
            concepts = tuple(
                Concept(
                    e.concept,
                    e.found,
                    "",
                    points=e.points,
                    via=e.via,
                    sentence=e.sentence,
                    similarity=round(e.similarity, 3) if e.margin > -1 else None,
                    contradicted_by=e.contradicted_by,
                )
                for e in suggestion.evidence
            )
        return replace(item, proposal=proposal, concepts=concepts, group=group)


def _low(item: Item) -> bool:
    return item.proposal is not None and item.proposal.low_confidence


def rubric_of(out_dir: Path, given: str | None = None) -> tuple[Rubric | None, str | None]:
    """The rubric ``OUT`` was graded with, and a note when it cannot be used.

    ``given`` (``grade review --rubric``) is loaded as is (a note says so when its SHA-256
    differs from ``OUT/batch.json``'s); without it, the rubric named by the batch's
    assignment in ``rubrics/`` is used only when its SHA-256 is the batch's.
    """
    import hashlib

    from grader.errors import RubricError
    from grader.results import read_batch
    from grader.rubric import load_rubric, resolve_rubric_path

    batch = read_batch(out_dir)
    if given is not None:
        rubric = load_rubric(given)
        if batch is not None and rubric.sha256 != batch.rubric_sha256:
            return rubric, (
                f"{given} is not byte-identical to the rubric {out_dir} was graded with; "
                "suggestions use it as it is now"
            )
        return rubric, None
    if batch is None:
        return None, f"{out_dir} has no batch.json: pass --rubric for suggestions that learn"
    try:
        path = resolve_rubric_path(batch.assignment)
    except RubricError:
        path = None
    if path is None or hashlib.sha256(path.read_bytes()).hexdigest() != batch.rubric_sha256:
        return None, (
            f"no rubric in rubrics/ matches the one {out_dir} was graded with: pass "
            "--rubric R for suggestions that learn from your marks"
        )
    return load_rubric(path), None
