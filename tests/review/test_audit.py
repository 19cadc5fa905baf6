"""Regrade requests and the review section of each result (the audit trail)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from grader.cache import GradeCache
from grader.cli import main
from grader.overrides import OVERRIDES_FILE, load_overrides, save_override
from grader.results import read_result, schema
from grader.review.app import ReviewSession
from grader.review.audit import (
    REGRADES_FILE,
    RegradeError,
    file_regrade,
    load_regrades,
    resolve_regrade,
    sync_review_sections,
)


def result_json(out: Path, student: str) -> dict:  # type: ignore[type-arg]
    return json.loads((out / "results" / f"{student}.json").read_text(encoding="utf-8"))


def test_review_sections_follow_overrides_and_stay_cached(out: Path) -> None:
    assert "review" not in result_json(out, "solution")
    save_override(out / OVERRIDES_FILE, student="solution", check="Q1a", points=2,
                  comment="Say how you detect it.", who="jdoe", why="marked", previous=3.0,
                  when="2026-12-04T23:00:00+00:00")  # fmt: skip
    assert sync_review_sections(out) == ["solution"]
    data = result_json(out, "solution")
    jsonschema.validate(data, schema())
    assert data["review"] == {
        "marks": [
            {"check": "Q1a", "points": 2.0, "comment": "Say how you detect it.", "who": "jdoe",
             "when": "2026-12-04T23:00:00+00:00", "previous": 3.0, "why": "marked"},
        ],
        "regrades": [],
    }  # fmt: skip
    # the checks' scores in results/ stay the grader's own
    q1a = next(c for q in data["questions"] for c in q["checks"] if c["id"] == "Q1a")
    assert (q1a["score"], q1a["status"]) == (3.0, "manual")
    assert sync_review_sections(out) == []  # nothing changed: nothing written
    # the batch's cache still takes the rewritten file for the finished result
    key = json.loads((GradeCache(out).results / "solution.json").read_text())["key"]
    assert GradeCache(out).finished_result("solution", key, out / "results") is not None


def test_file_and_resolve_regrades(out: Path) -> None:
    session = ReviewSession(out, "jdoe")
    first = file_regrade(out, session.records(), "solution", "Q1b", "I did answer it.", "jdoe")
    second = file_regrade(out, session.records(), "ansari_seed", "Q1a", "Too harsh.", "ta")
    assert (first.id, second.id, first.status, first.points_before) == (1, 2, "open", 3.0)
    upheld = resolve_regrade(out, session.records(), 1, "jdoe", points=None, comment="Stands.")
    assert (upheld.outcome, upheld.points_before, upheld.points_after) == ("upheld", 3.0, 3.0)
    assert not (out / OVERRIDES_FILE).exists()  # an upheld mark writes no override
    changed = resolve_regrade(out, session.records(), 2, "jdoe", points=1.5, comment="Halved.")
    assert (changed.outcome, changed.points_after, changed.resolved_by) == ("changed", 1.5, "jdoe")
    [entry] = load_overrides(out / OVERRIDES_FILE)
    assert (entry.student, entry.check, entry.points, entry.previous, entry.why) == (
        "ansari_seed", "Q1a", 1.5, 3.0, "regrade 2: Halved.",
    )  # fmt: skip
    assert [r.status for r in load_regrades(out / REGRADES_FILE)] == ["resolved", "resolved"]
    sync_review_sections(out)
    review = read_result(out / "results" / "ansari_seed.json").review
    assert review is not None
    assert [r["outcome"] for r in review["regrades"]] == ["changed"]
    assert [m["why"] for m in review["marks"]] == ["regrade 2: Halved."]
    jsonschema.validate(result_json(out, "ansari_seed"), schema())


@pytest.mark.parametrize(
    ("student", "check", "reason", "words"),
    [
        ("nobody", "Q1a", "x", "no results for student 'nobody'"),
        ("solution", "Q9z", "x", "solution has no check 'Q9z'"),
        ("solution", "Q1a", "  ", "needs a reason"),
    ],
)
def test_bad_regrade_requests_say_why(
    out: Path, student: str, check: str, reason: str, words: str
) -> None:
    records = ReviewSession(out, "jdoe").records()
    with pytest.raises(RegradeError, match=words):
        file_regrade(out, records, student, check, reason, "jdoe")


def test_a_request_is_resolved_once(out: Path) -> None:
    records = ReviewSession(out, "jdoe").records()
    file_regrade(out, records, "solution", "Q1a", "why not", "jdoe")
    resolve_regrade(out, records, 1, "jdoe", points=None, comment="")
    with pytest.raises(RegradeError, match="already resolved"):
        resolve_regrade(out, records, 1, "jdoe", points=None, comment="")
    with pytest.raises(RegradeError, match="no regrade request 7"):
        resolve_regrade(out, records, 7, "jdoe", points=None, comment="")


def test_grade_regrade_command(out: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["regrade", str(out), "solution", "Q1c", "--reason", "Read again", "--as", "ta"])
    assert code == 0
    assert "filed regrade request 1 for solution Q1c" in capsys.readouterr().out
    [request] = load_regrades(out / REGRADES_FILE)
    assert (request.filed_by, request.reason, request.status) == ("ta", "Read again", "open")
    assert result_json(out, "solution")["review"]["regrades"][0]["reason"] == "Read again"
    assert main(["regrade", str(out), "solution", "nope", "--reason", "x"]) == 2
    assert "solution has no check 'nope'" in capsys.readouterr().err
