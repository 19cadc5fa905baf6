"""The grader's records as JSON files: the only module that reads or writes them.

* ``OUT/results/<student>.json``: one :class:`GradeRecord` each, in the published
  format (``grader/schema/result.schema.json``, :data:`SCHEMA_VERSION`), and nothing
  else in that folder;
* ``OUT/batch.json``: the :class:`Batch` (facts true of the whole batch).

Answers, expected values, details and the optional sections are written with the
grader's one plain-data codec (:mod:`grader.plain`), so arrays, tuples and non-finite
floats come back as they were: ``record_from_dict(record_to_dict(r)) == r`` for every
record whose values the codec holds. Files are written with :mod:`grader.atomic`.

Older files are read too: version 1 (before the ``override`` field and the optional
sections) is migrated on read by :func:`migrate_v1`. The batch re-scores version-1
results from its cached executions and writes them again in this version (see
:meth:`grader.cache.GradeCache.finished_result`); ``grade report`` and ``grade export``
read them as they are.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any, cast

from grader.atomic import write_json_atomic
from grader.errors import GraderError
from grader.models import (
    Batch,
    CellFailure,
    CheckOverride,
    CheckResult,
    CheckStatus,
    ExecutionReport,
    GradeRecord,
    Provenance,
    QuestionResult,
)
from grader.plain import Unencodable, decode, encode

SCHEMA_DIR = Path(__file__).resolve().parent / "schema"
SCHEMA_PATH = SCHEMA_DIR / "result.schema.json"
BATCH_SCHEMA_PATH = SCHEMA_DIR / "batch.schema.json"
#: The version of ``results/<student>.json`` this grader writes (see CONTRIBUTING).
SCHEMA_VERSION = 2
#: The version of ``batch.json`` this grader writes.
BATCH_VERSION = 1
RESULTS_DIR = "results"
BATCH_FILE = "batch.json"
#: The optional sections of a record (schema version 2), in file order.
SECTIONS = ("late", "review", "devices", "integrity", "lms")


class ResultFormatError(GraderError, ValueError):
    """A results or batch file this grader cannot read (damaged, foreign or newer)."""


# ------------------------------------------------------------------- record → dict


def _value(value: Any) -> Any:
    """A check's answer, expected value or details as a JSON tree. A value the codec
    cannot hold (no check should make one) is written as its description, so the
    student's result is still written."""
    try:
        return encode(value)
    except Unencodable as exc:
        return f"<not representable in a result file: {exc}>"


def _fixed(value: Any) -> Any:
    """A record of fixed shape (execution report, provenance) as JSON: dataclasses as
    objects, tuples as arrays."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _fixed(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [_fixed(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _fixed(v) for k, v in value.items()}
    return value


def _provenance(provenance: Provenance) -> dict[str, Any]:
    out: dict[str, Any] = _fixed(provenance)
    if out.get("provided_sha256") is None:
        out.pop("provided_sha256", None)  # optional: only rubrics with `files:` have it
    return out


def _check_dict(check: CheckResult) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": check.id,
        "type": check.type,
        "score": check.score,
        "max_score": check.max_score,
        "status": check.status,
        "message": check.message,
        "prompt": check.prompt,
    }
    if not check.show_expected:
        out["show_expected"] = False  # the views hide expected parts of the details too
    elif check.expected is not None:
        out["expected"] = _value(check.expected)
    if check.got is not None:
        out["got"] = _value(check.got)
    if check.details is not None:
        out["details"] = _value(check.details)
    if check.override is not None:
        out["override"] = _fixed(check.override)
    return out


def record_to_dict(record: GradeRecord) -> dict[str, Any]:
    """The JSON-ready form of a record, in the published format (version 2).

    An expected value the rubric hides (``show_expected: false``) is never written.
    """
    out: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "student": record.student,
        "assignment": record.assignment,
        "title": record.title,
        "course": record.course,
        "score": record.score,
        "max_score": record.max_score,
        "questions": [
            {
                "id": q.id,
                "title": q.title,
                "score": q.score,
                "max_score": q.max_score,
                "checks": [_check_dict(c) for c in q.checks],
            }
            for q in record.questions
        ],
        "execution": _fixed(record.execution),
        "provenance": _provenance(record.provenance),
    }
    for name in SECTIONS:
        section = getattr(record, name)
        if section is not None:
            out[name] = _value(section)
    return out


# ------------------------------------------------------------------- dict → record


def _check(data: Mapping[str, Any], value: Callable[[Any], Any]) -> CheckResult:
    override = data.get("override")
    return CheckResult(
        id=data["id"],
        type=data["type"],
        score=data["score"],
        max_score=data["max_score"],
        status=cast(CheckStatus, data["status"]),
        message=data["message"],
        expected=value(data.get("expected")),
        got=value(data.get("got")),
        details=value(data.get("details")),
        show_expected=data.get("show_expected", True),
        prompt=data.get("prompt", ""),
        override=None if override is None else CheckOverride(**override),
    )


def _record(data: Mapping[str, Any], value: Callable[[Any], Any]) -> GradeRecord:
    ex = data["execution"]
    execution = ExecutionReport(
        **{
            **ex,
            "cells_not_run": tuple(ex["cells_not_run"]),
            "failures": tuple(CellFailure(**f) for f in ex["failures"]),
            "warnings": tuple(ex["warnings"]),
        }
    )
    questions = tuple(
        QuestionResult(
            id=q["id"],
            title=q["title"],
            score=q["score"],
            max_score=q["max_score"],
            checks=tuple(_check(c, value) for c in q["checks"]),
        )
        for q in data["questions"]
    )
    sections = {name: value(data.get(name)) for name in SECTIONS}
    return GradeRecord(
        student=data["student"],
        assignment=data["assignment"],
        title=data["title"],
        course=data["course"],
        score=data["score"],
        max_score=data["max_score"],
        questions=questions,
        execution=execution,
        provenance=Provenance(**data["provenance"]),
        **sections,
    )


def migrate_v1(data: Mapping[str, Any]) -> dict[str, Any]:
    """A version-1 result as the version-2 file the same grading writes today.

    Version 1 wrote answers, expected values and details as plain JSON (arrays as
    lists, tuples as lists, non-finite floats as the strings ``"nan"``/``"inf"``), so
    they are kept as those plain values, encoded for version 2; an instructor override
    that version 1 kept inside ``details["override"]`` becomes the check's ``override``.
    """
    out = {**data, "schema_version": SCHEMA_VERSION}
    questions = []
    for question in data["questions"]:
        checks = []
        for check in question["checks"]:
            new = dict(check)
            for key in ("expected", "got", "details"):
                if key in new:
                    new[key] = encode(new[key])
            details = check.get("details")
            override = details.get("override") if isinstance(details, dict) else None
            if isinstance(override, dict):
                assert isinstance(details, dict)
                new["override"] = {
                    "points": override["points"],
                    "comment": override.get("comment", ""),
                    "original_score": override["original_score"],
                    "original_status": override["original_status"],
                }
                rest = {k: v for k, v in details.items() if k != "override"}
                if rest:
                    new["details"] = encode(rest)
                else:
                    del new["details"]
            checks.append(new)
        questions.append({**question, "checks": checks})
    out["questions"] = questions
    return out


def record_from_dict(data: Mapping[str, Any]) -> GradeRecord:
    """A record from the JSON of ``results/<student>.json`` (any version this grader
    reads; :func:`record_to_dict` of it gives the current version).

    Raises :class:`ResultFormatError` for data that is not such a result.
    """
    if not isinstance(data, Mapping):
        raise ResultFormatError("not a results record (not a JSON object)")
    version = data.get("schema_version")
    if isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION:
        raise ResultFormatError(
            f"written with result schema version {version}; this grader reads versions 1 to "
            f"{SCHEMA_VERSION} (install the newer grader)"
        )
    try:
        if version == 1:
            data = migrate_v1(data)
        elif version != SCHEMA_VERSION:
            raise ValueError(f"unknown schema_version {version!r}")
        return _record(data, decode)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ResultFormatError(f"not a results record ({type(exc).__name__}: {exc})") from exc


# ------------------------------------------------------------------- files


def result_path(results_dir: Path, student: str) -> Path:
    """Where a student's result is kept."""
    return results_dir / f"{student}.json"


def write_result(results_dir: Path, record: GradeRecord) -> Path:
    """Write ``record`` to ``results_dir/<student>.json`` atomically; returns the path."""
    path = result_path(results_dir, record.student)
    write_json_atomic(path, record_to_dict(record))
    return path


def read_result(path: Path) -> GradeRecord:
    """The record of one results file; :class:`ResultFormatError` naming the file when it
    cannot be read."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ResultFormatError(f"{path}: not a valid results file ({exc})") from exc
    try:
        return record_from_dict(data)
    except ResultFormatError as exc:
        raise ResultFormatError(f"{path}: {exc}") from exc


def read_results(results_dir: Path) -> list[GradeRecord]:
    """Every record in ``results_dir``, sorted by student (temporary files of
    interrupted writes are not results)."""
    records = [read_result(p) for p in sorted(results_dir.glob("*.json"))]
    return sorted(records, key=lambda r: r.student)


def batch_to_dict(batch: Batch) -> dict[str, Any]:
    """The JSON form of ``batch.json``."""
    return {"batch_version": BATCH_VERSION, **_fixed(batch)}


def batch_from_dict(data: Mapping[str, Any]) -> Batch:
    """The inverse of :func:`batch_to_dict`; :class:`ResultFormatError` otherwise."""
    try:
        if data.get("batch_version") != BATCH_VERSION:
            raise ValueError(f"unknown batch_version {data.get('batch_version')!r}")
        fields = {k: v for k, v in data.items() if k != "batch_version"}
        return Batch(**{**fields, "warnings": tuple(fields.get("warnings", ()))})
    except (TypeError, ValueError, AttributeError) as exc:
        raise ResultFormatError(f"not a batch file ({type(exc).__name__}: {exc})") from exc


def write_batch(out_dir: Path, batch: Batch) -> Path:
    """Write ``OUT/batch.json`` atomically; returns its path."""
    path = out_dir / BATCH_FILE
    write_json_atomic(path, batch_to_dict(batch))
    return path


def read_batch(out_dir: Path) -> Batch | None:
    """``OUT/batch.json``, or None for a folder graded before it existed."""
    path = out_dir / BATCH_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ResultFormatError(f"{path}: cannot be read ({exc})") from exc
    try:
        return batch_from_dict(json.loads(text))
    except (ValueError, ResultFormatError) as exc:
        raise ResultFormatError(f"{path}: {exc}") from exc


#: How the sandbox warnings of graders before ``batch.json`` began (they were appended
#: to every result's warnings, and only there).
_V1_BATCH_WARNINGS = ("sandbox protection off", "the sandbox is off")


def batch_warnings(out_dir: Path, records: Sequence[GradeRecord]) -> tuple[str, ...]:
    """The batch's sandbox warnings: from ``batch.json``, or, for a folder graded before
    it existed, recovered from the results in the fixed words that grader used."""
    batch = read_batch(out_dir)
    if batch is not None:
        return batch.warnings
    found = {w for r in records for w in r.execution.warnings if w.startswith(_V1_BATCH_WARNINGS)}
    return tuple(sorted(found))


# ------------------------------------------------------------------- schema


@cache
def schema() -> dict[str, Any]:
    """The published JSON Schema of a result file."""
    loaded: dict[str, Any] = json.loads(SCHEMA_PATH.read_text())
    return loaded


@cache
def batch_schema() -> dict[str, Any]:
    """The JSON Schema of ``batch.json``."""
    loaded: dict[str, Any] = json.loads(BATCH_SCHEMA_PATH.read_text())
    return loaded


def validate(data: Any) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``data`` is a valid result."""
    import jsonschema

    jsonschema.validate(data, schema())
