"""Instructor overrides: ``DIR/overrides.yaml`` applied to the students' records.

The file is a YAML list of entries::

    - student: alice
      check: Q1a
      points: 2.5
      comment: Good intuition; the detection part is missing.

Each entry sets one check's score. Entries written by the review page (``grade review``,
``grade regrade``; :mod:`grader.review`) carry an audit trail too, all keys optional, so
files written by hand before stay valid::

    - student: alice
      check: Q1a
      points: 2.5
      comment: Good intuition; the detection part is missing.
      who: jdoe                    # the instructor (``grade review --as NAME``)
      when: '2026-12-04T23:10:00+00:00'   # ISO 8601, UTC
      previous: 2.0                # the points before this decision (the suggestion)
      why: marked                  # accepted suggestion | marked | regrade 3: <comment>
      history:                     # earlier decisions on this check, oldest first
      - {points: 2.0, comment: '', who: jdoe, when: '…', previous: 2.0, why: accepted suggestion}

:func:`save_override` writes one decision under a file lock (``overrides.yaml.lock``),
moving the entry it replaces into ``history``; a hand-written file is copied once to
``overrides.yaml.orig`` before its first rewrite, since the rewrite drops YAML comments.
The pseudo-check ``late`` sets the student's late
penalty instead (``points: 0`` waives it; the result's ``late`` section then says
``waived`` with the comment). The check's status becomes ``pass`` at full points,
else ``partial`` (some points) or ``fail`` (none) — a ``manual`` check is thereby
confirmed, and its message, which said the mark awaited review, says it is the
instructor's — and the check's ``override`` keeps the comment and the grader's own mark
for the report. Question scores and the total are recomputed as sums. The scores in
results files are never changed: overrides are applied whenever records are read for the
gradebook and the reports (the review writes only a result's ``review`` section, the
audit trail: :mod:`grader.review.audit`). Errors name the file, the line and the entry.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import fcntl
import math
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from grader import scoring
from grader.atomic import write_text_atomic
from grader.errors import GraderError
from grader.late import LATE_CHECK
from grader.lms import late_of, net_score
from grader.models import CheckOverride, CheckStatus, GradeRecord

#: The file, next to ``results/`` in an output folder.
OVERRIDES_FILE = "overrides.yaml"
#: The audit keys (all optional): who decided, when, the points before, and why.
AUDIT_KEYS = ("who", "when", "previous", "why", "history")
ALLOWED_KEYS = ("student", "check", "points", "comment", *AUDIT_KEYS)
REQUIRED_KEYS = ("student", "check", "points")
#: The keys of one ``history`` item (an earlier decision on the same check).
HISTORY_KEYS = ("points", "comment", "who", "when", "previous", "why")
#: The lock beside the file that every writer holds while it reads and rewrites it.
LOCK_SUFFIX = ".lock"
#: A hand-written file's copy, made before the review page first rewrites it.
ORIGINAL_SUFFIX = ".orig"


class OverridesError(GraderError, ValueError):
    """An overrides file that cannot be read, or an entry that does not apply."""


@dataclass(frozen=True)
class Decision:
    """An earlier decision on a check, kept in its entry's ``history``."""

    points: float
    """The mark it gave."""
    comment: str = ""
    """Its comment to the student."""
    who: str = ""
    """Who made it."""
    when: str = ""
    """When, ISO 8601 in UTC."""
    previous: float | None = None
    """The points before it."""
    why: str = ""
    """Why (``accepted suggestion``, ``marked``, ``regrade N: …``)."""

    def to_dict(self) -> dict[str, Any]:
        """The YAML mapping of this decision (the keys of :data:`HISTORY_KEYS`)."""
        return {
            "points": self.points,
            "comment": self.comment,
            "who": self.who,
            "when": self.when,
            "previous": self.previous,
            "why": self.why,
        }


@dataclass(frozen=True)
class Override:
    """One instructor mark for one student's check, with its audit trail when the
    review page wrote it (``who``, ``when``, ``previous``, ``why``, ``history``)."""

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
    who: str = ""
    """Who made this decision (``grade review --as NAME``); empty in hand-written entries."""
    when: str = ""
    """When, ISO 8601 in UTC; empty in hand-written entries."""
    previous: float | None = None
    """The points before this decision (the grader's suggestion or an earlier mark)."""
    why: str = ""
    """Why: ``accepted suggestion``, ``marked``, ``regrade N: …`` (the review writes it)."""
    history: tuple[Decision, ...] = ()
    """The earlier decisions on this check, oldest first."""

    def decision(self) -> Decision:
        """This entry's own decision (without the student, check and history)."""
        return Decision(self.points, self.comment, self.who, self.when, self.previous, self.why)

    def to_dict(self) -> dict[str, Any]:
        """The YAML mapping of this entry; audit keys only when set."""
        out: dict[str, Any] = {
            "student": self.student,
            "check": self.check,
            "points": self.points,
            "comment": self.comment,
        }
        for key in ("who", "when", "previous", "why"):
            value = getattr(self, key)
            if value not in ("", None):
                out[key] = value
        if self.history:
            out["history"] = [d.to_dict() for d in self.history]
        return out

    def where(self) -> str:
        """``overrides.yaml:12 (entry 3: student 'alice', check 'Q1a')``."""
        return (
            f"{self.source}:{self.line} (entry {self.index}: student {self.student!r}, "
            f"check {self.check!r})"
        )


def _scalar(node: yaml.Node, loader: Any) -> Any:
    return loader.construct_object(node, deep=True)


def load_overrides(path: Path) -> list[Override]:
    """Read and validate an overrides file; an empty file means no overrides.

    Raises :class:`OverridesError` naming the file, line and entry for: YAML syntax
    errors, a top level that is not a list, an entry that is not a mapping, unknown or
    missing keys, a student or check that is not a non-empty string, points that are not
    a finite number ≥ 0, a comment that is not a string, and duplicate (student, check)
    pairs.
    """
    before = _identity(path)
    cached = _CACHE.get(str(path))
    if before is not None and cached is not None and cached[0] == before:
        return list(cached[1])
    found = _parse(path)
    if before is not None and _identity(path) == before:  # unchanged while it was read
        _CACHE[str(path)] = (before, tuple(found))
    return found


#: Parsed files by path, with the identity (device, inode, mtime, size) they were read
#: at: the review page reads the file on every request, and a rewrite (atomic: a new
#: inode) or an edit changes the identity.
_CACHE: dict[str, tuple[tuple[int, int, int, int], tuple[Override, ...]]] = {}
#: libyaml's parser where PyYAML has it (the same nodes and marks, several times faster).
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_DUMPER: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def _identity(path: Path) -> tuple[int, int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)


def _parse(path: Path) -> list[Override]:
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise OverridesError(f"{name}: cannot read the overrides file: {exc}") from exc
    loader = _LOADER(text)
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
        if not _is_points(points):
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
        audit = _audit(entry, where)
        history = entry.get("history")
        if history is None:
            history = []
        if not isinstance(history, list):
            raise OverridesError(f"{where}: history must be a list of earlier decisions")
        earlier: list[Decision] = []
        for n, item in enumerate(history, start=1):
            at = f"{where}, history item {n}"
            if not isinstance(item, dict):
                raise OverridesError(f"{at}: must be a mapping with keys {', '.join(HISTORY_KEYS)}")
            unknown = [k for k in item if k not in HISTORY_KEYS]
            if unknown:
                raise OverridesError(
                    f"{at}: unknown key {unknown[0]!r}; allowed keys are {', '.join(HISTORY_KEYS)}"
                )
            old = item.get("points")
            if not _is_points(old):
                raise OverridesError(f"{at}: points must be a number ≥ 0, got {old!r}")
            text = item.get("comment") or ""
            if not isinstance(text, str):
                raise OverridesError(f"{at}: comment must be text, got {text!r}")
            assert old is not None  # checked by _is_points
            earlier.append(Decision(points=float(old), comment=text, **_audit(item, at)))
        out.append(
            Override(
                student=pair[0],
                check=pair[1],
                points=float(points),
                comment=comment.strip(),
                source=name,
                line=line,
                index=index,
                history=tuple(earlier),
                **audit,
            )
        )
    return out


def _is_points(value: Any) -> bool:
    return (
        not isinstance(value, bool)
        and isinstance(value, int | float)
        and math.isfinite(value)
        and value >= 0
    )


def _audit(entry: dict[str, Any], where: str) -> dict[str, Any]:
    """The audit fields ``who``, ``when``, ``previous`` and ``why`` of an entry or a
    history item, validated; absent ones empty."""
    out: dict[str, Any] = {}
    for key in ("who", "why"):
        value = entry.get(key)
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise OverridesError(f"{where}: {key} must be text, got {value!r}")
        out[key] = value.strip()
    when = entry.get("when")
    if isinstance(when, datetime.datetime | datetime.date):
        when = when.isoformat()  # an unquoted YAML timestamp
    if when is None:
        when = ""
    if not isinstance(when, str):
        raise OverridesError(f"{where}: when must be an ISO 8601 time, got {when!r}")
    out["when"] = when.strip()
    previous = entry.get("previous")
    if previous is not None and not _is_points(previous):
        raise OverridesError(f"{where}: previous must be a number ≥ 0 or empty, got {previous!r}")
    out["previous"] = None if previous is None else float(previous)
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
        original_status = check.status if previous is None else previous.original_status
        message = check.message
        if original_status == "manual":
            # the grader's "suggested …, awaiting instructor review" is no longer true
            message = f"marked by the instructor: {mark:g}/{top:g}"
        checks[ci] = dataclasses.replace(
            check,
            score=mark,
            message=message,
            status=_status(o.points, top),
            override=CheckOverride(
                points=mark,
                comment=o.comment,
                original_score=check.score if previous is None else previous.original_score,
                original_status=original_status,
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


# ------------------------------------------------------------------- writing


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold the exclusive lock of the file ``path`` (``path`` + ``.lock``, beside it)
    while reading and rewriting it: the review page, its background jobs and
    ``grade regrade`` may write at the same time."""
    lock = path.with_name(path.name + LOCK_SUFFIX)
    with lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def dump_overrides(overrides: Sequence[Override]) -> str:
    """The YAML text of an overrides file holding ``overrides`` in order."""
    header = (
        "# Instructor marks (grader/overrides.py): written by `grade review`; "
        "edit by hand if you like.\n"
    )
    body = yaml.dump(
        [o.to_dict() for o in overrides],
        Dumper=_DUMPER,
        sort_keys=False,
        allow_unicode=True,
        width=100,
    )
    return header + body


def now_iso() -> str:
    """The current time as the ``when`` of a decision (ISO 8601, UTC, seconds)."""
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def save_override(
    path: Path,
    *,
    student: str,
    check: str,
    points: float,
    comment: str = "",
    who: str = "",
    why: str = "",
    previous: float | None = None,
    when: str | None = None,
) -> Override:
    """Record one instructor decision in the overrides file ``path``, at once and under
    its lock, and return the entry as written.

    An entry for the same student and check is replaced, its decision moving to the new
    entry's ``history``; the others are kept in order. ``previous`` is the points before
    this decision (the suggestion, or the earlier mark); it defaults to the replaced
    entry's points. The file is rewritten atomically; a file that holds YAML comments and
    was not written here is first copied to ``overrides.yaml.orig``. Raises
    :class:`OverridesError` when the existing file is invalid or ``points`` is not a
    number ≥ 0.
    """
    if not _is_points(points):
        raise OverridesError(f"{path}: points must be a number ≥ 0, got {points!r}")
    with locked(path):
        existing = load_overrides(path) if path.is_file() else []
        if path.is_file():
            _keep_original(path)
        old = next((o for o in existing if (o.student, o.check) == (student, check)), None)
        history: tuple[Decision, ...] = ()
        if old is not None:
            history = (*old.history, old.decision())
            if previous is None:
                previous = old.points
        entry = Override(
            student=student,
            check=check,
            points=float(points),
            comment=comment.strip(),
            who=who,
            when=when or now_iso(),
            previous=previous,
            why=why,
            history=history,
        )
        kept = [o for o in existing if o is not old]
        position = existing.index(old) if old is not None else len(kept)
        kept.insert(position, entry)
        text = dump_overrides(kept)
        write_text_atomic(path, text)
        _remember(path, text, kept)
    return entry


def _remember(path: Path, text: str, entries: Sequence[Override]) -> None:
    """Cache what was just written, with each entry's line in the new text (every
    entry of a dumped file starts a line with ``- ``), so the next read parses nothing."""
    starts = [n for n, line in enumerate(text.splitlines(), start=1) if line.startswith("- ")]
    identity = _identity(path)
    if identity is None or len(starts) != len(entries):
        return
    _CACHE[str(path)] = (
        identity,
        tuple(
            dataclasses.replace(o, source=str(path), line=line, index=index)
            for index, (o, line) in enumerate(zip(entries, starts, strict=True), start=1)
        ),
    )


def _keep_original(path: Path) -> None:
    """Copy a hand-written file with comments once before the first rewrite."""
    original = path.with_name(path.name + ORIGINAL_SUFFIX)
    if original.exists():
        return
    text = path.read_text(encoding="utf-8")
    if text.startswith("# Instructor marks (grader/overrides.py)"):
        return  # written here: nothing of the instructor's to keep
    if any(line.lstrip().startswith("#") for line in text.splitlines()):
        shutil.copyfile(path, original)
