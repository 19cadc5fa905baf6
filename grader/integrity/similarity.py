"""Similarity across a batch: fingerprint every submission, index the fingerprints, and
score only the pairs the index says share enough of them.

Writes, in the output folder:

- ``similarity-index.json``: every student's fingerprints and compared sources (what
  ``--compare-with`` reads from an earlier batch, and ``grade report`` from this one);
- ``similarity.csv``: one row per pair at or above the rubric's ``floor``, columns
  ``student_a,student_b,similarity,flagged,evidence``;
- ``similarity.json``: the same pairs with the matching excerpts side by side, which the
  summary and the dashboard show (:func:`similarity_section`).

Never changes a score. A pair's similarity is the share of both students' own (not
given) code, or written answer, that the other also has: (covered_a + covered_b) /
(total_a + total_b), measured in normalised characters of code or tokens of text
(Dolos' measure); the pair's value is the larger of its code and its text value.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from grader.atomic import write_atomic, write_json_atomic
from grader.errors import GraderError
from grader.integrity.fingerprint import (
    CODE_K,
    CODE_WINDOW,
    TEXT_K,
    Fingerprints,
    code_fingerprints,
    text_fingerprints,
)
from grader.integrity.settings import SimilaritySettings
from grader.integrity.sources import Unit, UnitKind

INDEX_FILE = "similarity-index.json"
CSV_FILE = "similarity.csv"
DETAILS_FILE = "similarity.json"
INDEX_VERSION = 1
COLUMNS = ("student_a", "student_b", "similarity", "flagged", "evidence")
#: Unit pairs named in a row's evidence, and shown as excerpts for a flagged pair.
EVIDENCE_UNITS = 3
EXCERPT_LINES = 14
_K: dict[str, int] = {"code": CODE_K, "text": TEXT_K}
#: Below this much own (not given) code or text, in normalised characters or tokens, a
#: student's code or text is too little to call anything copied (two one-liners alike).
MIN_OWN: dict[str, int] = {"code": 3 * CODE_K, "text": 4 * TEXT_K}
#: The majority rule (code most of the batch shares is given) needs a batch where a
#: copied pair is not already "more than half".
MAJORITY_MIN_STUDENTS = 4


@dataclass(frozen=True)
class PrintedUnit:
    """A unit with its fingerprints."""

    kind: UnitKind
    name: str
    text: str
    prints: Fingerprints


def fingerprint_units(units: Iterable[Unit]) -> list[PrintedUnit]:
    """Fingerprint each unit by its kind."""
    out = []
    for unit in units:
        prints = (
            code_fingerprints(unit.text) if unit.kind == "code" else text_fingerprints(unit.text)
        )
        out.append(PrintedUnit(unit.kind, unit.name, unit.text, prints))
    return out


# ------------------------------------------------------------------------- the index


def index_dict(
    batch: str,
    students: Mapping[str, Sequence[PrintedUnit]],
    given: Iterable[int],
    settings: SimilaritySettings,
) -> dict[str, Any]:
    """The fingerprint index as written to ``similarity-index.json``."""
    return {
        "version": INDEX_VERSION,
        "batch": batch,
        "k": {"code": CODE_K, "code_window": CODE_WINDOW, "text": TEXT_K, "normaliser": 1},
        "settings": {
            "threshold": settings.threshold,
            "floor": settings.floor,
            "starter": list(settings.starter),
        },
        "given": sorted({int(h) for h in given}),
        "students": {
            student: [
                {
                    "kind": u.kind,
                    "name": u.name,
                    "text": u.text,
                    "length": u.prints.length,
                    "prints": [
                        [h, p, line]
                        for h, p, line in zip(
                            u.prints.hashes, u.prints.positions, u.prints.lines, strict=True
                        )
                    ],
                }
                for u in units
            ]
            for student, units in sorted(students.items())
        },
    }


def read_index(path: Path) -> dict[str, Any]:
    """An index written by :func:`index_dict`; a clear error when it is not one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise GraderError(f"{path}: cannot read the similarity index ({exc})") from None
    if not isinstance(data, dict) or data.get("version") != INDEX_VERSION:
        raise GraderError(
            f"{path}: not a similarity index of version {INDEX_VERSION} (re-run `grade` on "
            "that batch with this grader to write one)"
        )
    k = data.get("k", {})
    if (k.get("code"), k.get("code_window"), k.get("text"), k.get("normaliser")) != (
        CODE_K,
        CODE_WINDOW,
        TEXT_K,
        1,
    ):
        raise GraderError(
            f"{path}: fingerprinted with other k-gram sizes ({k}); re-run `grade` on that batch "
            "with this grader"
        )
    return data


def units_from_index(entries: Sequence[Mapping[str, Any]]) -> list[PrintedUnit]:
    """A student's units as the index holds them."""
    out = []
    for e in entries:
        rows = e.get("prints", [])
        prints = Fingerprints(
            tuple(int(r[0]) for r in rows),
            tuple(int(r[1]) for r in rows),
            tuple(int(r[2]) for r in rows),
            int(e.get("length", 0)),
        )
        out.append(PrintedUnit(e["kind"], str(e["name"]), str(e.get("text", "")), prints))
    return out


# ------------------------------------------------------------------------- comparison


@dataclass
class _Student:
    """One student's fingerprints as arrays, per kind, with the given ones removed."""

    id: str
    units: list[PrintedUnit]
    hashes: dict[str, np.ndarray]  # per kind, each occurrence
    positions: dict[str, np.ndarray]
    unit_of: dict[str, np.ndarray]  # index into ``units``
    lines: dict[str, np.ndarray]
    unique: dict[str, np.ndarray]  # sorted distinct hashes per kind
    total: dict[str, int]  # own normalised length covered by its fingerprints


def _covered(positions: np.ndarray, units: np.ndarray, k: int) -> int:
    """Length of the union of ``[p, p + k)`` windows, per unit, summed."""
    if len(positions) == 0:
        return 0
    order = np.lexsort((positions, units))
    p, u = positions[order], units[order]
    gaps = np.diff(p)
    same = np.diff(u) == 0
    # a window covers k, less its overlap with the next one in the same unit
    length = np.where(same, np.minimum(gaps, k), k).sum() + k
    return int(length)


def _student(sid: str, units: list[PrintedUnit], given: set[int]) -> _Student:
    hashes: dict[str, np.ndarray] = {}
    positions: dict[str, np.ndarray] = {}
    unit_of: dict[str, np.ndarray] = {}
    lines: dict[str, np.ndarray] = {}
    unique: dict[str, np.ndarray] = {}
    total: dict[str, int] = {}
    for kind in ("code", "text"):
        h: list[int] = []
        p: list[int] = []
        u: list[int] = []
        ln: list[int] = []
        for i, unit in enumerate(units):
            if unit.kind != kind:
                continue
            for hv, pv, lv in zip(
                unit.prints.hashes, unit.prints.positions, unit.prints.lines, strict=True
            ):
                if hv not in given:
                    h.append(hv)
                    p.append(pv)
                    u.append(i)
                    ln.append(lv)
        hashes[kind] = np.array(h, dtype=np.int64)
        positions[kind] = np.array(p, dtype=np.int64)
        unit_of[kind] = np.array(u, dtype=np.int64)
        lines[kind] = np.array(ln, dtype=np.int64)
        unique[kind] = np.unique(hashes[kind])
        total[kind] = _covered(positions[kind], unit_of[kind], _K[kind])
    return _Student(sid, units, hashes, positions, unit_of, lines, unique, total)


@dataclass(frozen=True)
class UnitMatch:
    """Two units that share fingerprints, with the lines of each that match."""

    kind: str
    unit_a: str
    unit_b: str
    shared: int
    excerpt_a: str
    excerpt_b: str


@dataclass(frozen=True)
class Pair:
    """A scored pair of students."""

    a: str
    b: str
    similarity: float
    code: float
    text: float
    flagged: bool
    matches: tuple[UnitMatch, ...]

    def evidence(self) -> str:
        """The CSV's evidence: the matching units and how much of each kind matched."""
        parts = []
        for kind, value in (("code", self.code), ("text", self.text)):
            named = [
                f"{m.unit_a} ↔ {m.unit_b} ({m.shared} shared)"
                for m in self.matches
                if m.kind == kind
            ]
            if named:
                parts.append(f"{kind} {value:.2f}: " + "; ".join(named))
        return " | ".join(parts)


def _excerpt(unit: PrintedUnit, lines: np.ndarray) -> str:
    """The source lines of ``unit`` spanning its matching fingerprints (the k-gram of
    the last one may run onto the next line)."""
    source = unit.text.splitlines()
    if not source or len(lines) == 0:
        return ""
    first = max(1, int(lines.min()))
    last = min(len(source), int(lines.max()) + 1)
    shown = source[first - 1 : last]
    if len(shown) > EXCERPT_LINES:
        shown = [*shown[:EXCERPT_LINES], "…"]
    return "\n".join(shown)


def _kind_similarity(a: _Student, b: _Student, kind: str) -> tuple[float, np.ndarray]:
    if min(a.total[kind], b.total[kind]) < MIN_OWN[kind]:
        return 0.0, np.array([], dtype=np.int64)
    shared = np.intersect1d(a.unique[kind], b.unique[kind], assume_unique=True)
    if len(shared) == 0:
        return 0.0, shared
    k = _K[kind]
    in_a = np.isin(a.hashes[kind], shared)
    in_b = np.isin(b.hashes[kind], shared)
    covered = _covered(a.positions[kind][in_a], a.unit_of[kind][in_a], k) + _covered(
        b.positions[kind][in_b], b.unit_of[kind][in_b], k
    )
    return covered / (a.total[kind] + b.total[kind]), shared


def _matches(a: _Student, b: _Student, kind: str, shared: np.ndarray) -> list[UnitMatch]:
    """The unit pairs sharing the most fingerprints, with their matching lines."""
    if len(shared) == 0:
        return []
    first_a: dict[int, int] = {}
    for h, u in zip(a.hashes[kind].tolist(), a.unit_of[kind].tolist(), strict=True):
        first_a.setdefault(h, u)
    first_b: dict[int, int] = {}
    for h, u in zip(b.hashes[kind].tolist(), b.unit_of[kind].tolist(), strict=True):
        first_b.setdefault(h, u)
    counts: Counter[tuple[int, int]] = Counter((first_a[h], first_b[h]) for h in shared.tolist())
    out = []
    for (ua, ub), n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:EVIDENCE_UNITS]:
        hashes_ab = [h for h in shared.tolist() if first_a[h] == ua and first_b[h] == ub]
        sel_a = np.isin(a.hashes[kind], hashes_ab) & (a.unit_of[kind] == ua)
        sel_b = np.isin(b.hashes[kind], hashes_ab) & (b.unit_of[kind] == ub)
        out.append(
            UnitMatch(
                kind,
                a.units[ua].name,
                b.units[ub].name,
                n,
                _excerpt(a.units[ua], a.lines[kind][sel_a]),
                _excerpt(b.units[ub], b.lines[kind][sel_b]),
            )
        )
    return out


def majority_given(students: Mapping[str, Sequence[PrintedUnit]]) -> set[int]:
    """Fingerprints more than half of the batch has: the assignment's given code and
    text when no starter is named (none for a batch under MAJORITY_MIN_STUDENTS)."""
    n = len(students)
    if n < MAJORITY_MIN_STUDENTS:
        return set()
    df: Counter[int] = Counter()
    for units in students.values():
        df.update({h for u in units for h in u.prints.hashes})
    return {h for h, count in df.items() if count > n / 2}


def candidate_pairs(
    people: Sequence[_Student], floor: float, new: int | None = None
) -> list[tuple[int, int]]:
    """Pairs (i < j) sharing enough fingerprints to reach ``floor``, from the inverted
    index fingerprint → students (a sparse product), never comparing every pair in full.
    With ``new``, only pairs with one of the first ``new`` people (this batch's; the rest
    are earlier batches', never paired with each other).

    A pair's coverage grows with its share of the smaller student's fingerprints, so a
    pair sharing fewer than half of ``floor`` of them is not scored (a heuristic bound:
    winnowing picks about one fingerprint per window everywhere).
    """
    from scipy import sparse

    column: dict[int, int] = {}
    rows: list[int] = []
    cols: list[int] = []
    sizes = []
    for i, person in enumerate(people):
        mine = np.concatenate([person.unique["code"], person.unique["text"] + 1])
        # +1 on text: the kinds are salted apart already; this only keeps them distinct
        # if a salted code and text hash ever collide
        for h in mine.tolist():
            rows.append(i)
            cols.append(column.setdefault(h, len(column)))
        sizes.append(len(mine))
    if not column:
        return []
    m = sparse.csr_matrix(
        (np.ones(len(rows), dtype=np.int32), (rows, cols)), shape=(len(people), len(column))
    )
    shared = sparse.triu(m @ m.T, k=1).tocoo()
    sizes_arr = np.array(sizes)
    need = np.maximum(1, floor / 2 * np.minimum(sizes_arr[shared.row], sizes_arr[shared.col]))
    keep = shared.data >= need
    if new is not None:
        keep &= shared.row < new  # row < col: the pair has one of this batch's
    return [(int(i), int(j)) for i, j in zip(shared.row[keep], shared.col[keep], strict=True)]


def compare(
    students: Mapping[str, Sequence[PrintedUnit]],
    given: set[int],
    settings: SimilaritySettings,
    earlier: Mapping[str, Sequence[PrintedUnit]] | None = None,
) -> list[Pair]:
    """Every pair at or above ``settings.floor``, most similar first. ``earlier``
    students (``<batch>/<id>``) are paired with this batch's, not with each other."""
    people = [_student(s, list(u), given) for s, u in sorted(students.items())]
    old = [_student(s, list(u), given) for s, u in sorted((earlier or {}).items())]
    everyone = people + old
    pairs = []
    for i, j in candidate_pairs(everyone, settings.floor, len(people)):
        a, b = everyone[i], everyone[j]
        code, code_shared = _kind_similarity(a, b, "code")
        text, text_shared = _kind_similarity(a, b, "text")
        value = max(code, text)
        if value < settings.floor or value == 0:
            continue
        matches = [*_matches(a, b, "code", code_shared), *_matches(a, b, "text", text_shared)]
        pairs.append(
            Pair(
                a.id,
                b.id,
                round(value, 3),
                round(code, 3),
                round(text, 3),
                value >= settings.threshold,
                tuple(matches),
            )
        )
    pairs.sort(key=lambda p: (-p.similarity, p.a, p.b))
    return pairs


# ------------------------------------------------------------------------- outputs


def write_outputs(out_dir: Path, pairs: Sequence[Pair], meta: Mapping[str, Any]) -> None:
    """``similarity.csv`` (every reported pair) and ``similarity.json`` (the same with
    excerpts, and ``meta``: threshold, floor, students, earlier batches)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for p in pairs:
        writer.writerow(
            [p.a, p.b, f"{p.similarity:.3f}", "true" if p.flagged else "false", p.evidence()]
        )
    write_atomic(out_dir / CSV_FILE, buffer.getvalue().encode("utf-8"))
    write_json_atomic(
        out_dir / DETAILS_FILE,
        {
            **meta,
            "pairs": [
                {
                    "student_a": p.a,
                    "student_b": p.b,
                    "similarity": p.similarity,
                    "code": p.code,
                    "text": p.text,
                    "flagged": p.flagged,
                    "evidence": p.evidence(),
                    "matches": [m.__dict__ for m in p.matches],
                }
                for p in pairs
            ],
        },
    )


def similarity_section(out_dir: Path) -> dict[str, Any] | None:
    """The batch's similarity as plain data for the summary and the dashboard; None when
    the folder has none (written before this grader, or never compared).

    Keys: ``threshold``, ``floor``, ``students`` (how many were compared),
    ``compared_with`` (earlier batches' names), ``given`` (where the given code came from),
    ``n_pairs`` (pairs at or above the floor), ``flagged`` (the flagged pairs, each with
    ``student_a``, ``student_b``, ``similarity``, ``code``, ``text``, ``evidence`` and
    ``matches``: ``kind``, ``unit_a``, ``unit_b``, ``shared``, ``excerpt_a``,
    ``excerpt_b``), and ``reported`` (the other pairs above the floor, without matches).
    """
    path = out_dir / DETAILS_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    pairs = data.get("pairs", [])
    return {
        "threshold": data.get("threshold"),
        "floor": data.get("floor"),
        "students": data.get("students", 0),
        "compared_with": data.get("compared_with", []),
        "given": data.get("given", ""),
        "n_pairs": len(pairs),
        "flagged": [p for p in pairs if p.get("flagged")],
        "reported": [
            {k: v for k, v in p.items() if k != "matches"} for p in pairs if not p.get("flagged")
        ],
    }


def write_index(out_dir: Path, index: Mapping[str, Any]) -> None:
    """Write ``similarity-index.json``."""
    write_json_atomic(out_dir / INDEX_FILE, dict(index), indent=None)
