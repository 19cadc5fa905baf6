"""Every details model's output, checked as the check tests produce it.

Each check builds its details through its type's model and the record keeps what
:meth:`Details.dump` returns. The fixture below wraps that method for every test in this
folder, so every result the check tests grade has its details checked as they will be
stored: made plain and JSON as the results writer makes them, valid against the model's
own JSON Schema, and read back through the model into the same data (a result file
round-trips unchanged).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from typing import Any

import jsonschema
import pytest

from grader.checks.base import Details
from grader.normalize import to_plain


@cache
def _validator(model: type[Details]) -> jsonschema.Draft202012Validator:
    schema = model.model_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def checked_dump(details: Details, dump: Any) -> dict[str, Any]:
    """``details.dump()``, after checking that it is valid stored data of its model."""
    data: dict[str, Any] = dump(details)
    stored = json.loads(json.dumps(to_plain(data), allow_nan=False))
    _validator(type(details)).validate(stored)
    again = dump(type(details).model_validate(stored))
    assert json.loads(json.dumps(to_plain(again), allow_nan=False)) == stored
    return data


@pytest.fixture(autouse=True)
def details_checked(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Check every details dump made while a check test runs."""
    dump = Details.dump
    monkeypatch.setattr(Details, "dump", lambda self: checked_dump(self, dump))
    yield
