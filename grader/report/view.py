"""Turn a :class:`GradeRecord` into the plain view the student report's templates draw.

Everything a template needs is computed here or by the check type's own view (matrices
with their differing cells, trimmed tracebacks, status words, percentages), so the
templates stay declarative and only ever see data the record holds: expected values are
shown only where the record carries them and the check allows it (``show_expected``).

Nothing here knows a check type: each check's block asks the registry
(:func:`grader.checks.base.view_of`) for its type's view, which turns the result and its
details (read back through the type's details model) into the data of the type's Jinja
macro file, ``body(b, c)``; a type without one is drawn by the report's default (the
expected and submitted values as text).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import grader.checks  # noqa: F401  (every check type registers its view on import)
from grader.checks.base import read_details, view_of
from grader.lms import info_of, late_of
from grader.models import CheckResult, ExecutionReport, GradeRecord, Provenance, QuestionResult
from grader.report.figures import score_bar_svg
from grader.report.format import (
    cell_ranges,
    expected_of,
    fmt_compact,
    fmt_points,
    got_of,
    level,
    percent,
    shorten,
    text_direction,
    trim_traceback,
)

STATUS_WORDS: dict[str, str] = {
    "pass": "Passed",
    "partial": "Partial credit",
    "fail": "Failed",
    "error": "Error",
    "manual": "Awaiting instructor review",
}

FAILURE_WORDS: dict[str, str] = {
    "error": "raised an error",
    "timeout": "timed out (it ran longer than the time limit)",
    "kernel_died": "stopped the Python kernel (it crashed, often from running out of memory)",
    "limit": "hit a resource limit",
}

PROMPT_CHARS = 400
#: The Jinja name of a check type's macro file; the report's loader resolves it through
#: the registry (:func:`grader.report.render.jinja_env`).
MACROS_NAME = "checks/{type}.html.j2"


def default_body(check: CheckResult) -> dict[str, Any]:
    """The body of a check type without a view: its expected and submitted values as
    one line of text each."""
    has_exp, expected = expected_of(check)
    got = got_of(check)
    return {
        "expected_text": fmt_compact(expected, 300) if has_exp else "",
        "got_text": fmt_compact(got, 300) if got is not None else "",
    }


def _body(check: CheckResult) -> tuple[Mapping[str, Any], str | None, object]:
    """The check's body data, the Jinja name of the macros that draw it (None: the
    report's default) and the traceback its details carry."""
    shown = view_of(check.type)
    details = read_details(check)
    if details is None:  # details another grader version wrote: the values still show
        return default_body(check), None, (check.details or {}).get("traceback")
    if shown.body is None:
        return default_body(check), None, details.traceback
    macros = MACROS_NAME.format(type=check.type) if shown.macros is not None else None
    return shown.body(check, details), macros, details.traceback


def check_view(check: CheckResult) -> dict[str, Any]:
    """Everything the report shows for one check."""
    shown = view_of(check.type)
    body, macros, traceback = _body(check)
    override = check.override
    return {
        # a passed check without an instructor override is one row of its question's
        # "passed" table; only the others get a block with their details
        "compact": check.status == "pass" and override is None,
        "id": check.id,
        "type": check.type,
        "type_word": shown.word,
        "breakable": shown.breakable,
        "status": check.status,
        "status_word": STATUS_WORDS.get(check.status, check.status),
        "score": fmt_points(check.score),
        "max_score": fmt_points(check.max_score),
        "message": check.message,
        "message_dir": text_direction(check.message),
        "prompt": shorten(check.prompt or "", PROMPT_CHARS),
        "body": body,
        "macros": macros,
        "traceback": trim_traceback(str(traceback)) if traceback else "",
        "override": None
        if override is None
        else {
            "comment": override.comment,
            "comment_dir": text_direction(override.comment),
            "original_score": fmt_points(override.original_score),
            "original_status": STATUS_WORDS.get(override.original_status, override.original_status),
            # a mark the grader only suggested reads as such, not as "awaiting review"
            "suggested": override.original_status == "manual",
        },
    }


def _question_status(checks: Sequence[CheckResult], score: float, top: float) -> str:
    statuses = {c.status for c in checks}
    if "manual" in statuses:
        return "manual"
    if "error" in statuses and percent(score, top) < 99.9:
        return "error"
    return {"full": "pass", "some": "partial", "none": "fail"}[level(score, top)]


def question_view(question: QuestionResult) -> dict[str, Any]:
    """A question's header data and its checks."""
    score, top = question.score, question.max_score
    status = _question_status(question.checks, score, top)
    views = [check_view(c) for c in question.checks]
    return {
        "id": question.id,
        "title": question.title,
        "score": fmt_points(score),
        "max_score": fmt_points(top),
        "percent": percent(score, top),
        "level": level(score, top),
        "status": status,
        "status_word": STATUS_WORDS.get(status, status),
        "checks": views,
        "passed": [c for c in views if c["compact"]],
        "detailed": [c for c in views if not c["compact"]],
        "weight": float(top),
    }


def execution_view(execution: ExecutionReport) -> dict[str, Any]:
    """Execution problems in words, with short tracebacks."""
    failures = []
    for f in execution.failures:
        words = FAILURE_WORDS.get(f.kind, f.kind)
        if f.kind == "limit" and execution.limit_hit:
            words = f"hit a resource limit ({execution.limit_hit})"
        line = f"{f.ename}: {f.evalue}" if f.ename and f.evalue else f.ename or f.evalue
        failures.append(
            {
                "cell": f.cell,
                "kind": f.kind,
                "words": words,
                "line": shorten(line, 300),
                "traceback": trim_traceback(f.traceback or ""),
            }
        )
    flags = []
    if execution.timed_out:
        flags.append("The notebook timed out: it ran longer than the time limit.")
    if execution.kernel_died:
        flags.append("The Python kernel died while running the notebook (often out of memory).")
    if execution.limit_hit:
        flags.append(f"A resource limit was hit: {execution.limit_hit}.")
    not_run = list(execution.cells_not_run)
    return {
        "notebook": execution.notebook,
        "cells_total": execution.cells_total,
        "cells_run": execution.cells_run,
        "duration": f"{float(execution.duration_s or 0):.1f}",
        "failures": failures,
        "flags": flags,
        "not_run": cell_ranges(not_run),
        "n_not_run": len(not_run),
        "warnings": [shorten(str(w), 300) for w in execution.warnings][:10],
        "module": execution.module,
        "module_problem": execution.module_problem,
        "problems": bool(
            failures
            or flags
            or not_run
            or execution.module_problem
            or (execution.notebook is None and not execution.module)
        ),
    }


def _provenance_text(prov: Provenance) -> str:
    """The reproducibility appendix as aligned ``label  value`` lines."""
    seeds = ", ".join(f"{k}={v}" for k, v in sorted(prov.seeds.items()))
    rows = [
        ("Submission SHA-256", prov.submission_sha256),
        ("Rubric SHA-256", prov.rubric_sha256),
        ("Reference SHA-256", prov.reference_sha256),
        ("Grader version", prov.grader_version),
        ("Python", prov.python),
        ("PyTorch", prov.torch),
        ("NumPy", prov.numpy),
        ("Seeds", seeds or "none"),
        ("Graded at", prov.graded_at),
    ]
    return "\n".join(f"{label:<20}{shorten(str(value), 90)}" for label, value in rows)


def student_view(record: GradeRecord, sandbox_warning: str | None = None) -> dict[str, Any]:
    """The whole report's view of one student's record (instructor overrides are the
    checks' ``override``); ``sandbox_warning`` is shown in a box under the header."""
    questions = [question_view(q) for q in record.questions]
    total_weight = sum(q["weight"] for q in questions) or 1.0
    for q in questions:
        q["bar_width"] = round(100.0 * q["weight"] / total_weight, 2) if q["weight"] else 0
    score_bar = (
        score_bar_svg(
            [
                (
                    q["id"],
                    f"{q['score']}/{q['max_score']}",
                    q["weight"] / total_weight,
                    q["percent"] / 100,
                    q["level"],
                )
                for q in questions
            ]
        )
        if questions
        else ""
    )
    graded_at = record.provenance.graded_at
    manual = [c for q in questions for c in q["checks"] if c["status"] == "manual"]
    return {
        "student": record.student,
        "student_dir": text_direction(record.student),
        "assignment": record.assignment,
        "title": record.title or record.assignment,
        "course": record.course,
        "score": fmt_points(record.score),
        "max_score": fmt_points(record.max_score),
        "percent": f"{percent(record.score, record.max_score):.1f}",
        "level": level(record.score, record.max_score),
        "date": graded_at[:10] if graded_at else "",
        "questions": questions,
        "score_bar": score_bar,
        "execution": execution_view(record.execution),
        "n_manual": len(manual),
        "manual_points": fmt_points(sum(float(c["max_score"]) for c in manual if c["max_score"])),
        "provenance_text": _provenance_text(record.provenance),
        "sandbox_warning": sandbox_warning,
        "has_overrides": any(c["override"] for q in questions for c in q["checks"]),
        "late": late_view(record),
        "name": str(info_of(record).get("name") or ""),
        "integrity": integrity_notes(record),
    }


def integrity_notes(record: GradeRecord) -> list[str]:
    """The result's integrity messages a student sees (changed given cells)."""
    given = (record.integrity or {}).get("given_cells")
    if isinstance(given, dict) and given.get("message"):
        return [str(given["message"])]
    return []


def late_view(record: GradeRecord) -> dict[str, Any] | None:
    """The report's separate line for lateness: the penalty (or its waiver), the
    evidence and what an instructor should check; None when the record has no late
    section."""
    late = late_of(record)
    if late is None:
        return None
    when = late.submitted_at or "no time given"
    if late.time_source:
        when += f" ({late.time_source})"
    return {
        "penalty": fmt_points(late.penalty),
        "percent": f"{late.penalty_percent:g}",
        "submitted": when,
        "due": late.due or "",
        "units": late.units_late,
        "waived": late.waived,
        "comment": late.comment,
        "flags": list(late.flags),
        # an on-time hand-in gets no line: only a penalty, a waiver or an LMS late mark
        "shown": late.penalty > 0 or late.waived or late.lms_late_mark,
    }
