"""Instructor overrides: validation with file/line errors, and merging into records."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from grader.models import CheckOverride, CheckResult, GradeRecord, QuestionResult
from grader.overrides import (
    OverridesError,
    apply_overrides,
    check_override_targets,
    load_overrides,
    with_overrides,
)
from grader.report.samples import sample_grade_record as sample_record
from grader.results import record_from_dict, record_to_dict

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((ROOT / "grader" / "schema" / "result.schema.json").read_text())


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "overrides.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def check_of(record: GradeRecord, cid: str) -> CheckResult:
    return next(c for q in record.questions for c in q.checks if c.id == cid)


def question_of(record: GradeRecord, cid: str) -> QuestionResult:
    return next(q for q in record.questions if any(c.id == cid for c in q.checks))


def test_load_and_apply(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "# marks after review\n"
        "- student: alice\n  check: Q1a\n  points: 3\n  comment: Full marks after review.\n"
        "- student: alice\n  check: q2_O\n  points: 1.5\n"
        "  comment: Method right, arithmetic slip.\n"
        "- student: bob\n  check: Q1b\n  points: 0\n",
    )
    overrides = load_overrides(path)
    assert [(o.student, o.check, o.points, o.line) for o in overrides] == [
        ("alice", "Q1a", 3.0, 2),
        ("alice", "q2_O", 1.5, 6),
        ("bob", "Q1b", 0.0, 10),
    ]
    record = sample_record("alice", seed=1)
    before = record_to_dict(record)
    new = apply_overrides(record, overrides)
    assert record_to_dict(record) == before  # the input is not modified
    q1a, q2o = check_of(new, "Q1a"), check_of(new, "q2_O")
    assert (q1a.score, q1a.status) == (3, "pass")  # manual check confirmed
    assert (q2o.score, q2o.status) == (1.5, "partial")
    assert q1a.override == CheckOverride(
        points=3.0,
        comment="Full marks after review.",
        original_score=check_of(record, "Q1a").score,
        original_status="manual",
    )
    assert q1a.details == check_of(record, "Q1a").details  # the details are untouched
    for cid in ("Q1a", "q2_O"):
        q = question_of(new, cid)
        assert q.score == pytest.approx(sum(c.score for c in q.checks))
    assert new.score == pytest.approx(sum(q.score for q in new.questions))
    delta = (3 - check_of(record, "Q1a").score) + (1.5 - check_of(record, "q2_O").score)
    assert new.score == pytest.approx(record.score + delta)
    data = record_to_dict(new)
    jsonschema.validate(data, SCHEMA)  # still a valid results record, the override in it
    assert record_from_dict(data) == new
    assert apply_overrides(sample_record("carol"), overrides) == sample_record("carol")
    bob = apply_overrides(sample_record("bob", seed=2), overrides)
    assert (check_of(bob, "Q1b").score, check_of(bob, "Q1b").status) == (0, "fail")


def test_applying_twice_keeps_the_original_grade(tmp_path: Path) -> None:
    overrides = load_overrides(write(tmp_path, "- {student: a, check: Q1a, points: 1}\n"))
    record = sample_record("a", seed=3)
    original = check_of(record, "Q1a").score
    twice = apply_overrides(apply_overrides(record, overrides), overrides)
    assert check_of(twice, "Q1a").override.original_score == original  # type: ignore[union-attr]


def test_empty_file_means_no_overrides(tmp_path: Path) -> None:
    assert load_overrides(write(tmp_path, "# nothing yet\n")) == []


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("student: a\ncheck: b\n", r"overrides\.yaml:1: expected a list"),
        ("- just a string\n", r"overrides\.yaml:1 \(entry 1\): an entry must be a mapping"),
        (
            "- student: a\n  check: Q1a\n  points: 1\n  mark: 3\n",
            r"overrides\.yaml:4 \(entry 1\): unknown key 'mark'",
        ),
        ("- student: a\n  check: Q1a\n", r"overrides\.yaml:1 \(entry 1\): missing key points"),
        ("- student: a\n  check: Q1a\n  points: -1\n", r"entry 1\): points must be a number ≥ 0"),
        ("- student: a\n  check: Q1a\n  points: lots\n", r"points must be a number"),
        ("- student: a\n  check: ''\n  points: 1\n", r"check must be a non-empty string"),
        ("- student: a\n  check: Q1a\n  points: 1\n  comment: [1]\n", r"comment must be text"),
        (
            "- {student: a, check: Q1a, points: 1}\n- {student: a, check: Q1a, points: 2}\n",
            r"overrides\.yaml:2 \(entry 2\): student 'a', check 'Q1a' is already "
            "overridden by entry 1",
        ),
        ("- student: a\n  check: [unclosed\n", r"overrides\.yaml: invalid YAML"),
    ],
)
def test_invalid_files_are_rejected_with_file_and_line(
    tmp_path: Path, text: str, pattern: str
) -> None:
    with pytest.raises(OverridesError, match=pattern):
        load_overrides(write(tmp_path, text))


def test_numeric_student_ids_are_accepted(tmp_path: Path) -> None:
    (o,) = load_overrides(write(tmp_path, "- {student: 99521082, check: Q1a, points: 2}\n"))
    assert o.student == "99521082"


def test_unknown_check_names_the_entry(tmp_path: Path) -> None:
    overrides = load_overrides(
        write(
            tmp_path,
            "- {student: a, check: Q1a, points: 1}\n- {student: a, check: Q9z, points: 1}\n",
        )
    )
    with pytest.raises(
        OverridesError,
        match=r"overrides\.yaml:2 \(entry 2: student 'a', check 'Q9z'\): a has no check 'Q9z'",
    ):
        apply_overrides(sample_record("a"), overrides)


def test_unknown_student_names_the_entry(tmp_path: Path) -> None:
    overrides = load_overrides(write(tmp_path, "- {student: zed, check: Q1a, points: 1}\n"))
    with pytest.raises(
        OverridesError,
        match=r"overrides\.yaml:1 \(entry 1: student 'zed', check 'Q1a'\): "
        "no results for student 'zed'",
    ):
        check_override_targets([sample_record("a"), sample_record("b")], overrides)


def test_points_above_maximum_rejected(tmp_path: Path) -> None:
    overrides = load_overrides(write(tmp_path, "- {student: a, check: Q1a, points: 30}\n"))
    with pytest.raises(OverridesError, match="exceed the check's maximum 3"):
        apply_overrides(sample_record("a"), overrides)


def test_with_overrides_reads_the_file_only_when_there_is_one(tmp_path: Path) -> None:
    records = [sample_record("a", seed=3), sample_record("b", seed=4)]
    assert with_overrides(records, tmp_path / "overrides.yaml") == records
    path = write(tmp_path, "- {student: b, check: Q1a, points: 2}\n")
    a, b = with_overrides(records, path)
    assert a == records[0] and check_of(b, "Q1a").score == 2
    write(tmp_path, "- {student: zed, check: Q1a, points: 2}\n")
    with pytest.raises(OverridesError, match="no results for student 'zed'"):
        with_overrides(records, path)
