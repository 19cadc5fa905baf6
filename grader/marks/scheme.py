"""A marking scheme: what a mark needs, written in the rubric, and the mark it gives.

A scheme is a list of concepts, optional ``all``/``any`` groups and optional caps::

    concepts:
      - name: full batch is smoother
        points: 1
        any: [full batch is smoother, full-batch gives the smoother]   # literal phrases
        means: [The full-batch loss curve is the smoother one.]        # matched by meaning
        contradicts: [The mini-batch loss curve is the smoother one.]  # cancels the concept
      - {name: noisy mini-batch gradients, points: 1, means: [...]}
      - {name: mini-batch smoother, points: 0, means: [...]}           # a wrong claim
    groups:
      - {all: [exact gradient, whole dataset], points: 1}
    caps:
      - {max: 1, when: [mini-batch smoother]}        # a wrong direction: at most 1
      - {max: 2, unless: [full batch is smoother]}   # without it: at most 2

The mark is the sum of the points of the concepts found, plus the points of each group
whose condition holds, then every cap that applies, then at most the check's points.
Without any ``points`` and without groups, every concept is worth an equal share (the
former rule, so older rubrics mean what they meant).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pydantic import Field, model_validator

from grader.checks.base import StrictModel


class Concept(StrictModel):
    """An idea the answer should contain (or a wrong claim, with ``points: 0``)."""

    #: The idea, in words, as the report lists it and groups and caps name it.
    name: str = Field(min_length=1)
    #: What it earns when found; ``None`` when the scheme gives no points at all (then
    #: every concept earns an equal share of the check's points).
    points: float | None = Field(default=None, ge=0)
    #: Literal phrases: found when one occurs (case-insensitively, from a word start).
    any: list[str] = Field(default_factory=list)
    #: Statements of the idea matched by meaning, sentence by sentence, in any language
    #: the model knows; without them the concept is found only by its phrases.
    means: list[str] = Field(default_factory=list)
    #: Statements that cancel the concept when a sentence contains one, or (for a
    #: concept with ``means:``) resembles one more than the concept's own statements:
    #: e.g. the wrong direction of the same point.
    contradicts: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _findable(self) -> Concept:
        if not self.any and not self.means:
            raise ValueError(
                f"concept {self.name!r} can never be found: give it phrases (any:) or "
                "statements matched by meaning (means:)"
            )
        return self


class Group(StrictModel):
    """Points earned when all (``all:``) or at least one (``any:``) of its concepts are
    found; its concepts' own points (if any) are earned as well."""

    #: Concept names that must all be found.
    all: list[str] = Field(default_factory=list)
    #: Concept names of which at least one must be found.
    any: list[str] = Field(default_factory=list)
    #: What the group earns when its condition holds.
    points: float = Field(ge=0)

    @model_validator(mode="after")
    def _one_kind(self) -> Group:
        if bool(self.all) == bool(self.any):
            raise ValueError("a group lists its concepts under exactly one of all: or any:")
        return self

    def names(self) -> list[str]:
        """The concepts the group names."""
        return self.all or self.any

    def holds(self, found: Mapping[str, bool]) -> bool:
        """Whether the group's condition holds for the concepts found."""
        if self.all:
            return all(found.get(n, False) for n in self.all)
        return any(found.get(n, False) for n in self.any)


class Cap(StrictModel):
    """At most ``max`` points ``when`` any of these concepts is found, or ``unless`` all
    of these are found."""

    #: The most the answer can earn when the cap applies.
    max: float = Field(ge=0)
    #: Concept names: the cap applies when any of them is found (e.g. a wrong claim).
    when: list[str] = Field(default_factory=list)
    #: Concept names: the cap applies unless all of them are found.
    unless: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_kind(self) -> Cap:
        if bool(self.when) == bool(self.unless):
            raise ValueError("a cap names its concepts under exactly one of when: or unless:")
        return self

    def names(self) -> list[str]:
        """The concepts the cap names."""
        return self.when or self.unless

    def applies(self, found: Mapping[str, bool]) -> bool:
        """Whether the cap limits the mark for the concepts found."""
        if self.when:
            return any(found.get(n, False) for n in self.when)
        return not all(found.get(n, False) for n in self.unless)

    def describe(self) -> str:
        """``at most 1 (found: X)`` / ``at most 1 (without: Y)``, for messages."""
        if self.when:
            return f"at most {self.max:g} (says: {', '.join(self.when)})"
        return f"at most {self.max:g} (without: {', '.join(self.unless)})"


def check_names(concepts: list[Concept], groups: list[Group], caps: list[Cap]) -> None:
    """Raise ``ValueError`` naming any concept a group or cap names that the scheme
    does not define, and any concept defined twice."""
    names = [c.name for c in concepts]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"concepts defined twice: {', '.join(twice)}")
    for kind, items in (("group", groups), ("cap", caps)):
        for item in items:
            unknown = [n for n in item.names() if n not in names]
            if unknown:
                raise ValueError(
                    f"a {kind} names unknown concept(s) {', '.join(map(repr, unknown))}; "
                    f"the concepts are {', '.join(map(repr, names))}"
                )


def concept_points(concepts: list[Concept], groups: list[Group], top: float) -> dict[str, float]:
    """Each concept's points: its own, or an equal share of ``top`` when the scheme
    gives no points and no groups (the former rule)."""
    if not groups and all(c.points is None for c in concepts):
        share = top / len(concepts) if concepts else 0.0
        return {c.name: share for c in concepts}
    return {c.name: c.points or 0.0 for c in concepts}


def scheme_mark(
    concepts: list[Concept],
    groups: list[Group],
    caps: list[Cap],
    top: float,
    found: Mapping[str, bool],
) -> tuple[float, list[str]]:
    """The mark for the concepts found, and the caps that limited it (described).

    Without concepts the mark is ``top`` (nothing to look for).
    """
    if not concepts and not groups:
        return top, []
    points = concept_points(concepts, groups, top)
    mark = sum(points[n] for n, ok in found.items() if ok and n in points)
    mark += sum(g.points for g in groups if g.holds(found))
    limited: list[str] = []
    for cap in caps:
        if cap.applies(found) and mark > cap.max:
            mark = cap.max
            limited.append(cap.describe())
    return max(0.0, min(top, mark)), limited


def best_possible(concepts: Iterable[Concept], groups: list[Group], top: float) -> float:
    """The mark when every concept with points is found and no wrong claim is: what
    ``grade validate`` and rubric authors can check against the check's points."""
    concepts = list(concepts)
    points = concept_points(concepts, groups, top)
    found = {c.name: points[c.name] > 0 or c.points is None for c in concepts}
    return min(
        top,
        sum(points[n] for n, ok in found.items() if ok)
        + sum(g.points for g in groups if g.holds(found)),
    )
