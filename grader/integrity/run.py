"""The integrity stage of a batch: similarity after grading (``grade``), or again from
the fingerprint index on disk (``grade report``). Never changes a score."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from grader.errors import GraderError
from grader.integrity.settings import SimilaritySettings
from grader.integrity.similarity import (
    INDEX_FILE,
    Pair,
    PrintedUnit,
    compare,
    fingerprint_units,
    index_dict,
    majority_given,
    read_index,
    units_from_index,
    write_index,
    write_outputs,
)
from grader.integrity.sources import starter_units, submission_units, text_headings
from grader.models import Submission

if TYPE_CHECKING:
    from grader.rubric import Rubric


def _earlier(paths: Sequence[Path]) -> tuple[dict[str, list[PrintedUnit]], set[int]]:
    """The students of earlier batches' indexes, as ``<batch>/<id>``, and what those
    batches counted as given (last year's starter is no evidence either)."""
    out: dict[str, list[PrintedUnit]] = {}
    given: set[int] = set()
    for folder in paths:
        index_path = folder / INDEX_FILE
        if not index_path.is_file():
            raise GraderError(
                f"--compare-with {folder}: no {INDEX_FILE} there (an output folder of `grade` "
                "run with this grader holds one)"
            )
        data = read_index(index_path)
        batch = str(data.get("batch") or folder.resolve().name)
        given.update(int(h) for h in data.get("given", []))
        for student, entries in data.get("students", {}).items():
            out[f"{batch}/{student}"] = units_from_index(entries)
    return out, given


def _finish(
    out_dir: Path,
    students: Mapping[str, list[PrintedUnit]],
    given: set[int],
    settings: SimilaritySettings,
    compare_with: Sequence[Path],
    given_from: str,
) -> list[Pair]:
    earlier, given_before = _earlier(compare_with)
    pairs = compare(students, given | given_before, settings, earlier)
    meta: dict[str, Any] = {
        "threshold": settings.threshold,
        "floor": settings.floor,
        "students": len(students),
        "compared_with": sorted({name.split("/", 1)[0] for name in earlier}),
        "given": given_from,
    }
    write_outputs(out_dir, pairs, meta)
    return pairs


def similarity_for_batch(
    subs: Sequence[Submission],
    rubric: Rubric,
    out_dir: Path,
    compare_with: Sequence[Path] = (),
) -> list[Pair]:
    """Fingerprint every submission, write the index, compare (with ``compare_with``'s
    earlier batches too) and write ``similarity.csv`` and ``similarity.json``."""
    settings = rubric.similarity
    headings = text_headings(rubric.checks())
    students = {
        sub.student: fingerprint_units(submission_units(sub, rubric.notebook, headings))
        for sub in subs
    }
    if settings.starter:
        starter = fingerprint_units(starter_units(rubric.path, settings.starter))
        given = {h for u in starter for h in u.prints.hashes}
        given_from = "starter: " + ", ".join(settings.starter)
    else:
        given = majority_given(students)
        given_from = "code and text more than half of the batch shares"
    batch = out_dir.resolve().name
    write_index(out_dir, index_dict(batch, students, given, settings) | {"given_from": given_from})
    return _finish(out_dir, students, given, settings, compare_with, given_from)


def similarity_from_index(out_dir: Path, compare_with: Sequence[Path] = ()) -> list[Pair] | None:
    """Compare again from ``OUT/similarity-index.json`` (``grade report``: no submission
    is read); None when the folder has no index."""
    path = out_dir / INDEX_FILE
    if not path.is_file():
        return None
    data = read_index(path)
    raw = data.get("settings", {})
    settings = SimilaritySettings(
        threshold=raw.get("threshold", 0.5),
        floor=raw.get("floor", 0.25),
        starter=raw.get("starter", []),
    )
    students = {s: units_from_index(e) for s, e in data.get("students", {}).items()}
    given = {int(h) for h in data.get("given", [])}
    return _finish(
        out_dir, students, given, settings, compare_with, str(data.get("given_from", ""))
    )
