"""The student report's view (grader/report/view.py): a GradeRecord in, plain data out.

Each check's block is built from the registry: its type's word, view and macro file,
with the report's default for types that have none; overrides come from the typed
``CheckResult.override``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from grader.models import (
    CellFailure,
    CheckOverride,
    CheckResult,
    ExecutionReport,
    GradeRecord,
    Provenance,
    QuestionResult,
)
from grader.report.view import check_view, execution_view, question_view, student_view


def check(ctype: str = "value", status: str = "fail", **kw: Any) -> CheckResult:
    fields: dict[str, Any] = {"score": 0.0, "max_score": 2.0, "message": "wrong"} | kw
    return CheckResult(id="c1", type=ctype, status=status, **fields)  # type: ignore[arg-type]


def execution(**kw: Any) -> ExecutionReport:
    base: dict[str, Any] = {
        "notebook": "hw.ipynb",
        "cells_total": 10,
        "cells_run": 10,
        "cells_not_run": (),
        "failures": (),
        "timed_out": False,
        "kernel_died": False,
        "limit_hit": None,
        "warnings": (),
        "duration_s": 2.345,
    }
    return ExecutionReport(**(base | kw))


def record(*questions: QuestionResult, **kw: Any) -> GradeRecord:
    prov = Provenance("a" * 64, "b" * 64, "c" * 64, "1.0", "3.11", "2.1", "1.26")
    base: dict[str, Any] = {
        "student": "s1",
        "assignment": "hw3",
        "title": "HW3",
        "course": "DL",
        "score": sum(q.score for q in questions),
        "max_score": sum(q.max_score for q in questions),
        "questions": questions,
        "execution": execution(),
        "provenance": dataclasses.replace(
            prov, seeds={"probe": 2, "kernel": 0}, graded_at="2026-01-05T10:00:00"
        ),
    }
    return GradeRecord(**(base | kw))


def question(*checks: CheckResult) -> QuestionResult:
    score = sum(c.score for c in checks)
    return QuestionResult("q1", "Convolutions", score, sum(c.max_score for c in checks), checks)


# ---------------------------------------------------------------- one check


def test_a_passed_check_is_compact_unless_overridden() -> None:
    assert check_view(check(status="pass", score=2.0))["compact"]
    override = CheckOverride(points=2.0, comment="ok", original_score=1.0, original_status="fail")
    shown = check_view(check(status="pass", score=2.0, override=override))
    assert not shown["compact"]
    assert shown["override"] == {
        "comment": "ok",
        "comment_dir": "ltr",
        "original_score": "1",
        "original_status": "Failed",
        "suggested": False,
    }


def test_an_override_comment_keeps_its_writing_direction() -> None:
    override = CheckOverride(points=1.5, comment="خوب است", original_score=0.0, original_status="x")
    shown = check_view(check(status="partial", score=1.5, override=override))["override"]
    assert shown["comment_dir"] == "rtl" and shown["original_status"] == "x"


def test_the_type_word_and_page_breaks_come_from_the_registry() -> None:
    text = check_view(check("text", status="manual", details={"answer": "long"}))
    assert text["type_word"] == "written answer" and text["breakable"]
    table = check_view(check("shape_table"))
    assert table["type_word"] == "shape table" and not table["breakable"]


def test_a_type_with_a_view_names_its_macro_file() -> None:
    shown = check_view(check("value", expected=1.5, got=2.0))
    assert shown["macros"] == "checks/value.html.j2"
    assert shown["body"]["scalar"] and shown["body"]["got_text"] == "2"


def test_a_type_without_a_view_gets_the_default_body() -> None:
    shown = check_view(check("claim", expected={"min": 0.9}, got=0.87))
    assert shown["macros"] is None
    assert shown["body"] == {"expected_text": "{min: 0.9}", "got_text": "0.87"}
    hidden = check_view(check("claim", expected={"min": 0.9}, got=0.87, show_expected=False))
    assert hidden["body"]["expected_text"] == ""


def test_an_unknown_type_or_unreadable_details_get_the_default_body() -> None:
    unknown = check_view(check("gradient_flow", got=[1, 2]))
    assert unknown["type_word"] == "gradient flow" and unknown["macros"] is None
    assert unknown["body"]["got_text"] == "[1, 2]"
    odd = check_view(check("value", got=3.0, details={"mismatch": "?", "traceback": "Boom"}))
    assert odd["macros"] is None and odd["body"]["got_text"] == "3"
    assert odd["traceback"] == "Boom"  # still shown


def test_arrays_from_the_pipeline_are_shown_as_plain_values() -> None:
    mask = np.array([[False, True], [False, False]])  # as a record may hold it in memory
    shown = check_view(
        check(
            "value",
            expected=np.array([[1.0, 2.0], [3.0, 4.0]]),
            got=np.array([[1.0, 9.0], [3.0, 4.0]]),
            details={"mismatch": mask},
        )
    )["body"]
    assert (shown["n_diff"], shown["n_cells"], shown["n_hidden_diff"]) == (1, 4, 0)
    assert shown["got"]["html"].count('<span class="d">') == 1


def test_a_long_traceback_is_trimmed() -> None:
    tb = "\n".join(f"frame {i}" for i in range(200))
    shown = check_view(check("model", status="error", details={"traceback": tb}))
    assert "lines omitted" in shown["traceback"] and "frame 199" in shown["traceback"]
    assert shown["body"]["ran"] is None  # no probe: nothing observed to show


def test_a_model_view_hides_the_reference_where_the_record_may_not_show_it() -> None:
    details = {"parts": [], "probe": {"ran": True, "trainable_params": 1234}}
    expected = {"trainable_params": 99}
    shown = check_view(check("model", details=details, expected=expected))["body"]
    assert shown["probe_rows"] == [
        {"what": "Trainable parameters", "got": "1,234", "expected": "99"}
    ]
    hidden = check_view(check("model", details=details, expected=expected, show_expected=False))
    assert hidden["body"]["probe_rows"][0]["expected"] == ""


# ---------------------------------------------------------------- questions and records


def test_question_status_and_the_passed_and_detailed_checks() -> None:
    ok = check(status="pass", score=2.0)
    wrong = dataclasses.replace(check(status="error"), id="c2")
    shown = question_view(question(ok, wrong))
    assert shown["status"] == "error" and shown["status_word"] == "Error"
    assert [c["id"] for c in shown["passed"]] == ["c1"]
    assert [c["id"] for c in shown["detailed"]] == ["c2"]
    manual = dataclasses.replace(check("text", status="manual", score=1.0), id="c3")
    assert question_view(question(ok, manual))["status"] == "manual"
    assert question_view(question(ok))["status"] == "pass"


def test_execution_problems_in_words() -> None:
    failure = CellFailure(cell=4, kind="limit", ename="MemoryError", evalue="", traceback="")
    shown = execution_view(
        execution(failures=(failure,), limit_hit="memory 2 GiB", cells_not_run=(5, 6, 7, 9))
    )
    assert shown["failures"][0]["words"] == "hit a resource limit (memory 2 GiB)"
    assert shown["failures"][0]["line"] == "MemoryError"
    assert shown["flags"] == ["A resource limit was hit: memory 2 GiB."]
    assert (shown["not_run"], shown["n_not_run"]) == ("5–7, 9", 4)
    assert shown["problems"] and shown["duration"] == "2.3"
    assert not execution_view(execution())["problems"]
    assert execution_view(execution(notebook=None))["problems"]  # nothing ran at all
    assert not execution_view(execution(notebook=None, module="layers.py"))["problems"]


def test_the_whole_record() -> None:
    essay = dataclasses.replace(
        check("text", status="manual", score=1.5, max_score=3.0), id="essay"
    )
    override = CheckOverride(points=2.0, comment="", original_score=0.0, original_status="fail")
    marked = check(status="pass", score=2.0, override=override)
    shown = student_view(record(question(marked, essay), title=""), sandbox_warning="no sandbox")
    assert shown["title"] == "hw3"  # no title: the assignment's name
    assert (shown["score"], shown["max_score"], shown["percent"]) == ("3.5", "5", "70.0")
    assert (shown["n_manual"], shown["manual_points"]) == (1, "3")
    assert shown["has_overrides"] and shown["sandbox_warning"] == "no sandbox"
    assert shown["date"] == "2026-01-05"
    assert "Seeds               kernel=0, probe=2" in shown["provenance_text"]
    assert shown["score_bar"].startswith("data:image/svg+xml")
    assert student_view(record())["questions"] == []
