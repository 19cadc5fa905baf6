"""The details models: a written contract between each check and its view.

Every details model produced in this folder's tests is checked against its own JSON
Schema as it is made (``conftest.py``); here, what every type's model must accept and
reject, and a record of several types' results checked against the published schema.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest
from pydantic import ValidationError

from grader.checks import REGISTRY
from grader.checks.choice import ChoiceSpec, grade_choice
from grader.checks.shape_table import ShapeTableSpec, grade_shape_table
from grader.checks.text import TextSpec, grade_text
from grader.checks.value import ValueSpec, grade_value
from grader.models import CheckResult, ExecutionReport, GradeRecord, Provenance, QuestionResult
from grader.results import record_from_dict, record_to_dict
from tests.conftest import make_ctx

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "grader" / "schema" / "result.schema.json").read_text()
)
TYPES = sorted(REGISTRY)


@pytest.mark.parametrize("name", TYPES)
def test_every_type_reads_what_any_check_may_store(name: str) -> None:
    """An unreadable answer (``unavailable``), a check that raised (the pipeline's error
    result) and a result without details read back through every type's model."""
    model = REGISTRY[name].details
    assert model.model_validate({}).dump() == {}
    assert model.model_validate({"type": "Matrix"}).dump() == {"type": "Matrix"}
    assert model.model_validate({"traceback": "Traceback …"}).traceback == "Traceback …"


@pytest.mark.parametrize("name", TYPES)
def test_every_type_rejects_keys_its_model_does_not_know(name: str) -> None:
    model = REGISTRY[name].details
    with pytest.raises(ValidationError):
        model.model_validate({"mismatches": [[True]]})
    schema = model.model_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"mismatches": [[True]]}, schema)


def _results() -> list[CheckResult]:
    value = ValueSpec.model_validate({"id": "v", "type": "value", "answer": "v", "points": 2})
    table = ShapeTableSpec.model_validate({"id": "t", "type": "shape_table", "answer": "t"})
    choice = ChoiceSpec.model_validate(
        {"id": "c", "type": "choice", "answer": "c", "points_each": 1}
    )
    text = TextSpec.model_validate(
        {
            "id": "q",
            "type": "text",
            "heading": "Q1",
            "points": 2,
            "concepts": [{"name": "loss", "any": ["loss"]}, {"name": "rate", "any": ["rate"]}],
        }
    )
    ref_rows: Any = [["Input", (4, 2), 0], ["Dense", (3,), 9]]
    return [
        grade_value(value, make_ctx({"v": np.eye(2)}, {"v": np.ones((2, 2))})),
        grade_value(value, make_ctx({"v": np.ones(4)}, {"v": np.ones((2, 2))})),
        grade_value(value, make_ctx(statuses={"v": ("unsupported", "a Matrix")})),
        grade_shape_table(
            table, make_ctx({"t": [["i", (4, 2), 0], ["d", (3,), 8]]}, {"t": ref_rows})
        ),
        grade_choice(choice, make_ctx({"c": [True, "no"]}, {"c": ["true", "true"]})),
        grade_text(text, make_ctx(markdown=("## Q1\nthe loss goes up",))),
    ]


def test_a_record_of_several_types_is_valid_and_round_trips() -> None:
    checks = tuple(_results())
    execution = ExecutionReport("x.ipynb", 1, 1, (), (), False, False, None, (), 0.1)
    provenance = Provenance("0" * 64, "1" * 64, "2" * 64, "v", "3.11", "t", "n")
    question = QuestionResult("q1", "Q", 3.0, 13.0, checks)
    record = GradeRecord("s", "a", "T", "", 3.0, 13.0, (question,), execution, provenance)
    stored = json.loads(json.dumps(record_to_dict(record), allow_nan=False))
    jsonschema.validate(stored, SCHEMA)
    again = record_from_dict(stored)
    for before, after in zip(checks, again.questions[0].checks, strict=True):
        model = REGISTRY[before.type].details
        assert model.model_validate(after.details or {}) == model.model_validate(
            before.details or {}
        )
    assert record_to_dict(again) == stored
