"""Concepts found in an answer, sentence by sentence, by phrase and by meaning.

Each concept is looked for in every sentence (and the clauses of long sentences,
:func:`grader.marks.words.units`): literally by its phrases (``any:``), and by meaning,
as the cosine similarity between the sentence's embedding and each of the concept's
statements (``means:``). A concept is found by meaning when a sentence resembles it at
least :data:`FLOOR` and more than any other concept of the question (by ``margin``). A
sentence that contains one of the concept's ``contradicts:`` statements, or clearly
resembles one (by :data:`STRICT_MARGIN` over every concept), cancels the concept.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from grader.marks.embed import Encoder, Vectors, default_encoder
from grader.marks.scheme import Concept
from grader.marks.words import units

#: How much more a sentence must resemble a concept's statements than any other concept's
#: statements of the question to state it. Raw cosine similarities of
#: multilingual-e5-small are dominated by the topic (every sentence about learning rates
#: resembles every statement about learning rates, about 0.85) and run lower across
#: languages; comparing the concepts with each other removes both (bench/marks: per-point
#: AUC 0.92 English, 0.95 other languages, against 0.88 / 0.89 for raw similarity). 0:
#: the sentence is closer to this concept than to any other.
DEFAULT_MARGIN = 0.0
#: The margin for what takes marks away: a wrong claim (a concept worth 0 points, which
#: caps name) and a contradiction. A false wrong claim costs a good answer most of its
#: mark, so it must be stated more clearly than a point that earns one.
STRICT_MARGIN = 0.05
#: Below this raw similarity a sentence states nothing, whatever its contrast.
FLOOR = 0.80
#: Margins this far from the threshold count as certain (confidence 1).
_CERTAIN = 0.03


@dataclass(frozen=True)
class ConceptMatch:
    """What was found for one concept."""

    name: str
    found: bool
    via: str | None  # "phrase", "meaning" or None
    evidence: str | None  # the sentence that found it (or came closest)
    similarity: float  # best sentence's similarity to the concept's statements (0 if none)
    margin: float = -1.0  # its contrast with the other concepts (-1: not looked for)
    phrase: str | None = None  # the phrase that found it
    contradicted_by: str | None = None  # the sentence that cancelled it
    confidence: float = 1.0  # 0 (at the threshold) .. 1 (far from it, or a phrase)


@dataclass(frozen=True)
class AnswerMatch:
    """Every concept's match, the answer's units and embeddings (for calibration)."""

    concepts: tuple[ConceptMatch, ...]
    units: tuple[str, ...]
    vector: Vectors  # the whole answer's embedding (mean of its units, normalised)
    model_similarity: float | None  # similarity to the model answer, when given

    def found(self) -> dict[str, bool]:
        """Concept name → found (after contradictions)."""
        return {c.name: c.found for c in self.concepts}

    def confidence(self) -> float:
        """The answer's confidence: the mean of its concepts' (1 without concepts)."""
        if not self.concepts:
            return 1.0
        return float(np.mean([c.confidence for c in self.concepts]))


def phrase_in(text: str, phrase: str) -> bool:
    """``phrase`` occurs in ``text`` case-insensitively, starting at a word boundary
    (any position for a phrase that starts with a CJK character)."""
    return re.search(r"(?<![A-Za-z0-9])" + re.escape(phrase.lower()), text.lower()) is not None


def _unit_with(pieces: Sequence[str], phrase: str) -> str | None:
    return next((u for u in pieces if phrase_in(u, phrase)), None)


def _mean_vector(rows: Vectors) -> Vectors:
    if rows.shape[0] == 0:
        return np.zeros(rows.shape[1] if rows.ndim == 2 else 384, dtype=np.float32)
    v = rows.mean(axis=0)
    out: Vectors = (v / max(float(np.linalg.norm(v)), 1e-12)).astype(np.float32)
    return out


def _contrast(sims: Vectors, i: int, baseline: Vectors | None) -> Vectors:
    """Concept ``i``'s similarity per unit minus the closest other concept's (or, for a
    lone concept, minus the similarity to the question's prompt)."""
    others = np.delete(sims, i, axis=0)
    if others.shape[0]:
        out: Vectors = sims[i] - others.max(axis=0)
    elif baseline is not None:
        out = sims[i] - baseline
    else:
        out = sims[i] - FLOOR
    return out


def match_answer(
    concepts: Sequence[Concept],
    answer: str,
    *,
    margin: float = DEFAULT_MARGIN,
    strict_margin: float = STRICT_MARGIN,
    model_answer: str | None = None,
    prompt: str | None = None,
    encoder: Encoder | None = None,
    meaning: bool = True,
) -> AnswerMatch:
    """Find each concept in ``answer``.

    A concept is found by a phrase, or by meaning when one sentence's similarity to the
    concept's statements is at least :data:`FLOOR` and exceeds the other concepts' (the
    contrast) by ``margin``; it is cancelled by a sentence containing one of its
    ``contradicts`` as a phrase, or resembling one of them more than the concept itself
    (by the same floor and ``strict_margin``, which also applies to wrong claims: concepts
    worth 0 points). ``meaning=False`` looks only for phrases and never
    loads the model.
    """
    pieces = units(answer) or ([answer.strip()] if answer.strip() else [])
    uses_model = meaning and any(c.means for c in concepts)
    enc = (encoder or default_encoder()) if uses_model or (meaning and model_answer) else None
    n = len(pieces)
    vecs: Vectors = enc.encode(pieces) if enc is not None and n else np.zeros((0, 384), np.float32)
    # concepts × units: each unit's similarity to the concept's closest statement
    sims = np.zeros((len(concepts), n), dtype=np.float32)
    if enc is not None and n:
        for i, concept in enumerate(concepts):
            if concept.means:
                sims[i] = (vecs @ enc.encode(concept.means).T).max(axis=1)
    with_means = [i for i, c in enumerate(concepts) if c.means]
    baseline = (vecs @ enc.encode([prompt]).T)[:, 0] if enc is not None and prompt and n else None
    if enc is not None and baseline is not None and with_means:
        # A sentence closer to the question than to every statement only restates it
        # ("if the learning rate is too high, ..."): it states nothing, and contradicts
        # nothing.
        said = [s for c in concepts for s in (*c.means, *c.contradicts)]
        restates = baseline >= (vecs @ enc.encode(said).T).max(axis=1)
        sims[:, restates] = 0.0
    else:
        restates = np.zeros(n, dtype=bool)
    out: list[ConceptMatch] = []
    for i, concept in enumerate(concepts):
        phrase = next((p for p in concept.any if phrase_in(answer, p)), None)
        contrast = np.full(n, -1.0, dtype=np.float32)
        if enc is not None and concept.means and n:
            rows = sims[with_means]
            contrast = _contrast(rows, with_means.index(i), baseline)
            contrast = np.where(sims[i] >= FLOOR, contrast, -1.0)
        best = int(np.argmax(contrast)) if n else -1
        best_margin = float(contrast[best]) if best >= 0 else -1.0
        by_meaning = best_margin >= (strict_margin if concept.points == 0 else margin)
        contradiction = next(
            (u for s in concept.contradicts if (u := _unit_with(pieces, s)) is not None), None
        )
        # By meaning only for a concept with statements of its own to compare with;
        # otherwise as phrases.
        if (
            contradiction is None
            and enc is not None
            and concept.means
            and concept.contradicts
            and n
        ):
            against = (vecs @ enc.encode(concept.contradicts).T).max(axis=1)
            # The contradiction must be clearly closer than the concept itself and than
            # any other concept: multilingual-e5-small barely separates a claim from its
            # opposite direction ("full batch is smoother" / "mini-batch is smoother"
            # differ by 0.01-0.03), so only a clear case cancels a concept; write
            # contradicting phrases for the rest.
            rows = np.vstack([sims[with_means], against[None, :]])
            against_contrast = _contrast(rows, rows.shape[0] - 1, baseline)
            wrong = (against >= FLOOR) & (against_contrast >= strict_margin) & ~restates
            if wrong.any():
                contradiction = pieces[int(np.argmax(np.where(wrong, against, -1.0)))]
        found = (phrase is not None or by_meaning) and contradiction is None
        if contradiction is not None:
            confidence = 0.5
        elif phrase is not None or not (enc is not None and concept.means):
            confidence = 1.0
        else:
            confidence = min(1.0, abs(best_margin - margin) / _CERTAIN)
        evidence = _unit_with(pieces, phrase) if phrase is not None else None
        if evidence is None and best >= 0 and best_margin > -1.0:
            evidence = pieces[best]
        out.append(
            ConceptMatch(
                name=concept.name,
                found=found,
                via="phrase" if phrase is not None else ("meaning" if by_meaning else None),
                evidence=evidence,
                similarity=round(float(sims[i, best]) if best >= 0 else 0.0, 4),
                margin=round(best_margin, 4),
                phrase=phrase,
                contradicted_by=contradiction,
                confidence=round(confidence, 3),
            )
        )
    model_similarity = None
    if enc is not None and model_answer and n:
        reference = enc.encode(units(model_answer) or [model_answer])
        model_similarity = round(float(_mean_vector(vecs) @ _mean_vector(reference)), 4)
    return AnswerMatch(
        concepts=tuple(out),
        units=tuple(pieces),
        vector=_mean_vector(vecs) if n else np.zeros(384, dtype=np.float32),
        model_similarity=model_similarity,
    )
