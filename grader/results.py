"""GradeRecord ↔ the published JSON format (``grader/schema/result.schema.json``)."""

from __future__ import annotations

import dataclasses
import json
from functools import cache
from pathlib import Path
from typing import Any

from grader.models import CheckResult, GradeRecord
from grader.normalize import to_plain

SCHEMA_PATH = Path(__file__).resolve().parent / "schema" / "result.schema.json"
SCHEMA_VERSION = 1


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
    if check.expected is not None and check.show_expected:
        out["expected"] = to_plain(check.expected)
    if check.got is not None:
        out["got"] = to_plain(check.got)
    if check.details is not None:
        out["details"] = to_plain(check.details)
    return out


def record_to_dict(record: GradeRecord) -> dict[str, Any]:
    """The JSON-ready form of a record, in the published format."""
    return {
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
        "execution": to_plain(dataclasses.asdict(record.execution)),
        "provenance": dataclasses.asdict(record.provenance),
    }


@cache
def schema() -> dict[str, Any]:
    """The published JSON Schema of a result file."""
    loaded: dict[str, Any] = json.loads(SCHEMA_PATH.read_text())
    return loaded


def validate(data: Any) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``data`` is a valid result."""
    import jsonschema

    jsonschema.validate(data, schema())
