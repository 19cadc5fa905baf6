"""The one JSON module of records (grader/results.py): exact round trips, the published
schema, version-1 files migrated, batch.json."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest

from grader.late import Late
from grader.lms import StudentInfo
from grader.models import (
    Batch,
    CellFailure,
    CheckOverride,
    CheckResult,
    ExecutionReport,
    GradeRecord,
    Provenance,
    QuestionResult,
)
from grader.results import (
    ResultFormatError,
    batch_from_dict,
    batch_schema,
    batch_to_dict,
    batch_warnings,
    migrate_v1,
    read_batch,
    read_result,
    read_results,
    record_from_dict,
    record_to_dict,
    validate,
    write_batch,
    write_result,
)
from tests.values import same

V1 = Path(__file__).resolve().parent / "data" / "results_v1"


def v1_files() -> list[Path]:
    return sorted(V1.glob("*.json"))


def record() -> GradeRecord:
    """A record with what JSON cannot say plainly: arrays of several dtypes, non-finite
    floats, tuples, int keys, an instructor override, a hidden expected value and the
    optional sections."""
    checks = (
        CheckResult(
            id="q2_O",
            type="value",
            score=0.0,
            max_score=4.0,
            status="fail",
            message="q2_O differs in 3 cells",
            expected=np.array([[1.0, np.nan], [np.inf, -np.inf]]),
            got=np.array([[1.5, 2.0], [3.0, 4.0]], dtype=np.float32),
            details={"mismatch": np.array([[True, False], [True, True]]), "shape": (2, 2)},
        ),
        CheckResult(
            id="Q1a",
            type="text",
            score=2.5,
            max_score=3.0,
            status="partial",
            message="suggested mark",
            got="an answer",
            details={"concepts": [{"name": "x", "found": True}], "ratio": float("nan")},
            override=CheckOverride(2.5, "Good; see lecture 4.", 1.5, "manual"),
        ),
        CheckResult(
            id="q3_table",
            type="shape_table",
            score=1.0,
            max_score=2.0,
            status="partial",
            message="one row wrong",
            got=[("Conv1D", (498, 16), 352)],
            details={"rows": [{1: "int key"}], "best": float("-inf")},
            show_expected=False,
            prompt="Fill in the table",
        ),
    )
    return GradeRecord(
        student="学生-01",
        assignment="hw3",
        title="HW3",
        course="Deep Learning",
        score=3.5,
        max_score=9.0,
        questions=(QuestionResult("q", "Q", 3.5, 9.0, checks),),
        execution=ExecutionReport(
            notebook="hw3.ipynb",
            cells_total=5,
            cells_run=4,
            cells_not_run=(5,),
            failures=(CellFailure(4, "error", "NameError", "x", "Traceback …"),),
            timed_out=False,
            kernel_died=False,
            limit_hit=None,
            warnings=("sandbox protection off: cgroups",),
            duration_s=1.25,
            module=None,
            module_problem=None,
        ),
        provenance=Provenance(
            *["a" * 64] * 3, "0.1.0", "3.11", "2.13.0", "2.3", {"kernel": 0}, "", "b" * 64
        ),
        late=Late(
            "2026-01-01T00:00:00+00:00",
            "metadata",
            True,
            "2025-12-31T00:00:00+00:00",
            0.0,
            24.0,
            1,
            0.9,
            10.0,
            flags=("the LMS marks this late",),
        ).to_section(),
        lms=StudentInfo("canvas", "Smith John", sis_id="s1", on_roster=False).to_section(),
        devices={"gpu": None, "memory": np.array([1, 2], dtype=np.int64)},
    )


def test_record_round_trips_exactly_through_strict_json() -> None:
    original = record()
    data = record_to_dict(original)
    validate(data)  # the published schema, version 2
    text = json.dumps(data, allow_nan=False)  # strict JSON: no NaN tokens
    back = record_from_dict(json.loads(text))
    assert same(back, original)
    assert record_to_dict(back) == data


def test_published_form_of_the_new_fields() -> None:
    data = record_to_dict(record())
    q2o, q1a, table = data["questions"][0]["checks"]
    assert q1a["override"] == {
        "points": 2.5,
        "comment": "Good; see lecture 4.",
        "original_score": 1.5,
        "original_status": "manual",
    }
    assert "override" not in q2o and "override" not in (q1a.get("details") or {})
    assert table["show_expected"] is False and "expected" not in table
    assert q2o["expected"]["__array__"][0] == [1.0, "nan"]  # a non-finite element, tagged
    assert data["late"]["units_late"] == 1 and data["late"]["penalty"] == 0.9
    assert data["lms"]["name"] == "Smith John" and data["lms"]["on_roster"] is False
    assert "review" not in data and "integrity" not in data


def test_a_value_no_check_should_make_still_writes_the_result() -> None:
    odd = dataclasses.replace(record().questions[0].checks[0], got=object())
    rec = dataclasses.replace(record(), questions=(QuestionResult("q", "Q", 0, 4, (odd,)),))
    got = record_to_dict(rec)["questions"][0]["checks"][0]["got"]
    assert got.startswith("<not representable in a result file")


@pytest.mark.parametrize("path", v1_files(), ids=lambda p: p.stem)
def test_version_1_files_migrate_without_loss(path: Path) -> None:
    v1 = json.loads(path.read_text(encoding="utf-8"))
    assert v1["schema_version"] == 1
    migrated = record_to_dict(record_from_dict(v1))
    validate(migrated)
    # the same content, only the version differs: nothing was dropped or re-typed
    assert migrated == {**v1, "schema_version": 2}


def test_a_version_1_override_becomes_the_override_field() -> None:
    v1 = json.loads(v1_files()[0].read_text(encoding="utf-8"))
    check = v1["questions"][0]["checks"][0]  # a text check with concepts in its details
    check["details"] = {
        **check["details"],
        "override": {
            "points": 3.0,
            "comment": "ok",
            "original_score": 1.5,
            "original_status": "manual",
        },
    }
    before = copy.deepcopy(v1)
    migrated = migrate_v1(v1)
    assert v1 == before  # the input is not modified
    new = migrated["questions"][0]["checks"][0]
    assert new["override"]["points"] == 3.0 and "override" not in new["details"]
    assert new["details"]["concepts"] == check["details"]["concepts"]
    rec = record_from_dict(migrated)
    assert rec.questions[0].checks[0].override == CheckOverride(3.0, "ok", 1.5, "manual")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"schema_version": 3, "student": "a"}, "version 3; this grader reads versions 1 to 2"),
        ({"schema_version": 2, "student": "a"}, "not a results record"),
        ({"student": "a", "score": 1}, "unknown schema_version None"),
        ([1, 2], "not a JSON object"),
    ],
)
def test_what_is_not_a_result_is_refused_by_name(data: Any, message: str) -> None:
    with pytest.raises(ResultFormatError, match=message):
        record_from_dict(data)


def test_files_are_written_and_read_back(tmp_path: Path) -> None:
    results = tmp_path / "results"
    path = write_result(results, record())
    assert path == results / "学生-01.json"
    assert same(read_result(path), record())
    (results / ".x.json.0123456789ab.tmp").write_text("half")  # an interrupted write
    assert [r.student for r in read_results(results)] == ["学生-01"]
    (results / "broken.json").write_text("{")
    with pytest.raises(ResultFormatError, match=r"broken\.json"):
        read_results(results)


def test_batch_json(tmp_path: Path) -> None:
    batch = Batch(
        "hw3",
        "a" * 64,
        "b" * 64,
        "permissive",
        ("sandbox protection off: cgroups", "sandbox protection off: seccomp"),
        None,
        "0.1.0",
        "2026-01-01T00:00:00+00:00",
    )
    assert read_batch(tmp_path) is None
    write_batch(tmp_path, batch)
    data = json.loads((tmp_path / "batch.json").read_text())
    jsonschema.validate(data, batch_schema())
    assert batch_from_dict(batch_to_dict(batch)) == batch == read_batch(tmp_path)
    assert batch.sandbox_warning == (
        "sandbox protection off: cgroups; sandbox protection off: seccomp"
    )
    assert batch_warnings(tmp_path, []) == batch.warnings
    (tmp_path / "batch.json").write_text('{"batch_version": 9}')
    with pytest.raises(ResultFormatError, match=r"batch\.json"):
        read_batch(tmp_path)


def test_folders_from_before_batch_json_keep_their_sandbox_warning(tmp_path: Path) -> None:
    """A version-1 folder has no batch.json: its batch warnings were appended to every
    result, in the words the version-1 grader used."""
    rec = record()
    other = dataclasses.replace(
        rec,
        student="b",
        execution=dataclasses.replace(rec.execution, warnings=("graded x.ipynb: misnamed",)),
    )
    assert batch_warnings(tmp_path, [rec, other]) == ("sandbox protection off: cgroups",)
    assert batch_warnings(tmp_path, [other]) == ()
