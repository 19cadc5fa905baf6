"""Instructor overrides: ``DIR/overrides.yaml`` applied to the students' records.

The file is a YAML list of entries::

    - student: alice
      check: Q1a
      points: 2.5
      comment: Good intuition; the detection part is missing.

Each entry sets one check's score. The pseudo-check ``late`` sets the student's late
penalty instead (``points: 0`` waives it; the result's ``late`` section then says
``waived`` with the comment). The check's status becomes ``pass`` at full points,
else ``partial`` (some points) or ``fail`` (none) — a ``manual`` check is thereby
confirmed — and the check's ``override`` keeps the comment and the grader's own mark for
the report. Question scores and the total are recomputed as sums. Results files are
never changed: overrides are applied whenever records are read for the gradebook and
the reports. Errors name the file, the line and the entry.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from grader import scoring
from grader.errors import GraderError
from grader.late import LATE_CHECK
from grader.lms import late_of, net_score
from grader.models import CheckOverride, CheckStatus, GradeRecord

#: The file, next to ``results/`` in an output folder.
OVERRIDES_FILE = "overrides.yaml"
ALLOWED_KEYS = ("student", "check", "points", "comment")
REQUIRED_KEYS = ("student", "check", "points")


class OverridesError(GraderError, ValueError):
    """An overrides file that cannot be read, or an entry that does not apply."""


@dataclass(frozen=True)
class Override:
    """One instructor mark for one student's check."""

    student: str
    """The student's id, as in results/<student>.json (the LMS id for an LMS download)."""
    check: str
    """The check's id in the rubric, or late for the late penalty."""
    points: float
    """The check's new score (a number ≥ 0, at most the check's maximum), or the late penalty
    in points (0 waives it; at most what the policy gave)."""
    comment: str = ""
    """Why, shown to the student in the report beside the grader's own mark."""
    source: str = ""
    """The file the entry came from (set by the grader, not a key of the file)."""
    line: int = 0
    """The entry's 1-based line in that file (set by the grader)."""
    index: int = 0
    """The entry's 1-based position in the list (set by the grader)."""

    def where(self) -> str:
        """``overrides.yaml:12 (entry 3: student 'alice', check 'Q1a')``."""
        return (
            f"{self.source}:{self.line} (entry {self.index}: student {self.student!r}, "
            f"check {self.check!r})"
        )


def _scalar(node: yaml.Node, loader: yaml.SafeLoader) -> Any:
    return loader.construct_object(node, deep=True)


def load_overrides(path: Path) -> list[Override]:
    """Read and validate an overrides file; an empty file means no overrides.

    Raises :class:`OverridesError` naming the file, line and entry for: YAML syntax
    errors, a top level that is not a list, an entry that is not a mapping, unknown or
    missing keys, a student or check that is not a non-empty string, points that are not
    a finite number ≥ 0, a comment that is not a string, and duplicate (student, check)
    pairs.
    """
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise OverridesError(f"{name}: cannot read the overrides file: {exc}") from exc
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
    except yaml.YAMLError as exc:
        raise OverridesError(f"{name}: invalid YAML: {exc}") from exc
    finally:
        loader.dispose()
    if root is None:
        return []
    if not isinstance(root, yaml.SequenceNode):
        raise OverridesError(
            f"{name}:{root.start_mark.line + 1}: expected a list of entries "
            "(- student: …, check: …, points: …, comment: …)"
        )
    out: list[Override] = []
    seen: dict[tuple[str, str], int] = {}
    for index, node in enumerate(root.value, start=1):
        line = node.start_mark.line + 1
        where = f"{name}:{line} (entry {index})"
        if not isinstance(node, yaml.MappingNode):
            raise OverridesError(
                f"{where}: an entry must be a mapping with keys {', '.join(ALLOWED_KEYS)}"
            )
        entry: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node, loader)
            if key not in ALLOWED_KEYS:
                raise OverridesError(
                    f"{name}:{key_node.start_mark.line + 1} (entry {index}): unknown key {key!r}; "
                    f"allowed keys are {', '.join(ALLOWED_KEYS)}"
                )
            if key in entry:
                raise OverridesError(
                    f"{name}:{key_node.start_mark.line + 1} (entry {index}): duplicate key {key!r}"
                )
            entry[key] = _scalar(value_node, loader)
        missing = [k for k in REQUIRED_KEYS if k not in entry]
        if missing:
            raise OverridesError(
                f"{where}: missing key{'s' if len(missing) > 1 else ''} {', '.join(missing)}"
            )
        student, check, points = entry["student"], entry["check"], entry["points"]
        if isinstance(student, int) and not isinstance(student, bool):
            student = str(student)  # numeric student ids written without quotes
        for key, value in (("student", student), ("check", check)):
            if not isinstance(value, str) or not value.strip():
                raise OverridesError(f"{where}: {key} must be a non-empty string, got {value!r}")
        if (
            isinstance(points, bool)
            or not isinstance(points, int | float)
            or not math.isfinite(points)
            or points < 0
        ):
            raise OverridesError(f"{where}: points must be a number ≥ 0, got {points!r}")
        comment = entry.get("comment", "")
        if comment is None:
            comment = ""
        if not isinstance(comment, str):
            raise OverridesError(f"{where}: comment must be text, got {comment!r}")
        pair = (student.strip(), check.strip())
        if pair in seen:
            raise OverridesError(
                f"{where}: student {pair[0]!r}, check {pair[1]!r} is already overridden "
                f"by entry {seen[pair]}"
            )
        seen[pair] = index
        out.append(
            Override(
                student=pair[0],
                check=pair[1],
                points=float(points),
                comment=comment.strip(),
                source=name,
                line=line,
                index=index,
            )
        )
    return out


def check_override_targets(records: Sequence[GradeRecord], overrides: Sequence[Override]) -> None:
    """Raise :class:`OverridesError` for entries naming a student without results."""
    students = {r.student for r in records}
    for o in overrides:
        if o.student not in students:
            known = ", ".join(sorted(students)[:10]) + (" …" if len(students) > 10 else "")
            raise OverridesError(
                f"{o.where()}: no results for student {o.student!r} (students: {known or 'none'})"
            )


def _status(points: float, top: float) -> CheckStatus:
    if top > 0 and points >= top - 1e-9:
        return "pass"
    return "partial" if points > 0 else "fail"


def apply_overrides(record: GradeRecord, overrides: Sequence[Override]) -> GradeRecord:
    """A new record with this student's overrides applied; ``record`` is not modified.

    For each entry of this student: the named check's ``score`` becomes the entry's
    points and its status pass/partial/fail, and its ``override`` keeps the comment and
    the original score and status (the grader's, even when applied twice). Question
    scores become the sum of their checks and the total the sum of the questions
    (:mod:`grader.scoring`). Raises :class:`OverridesError` for an unknown check, a
    check id that is ambiguous within the record, or points above the check's maximum.
    """
    mine = [o for o in overrides if o.student == record.student]
    if not mine:
        return record
    questions = list(record.questions)
    for o in [o for o in mine if o.check == LATE_CHECK]:
        record = _replace_penalty(record, o)
    for o in [o for o in mine if o.check != LATE_CHECK]:
        matches = [
            (qi, ci)
            for qi, q in enumerate(questions)
            for ci, c in enumerate(q.checks)
            if c.id == o.check
        ]
        if not matches:
            known = ", ".join(c.id for q in questions for c in q.checks)
            raise OverridesError(
                f"{o.where()}: {record.student} has no check {o.check!r} (checks: {known})"
            )
        if len(matches) > 1:
            raise OverridesError(
                f"{o.where()}: check id {o.check!r} appears more than once in the results"
            )
        qi, ci = matches[0]
        question = questions[qi]
        check = question.checks[ci]
        top = float(check.max_score)
        if o.points > top + 1e-9:
            raise OverridesError(
                f"{o.where()}: points {o.points:g} exceed the check's maximum {top:g}"
            )
        previous = check.override
        mark = scoring.points(o.points)
        checks = list(question.checks)
        checks[ci] = dataclasses.replace(
            check,
            score=mark,
            status=_status(o.points, top),
            override=CheckOverride(
                points=mark,
                comment=o.comment,
                original_score=check.score if previous is None else previous.original_score,
                original_status=check.status if previous is None else previous.original_status,
            ),
        )
        questions[qi] = dataclasses.replace(
            question, checks=tuple(checks), score=scoring.points(sum(c.score for c in checks))
        )
    raw, _ = scoring.total(questions)
    # the late penalty stays a separate line: the total is the checks' sum less it
    return dataclasses.replace(record, questions=tuple(questions), score=net_score(raw, record))


def _replace_penalty(record: GradeRecord, o: Override) -> GradeRecord:
    """``record`` with its late penalty replaced by the entry's points (0 waives it)."""
    late = late_of(record)
    if late is None:
        raise OverridesError(
            f"{o.where()}: {record.student} has no late penalty to replace (no `late` section)"
        )
    if o.points > late.penalty + 1e-9 and not late.waived:
        raise OverridesError(
            f"{o.where()}: points {o.points:g} exceed the late penalty {late.penalty:g}; "
            "give the penalty to keep (0 waives it)"
        )
    waived = dataclasses.replace(
        late, penalty=scoring.points(o.points), waived=True, comment=o.comment
    )
    return dataclasses.replace(record, late=waived.to_section())


def with_overrides(records: Sequence[GradeRecord], path: Path) -> list[GradeRecord]:
    """``records`` with the overrides file ``path`` applied, or as they are when there is
    no such file. Raises :class:`OverridesError` for an invalid file or an entry that
    names an unknown student or check or gives too many points."""
    if not path.is_file():
        return list(records)
    overrides = load_overrides(path)
    check_override_targets(records, overrides)
    return [apply_overrides(r, overrides) for r in records]
