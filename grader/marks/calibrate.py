"""Suggestions that learn from the instructor's marks, for the review page.

The functions here take a ``text`` check's spec, the answers to it (student → text, as
the results keep them in ``details.answer``) and the instructor's marks so far (student →
points, e.g. :func:`marks_from_overrides`), and give:

- :func:`suggest`: a mark for every answer with the sentence behind each concept and a
  confidence. Until ``min_marks`` answers are marked it is the scheme's mark; from then
  on it is calibrated on the marks: a ridge regression per question on the concept
  features (found, by phrase, contrast margin), the scheme's mark, the similarity to the
  model answer and the length, blended with the marks of the most similar marked answers.
- :func:`review_order`: the unmarked answers, most informative first (least confident,
  and least like anything marked so far).
- :func:`group_answers`: groups of answers similar enough, with the same concepts found,
  to be marked by one decision.

:func:`answers_from_records` and :func:`marks_from_overrides` read the answers and the
marks from an output folder's results and ``overrides.yaml``.

Nothing here changes a result: suggestions stay suggestions (status ``manual``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from grader.marks.embed import Encoder
from grader.marks.match import AnswerMatch, match_answer
from grader.marks.scheme import concept_points, scheme_mark
from grader.marks.words import count_words

if TYPE_CHECKING:
    from grader.checks.text import TextSpec
    from grader.models import GradeRecord

#: Marked answers needed before suggestions are calibrated.
MIN_MARKS = 5
#: Below this confidence a suggestion is flagged to be marked first.
LOW_CONFIDENCE = 0.5
#: Ridge penalty on standardised features: strong, as a handful of marks trains it.
_ALPHA = 100.0
#: Weight of the nearest marked answers against the regression.
_KNN_WEIGHT = 0.3
_KNN = 3


@dataclass(frozen=True)
class Evidence:
    """Why a concept counts (or not): the sentence that matched it, and how."""

    concept: str
    found: bool
    points: float
    via: str | None  # "phrase", "meaning" or None
    sentence: str | None
    similarity: float
    margin: float
    contradicted_by: str | None


@dataclass(frozen=True)
class Suggestion:
    """A suggested mark for one answer."""

    student: str
    mark: float  # the suggestion (calibrated when ``calibrated``), rounded to 2 dp
    scheme_mark: float  # the scheme's mark from the concepts found
    confidence: float  # 0..1
    low_confidence: bool  # flagged to be marked first
    calibrated: bool
    evidence: tuple[Evidence, ...]
    instructor_mark: float | None = None  # the instructor's mark, when there is one


def marks_from_overrides(path: Path, check: str) -> dict[str, float]:
    """The instructor's marks for ``check`` in an overrides file (``OUT/overrides.yaml``
    or the folder holding it): student → points. Only ``student``, ``check`` and
    ``points`` are read; an absent file gives no marks."""
    from grader.overrides import OVERRIDES_FILE, load_overrides

    if path.is_dir():
        path = path / OVERRIDES_FILE
    if not path.exists():
        return {}
    return {o.student: float(o.points) for o in load_overrides(path) if o.check == check}


def answers_from_records(records: Sequence[GradeRecord], check: str) -> dict[str, str]:
    """student → the answer a ``text`` check found (``details.answer``, up to the first
    1500 characters, as results keep it), for students whose answer was found."""
    out: dict[str, str] = {}
    for record in records:
        for question in record.questions:
            for result in question.checks:
                if result.id == check and result.details and result.details.get("answer"):
                    out[record.student] = str(result.details["answer"])
    return out


def analyse(
    spec: TextSpec, answers: Mapping[str, str], encoder: Encoder | None = None
) -> dict[str, AnswerMatch]:
    """Every answer's concept matches, by meaning whatever the check's ``match:`` (the
    calibration's features need the embeddings even where the check's own mark uses
    phrases only)."""
    return {
        student: match_answer(
            spec.concepts,
            text,
            margin=spec.margin_or_default(),
            model_answer=spec.model_answer or None,
            prompt=spec.prompt or None,
            encoder=encoder,
        )
        for student, text in answers.items()
    }


def _scheme(spec: TextSpec, match: AnswerMatch, answer: str) -> float:
    """The check's own suggestion before the length rule: the scheme's mark from the
    concepts its ``match:`` finds."""
    found = match.found()
    if spec.match == "phrases":
        found = match_answer(spec.concepts, answer, meaning=False).found()
    return scheme_mark(spec.concepts, spec.groups, spec.caps, spec.points, found)[0]


def features(spec: TextSpec, match: AnswerMatch, answer: str) -> npt.NDArray[np.float64]:
    """The calibration features of one answer: per concept found / by phrase / contrast
    margin, then the scheme's mark, the similarity to the model answer, log words."""
    row: list[float] = []
    for c in match.concepts:
        row += [float(c.found), float(c.via == "phrase"), max(-0.1, min(0.2, c.margin))]
    row += [
        _scheme(spec, match, answer),
        match.model_similarity if match.model_similarity is not None else 0.0,
        math.log1p(count_words(answer)),
    ]
    return np.asarray(row, dtype=np.float64)


def _evidence(spec: TextSpec, match: AnswerMatch) -> tuple[Evidence, ...]:
    points = concept_points(spec.concepts, spec.groups, spec.points)
    return tuple(
        Evidence(
            concept=c.name,
            found=c.found,
            points=points[c.name],
            via=c.via,
            sentence=c.evidence,
            similarity=c.similarity,
            margin=c.margin,
            contradicted_by=c.contradicted_by,
        )
        for c in match.concepts
    )


def _fit_predict(
    x: npt.NDArray[np.float64],
    base: npt.NDArray[np.float64],
    vectors: npt.NDArray[np.float32],
    marked: Sequence[int],
    y: npt.NDArray[np.float64],
    top: float,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Calibrated marks for every row and their confidence, from the marked rows.

    The scheme's mark ``base`` stays the prior: the regression and the neighbours learn
    only how the instructor's marks differ from it (the residual), so a few marks adjust
    the scheme instead of replacing it.
    """
    from sklearn.linear_model import Ridge

    residual = y - base[marked]
    mean, std = x[marked].mean(axis=0), x[marked].std(axis=0)
    std[std == 0] = 1.0
    z = np.clip((x - mean) / std, -3.0, 3.0)
    ridge = Ridge(alpha=_ALPHA).fit(z[marked], residual).predict(z)
    sims = vectors @ vectors[marked].T  # rows × marked
    k = min(_KNN, len(marked))
    nearest = np.argsort(-sims, axis=1)[:, :k]
    closeness = np.take_along_axis(sims, nearest, axis=1)
    # Neighbours count only when really alike (E5: ~0.9 and above for near paraphrases).
    weights = np.clip((closeness - 0.85) / 0.1, 0.0, 1.0)
    knn = (weights * residual[nearest]).sum(axis=1) / np.maximum(weights.sum(axis=1), 1.0)
    pred = np.clip(base + (1 - _KNN_WEIGHT) * ridge + _KNN_WEIGHT * knn, 0.0, top)
    # Confident when the prediction is near a whole mark and near a marked answer.
    whole = 1.0 - np.minimum(1.0, 2.0 * np.abs(pred - np.rint(pred)))
    near = np.clip((sims.max(axis=1) - 0.80) / 0.15, 0.0, 1.0)
    return pred, np.round(0.5 * whole + 0.5 * near, 3)


def suggest(
    spec: TextSpec,
    answers: Mapping[str, str],
    marks: Mapping[str, float] | None = None,
    *,
    min_marks: int = MIN_MARKS,
    encoder: Encoder | None = None,
) -> dict[str, Suggestion]:
    """A suggestion for every answer: the scheme's mark until ``min_marks`` of these
    answers have an instructor's mark, then a mark calibrated on those marks."""
    marks = {s: float(p) for s, p in (marks or {}).items() if s in answers}
    students = list(answers)
    matches = analyse(spec, answers, encoder)
    schemes = np.array([_scheme(spec, matches[s], answers[s]) for s in students])
    confidence = np.array([matches[s].confidence() for s in students])
    calibrated = len(marks) >= min_marks
    pred = schemes.astype(np.float64)
    if calibrated:
        x = np.stack([features(spec, matches[s], answers[s]) for s in students])
        vectors = np.stack([matches[s].vector for s in students])
        marked = [i for i, s in enumerate(students) if s in marks]
        y = np.array([marks[students[i]] for i in marked])
        pred, confidence = _fit_predict(
            x, schemes.astype(np.float64), vectors, marked, y, spec.points
        )
    return {
        s: Suggestion(
            student=s,
            mark=round(float(pred[i]), 2),
            scheme_mark=round(float(schemes[i]), 2),
            confidence=round(float(confidence[i]), 3),
            low_confidence=bool(confidence[i] < LOW_CONFIDENCE),
            calibrated=calibrated,
            evidence=_evidence(spec, matches[s]),
            instructor_mark=marks.get(s),
        )
        for i, s in enumerate(students)
    }


def review_order(
    spec: TextSpec,
    answers: Mapping[str, str],
    marks: Mapping[str, float] | None = None,
    *,
    min_marks: int = MIN_MARKS,
    encoder: Encoder | None = None,
) -> list[str]:
    """The unmarked students, most informative first: each pick is the answer whose
    suggestion is least confident and least like any answer marked or picked before it
    (so the first marks cover the kinds of answer there are)."""
    marks = marks or {}
    found = suggest(spec, answers, marks, min_marks=min_marks, encoder=encoder)
    matches = analyse(spec, answers, encoder)
    seen = [matches[s].vector for s in answers if s in marks]
    left = sorted(s for s in answers if s not in marks)
    order: list[str] = []
    while left:

        def value(s: str) -> tuple[float, str]:
            novelty = 1.0 - max((float(v @ matches[s].vector) for v in seen), default=0.0)
            # E5 similarities of answers to one question lie in about 0.75..1.
            novelty = min(1.0, novelty / 0.25)
            return (-(0.5 * (1.0 - found[s].confidence) + 0.5 * novelty), s)

        pick = min(left, key=value)
        order.append(pick)
        left.remove(pick)
        seen.append(matches[pick].vector)
    return order


def group_answers(
    spec: TextSpec,
    answers: Mapping[str, str],
    *,
    similarity: float = 0.93,
    encoder: Encoder | None = None,
) -> list[list[str]]:
    """Groups of answers that one decision can mark: the same concepts found and an
    answer embedding within ``similarity`` (cosine) of the group's first answer. Largest
    groups first; every answer is in exactly one group (many are alone)."""
    matches = analyse(spec, answers, encoder)
    groups: list[tuple[str, list[str]]] = []
    for s in sorted(answers):
        profile = tuple(sorted(n for n, ok in matches[s].found().items() if ok))
        for leader, members in groups:
            same = tuple(sorted(n for n, ok in matches[leader].found().items() if ok))
            if same == profile and float(matches[leader].vector @ matches[s].vector) >= similarity:
                members.append(s)
                break
        else:
            groups.append((s, [s]))
    return sorted((m for _, m in groups), key=lambda m: (-len(m), m[0]))
