"""The audit trail: regrade requests, and each result's ``review`` section.

* ``OUT/regrades.yaml`` — the regrade requests, a YAML list written only here (under
  the same kind of lock as ``overrides.yaml``)::

      - id: 1
        student: alice
        check: Q1a
        reason: My answer names the loss curve in the second sentence.
        filed_by: jdoe
        filed_at: '2026-12-04T23:40:00+00:00'
        status: resolved          # open | resolved
        resolved_by: jdoe
        resolved_at: '2026-12-04T23:45:00+00:00'
        outcome: changed          # upheld (mark kept) | changed
        points_before: 1.5
        points_after: 2.5
        comment: Detection is there; +1.

  A resolution that changes the mark also writes the mark to ``overrides.yaml`` with
  ``why: "regrade 1: <comment>"``, so ``overrides.yaml`` stays the one record of marks.

* ``results/<student>.json``'s ``review`` section (result schema version 2, optional):
  every instructor decision on that student's checks, oldest first (from
  ``overrides.yaml``, its entries' ``history`` included), and the student's regrade
  requests. :func:`sync_review_sections` writes it; the checks' scores in ``results/``
  stay the grader's own (overrides are applied when records are read).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

import yaml

from grader.atomic import write_text_atomic
from grader.cache import GradeCache
from grader.errors import GraderError
from grader.models import GradeRecord
from grader.overrides import OVERRIDES_FILE, Override, load_overrides, locked, now_iso
from grader.results import RESULTS_DIR, read_result, write_result

REGRADES_FILE = "regrades.yaml"
RegradeStatus = Literal["open", "resolved"]
_KEYS = (
    "id",
    "student",
    "check",
    "reason",
    "filed_by",
    "filed_at",
    "status",
    "resolved_by",
    "resolved_at",
    "outcome",
    "points_before",
    "points_after",
    "comment",
)


class RegradeError(GraderError, ValueError):
    """A regrade file that cannot be read, or a request that cannot be filed or resolved."""


@dataclass(frozen=True)
class Regrade:
    """One regrade request and, once resolved, its logged outcome."""

    id: int
    student: str
    check: str
    reason: str
    filed_by: str = ""
    filed_at: str = ""
    status: RegradeStatus = "open"
    resolved_by: str = ""
    resolved_at: str = ""
    outcome: str = ""  # "upheld" (mark kept) or "changed"
    points_before: float | None = None
    points_after: float | None = None
    comment: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The mapping written to ``regrades.yaml`` and to the result's review section."""
        return asdict(self)


def load_regrades(path: Path) -> list[Regrade]:
    """The regrade requests of ``path`` (none when it does not exist). Raises
    :class:`RegradeError` naming the file and the entry for anything else."""
    if not path.is_file():
        return []
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise RegradeError(f"{path}: cannot be read: {exc}") from exc
    if data is None:
        return []
    if not isinstance(data, list):
        raise RegradeError(f"{path}: expected a list of regrade requests")
    out = []
    for n, entry in enumerate(data, start=1):
        if not isinstance(entry, dict) or set(entry) - set(_KEYS):
            raise RegradeError(
                f"{path}: entry {n} must be a mapping with keys among {', '.join(_KEYS)}"
            )
        try:
            fields: dict[str, Any] = {
                k: ("" if v is None and k not in _NULLABLE else v) for k, v in entry.items()
            }
            regrade = Regrade(**fields)
        except TypeError as exc:
            raise RegradeError(f"{path}: entry {n}: {exc}") from exc
        if regrade.status not in ("open", "resolved") or not isinstance(regrade.id, int):
            raise RegradeError(f"{path}: entry {n}: needs an integer id and status open|resolved")
        out.append(regrade)
    return out


_NULLABLE = ("points_before", "points_after")


def _write_regrades(path: Path, regrades: Sequence[Regrade]) -> None:
    header = "# Regrade requests (grader/review/audit.py): written by `grade review`/`regrade`.\n"
    body = yaml.safe_dump(
        [r.to_dict() for r in regrades], sort_keys=False, allow_unicode=True, width=100
    )
    write_text_atomic(path, header + body)


def find_check(records: Sequence[GradeRecord], student: str, check: str) -> float:
    """The current points of ``student``'s ``check`` in ``records`` (overrides
    applied); :class:`RegradeError` naming what exists when there is no such check."""
    record = next((r for r in records if r.student == student), None)
    if record is None:
        raise RegradeError(f"no results for student {student!r}")
    for q in record.questions:
        for c in q.checks:
            if c.id == check:
                return float(c.score)
    known = ", ".join(c.id for q in record.questions for c in q.checks)
    raise RegradeError(f"{student} has no check {check!r} (checks: {known})")


def file_regrade(
    out_dir: Path, records: Sequence[GradeRecord], student: str, check: str, reason: str, who: str
) -> Regrade:
    """Record a regrade request for ``student``'s ``check`` (it must exist in
    ``records``) with the student's ``reason``; returns it (status ``open``)."""
    if not reason.strip():
        raise RegradeError("a regrade request needs a reason (--reason TEXT)")
    points = find_check(records, student, check)
    path = out_dir / REGRADES_FILE
    with locked(path):
        regrades = load_regrades(path)
        new = Regrade(
            id=max((r.id for r in regrades), default=0) + 1,
            student=student,
            check=check,
            reason=reason.strip(),
            filed_by=who,
            filed_at=now_iso(),
            points_before=points,
        )
        _write_regrades(path, [*regrades, new])
    return new


def resolve_regrade(
    out_dir: Path,
    records: Sequence[GradeRecord],
    regrade_id: int,
    who: str,
    *,
    points: float | None,
    comment: str,
) -> Regrade:
    """Resolve an open request: ``points`` None (or the current mark) upholds the mark,
    other points change it (written to ``overrides.yaml`` with ``why: regrade N: …``).
    The outcome, who and when are logged in ``regrades.yaml``; returns the request."""
    from grader.overrides import save_override

    path = out_dir / REGRADES_FILE
    with locked(path):
        regrades = load_regrades(path)
        found = next((r for r in regrades if r.id == regrade_id), None)
        if found is None:
            raise RegradeError(f"{path}: no regrade request {regrade_id}")
        if found.status != "open":
            raise RegradeError(f"{path}: regrade request {regrade_id} is already resolved")
        current = find_check(records, found.student, found.check)
        changed = points is not None and abs(points - current) > 1e-9
        if changed:
            assert points is not None
            save_override(
                out_dir / OVERRIDES_FILE,
                student=found.student,
                check=found.check,
                points=points,
                comment=comment,
                who=who,
                why=f"regrade {regrade_id}: {comment}".strip().rstrip(":"),
                previous=current,
            )
        done = replace(
            found,
            status="resolved",
            resolved_by=who,
            resolved_at=now_iso(),
            outcome="changed" if changed else "upheld",
            points_before=current,
            points_after=points if changed else current,
            comment=comment.strip(),
        )
        _write_regrades(path, [done if r is found else r for r in regrades])
    return done


# ------------------------------------------------------------------- review sections


def review_section(
    student: str, overrides: Iterable[Override], regrades: Iterable[Regrade]
) -> dict[str, Any] | None:
    """The ``review`` section of ``student``'s result: ``marks`` (every decision on
    each check, oldest first: check, points, previous, comment, who, when, why) and
    ``regrades`` (the requests as in ``regrades.yaml``); None when there is neither."""
    marks: list[dict[str, Any]] = []
    for o in overrides:
        if o.student != student:
            continue
        for d in (*o.history, o.decision()):
            marks.append({"check": o.check, **d.to_dict()})
    mine = [r.to_dict() for r in regrades if r.student == student]
    if not marks and not mine:
        return None
    marks.sort(key=lambda m: str(m["when"]))  # stable: undated hand-written entries first
    return {"marks": marks, "regrades": mine}


def sync_review_sections(out_dir: Path, students: Iterable[str] | None = None) -> list[str]:
    """Write each result's ``review`` section from ``overrides.yaml`` and
    ``regrades.yaml`` where it differs from the file (only ``students`` when given);
    returns the students whose file changed.

    The result stays valid in the batch's cache (its index is updated to the new file),
    so the next ``grade`` run keeps it instead of re-scoring it.
    """
    path = out_dir / OVERRIDES_FILE
    overrides = load_overrides(path) if path.is_file() else []
    regrades = load_regrades(out_dir / REGRADES_FILE)
    results_dir = out_dir / RESULTS_DIR
    wanted = None if students is None else set(students)
    cache = GradeCache(out_dir)
    changed = []
    for file in sorted(results_dir.glob("*.json")):
        if wanted is not None and file.stem not in wanted:
            continue
        record = read_result(file)
        section = review_section(record.student, overrides, regrades)
        if _plain(record.review) == _plain(section):
            continue
        written = write_result(results_dir, replace(record, review=section))
        _remark(cache, record.student, written)
        changed.append(record.student)
    return changed


def _plain(value: Mapping[str, Any] | None) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _remark(cache: GradeCache, student: str, path: Path) -> None:
    """Keep a cached result valid after its review section changed."""
    index = cache.results / f"{student}.json"
    with contextlib.suppress(OSError, ValueError, AttributeError):
        entry = json.loads(index.read_text(encoding="utf-8"))
        key = entry.get("key")
        if isinstance(key, str):
            cache.mark_result(student, key, path)
