"""The class summary: score distribution, pass rates, hardest checks, problems, reviews."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from grader.checks.base import read_details, view_of
from grader.models import CheckResult, GradeRecord
from grader.report.figures import histogram_svg, question_bars_svg
from grader.report.format import fmt_compact, fmt_points, got_of, percent, shorten
from grader.report.render import render_template
from grader.report.view import FAILURE_WORDS

HARDEST = 6
WRONG_ANSWERS = 3
SHORT_ANSWER = 48


def _wrong_keys(check: CheckResult) -> list[tuple[str, bool]]:
    """How one failing check was wrong: short comparable strings, and whether each is code.

    The check type's view says so where it can (each wrong row of a table); otherwise a
    short answer is its own key and any other the message.
    """
    wrong, details = view_of(check.type).wrong, read_details(check)
    keys = wrong(check, details) if wrong is not None and details is not None else None
    if keys is not None:
        return keys
    got = got_of(check)
    if got is not None:
        text = fmt_compact(got, 200)
        if len(text) <= SHORT_ANSWER:  # a number or a short list: the answer itself
            return [(text, True)]
    return [(shorten(check.message, 90), False)]


def _execution_problem(record: GradeRecord) -> dict[str, str] | None:
    ex = record.execution
    words = []
    if ex.notebook is None and not ex.module:
        words.append("no notebook run")
    if ex.module_problem:
        words.append(ex.module_problem[:80])
    if ex.timed_out:
        words.append("timed out")
    if ex.kernel_died:
        words.append("kernel died")
    if ex.limit_hit:
        words.append(f"limit: {ex.limit_hit}")
    errors = [f for f in ex.failures if f.kind == "error"]
    if errors:
        words.append(f"{len(errors)} cell error{'s' if len(errors) > 1 else ''}")
    if not words:
        return None
    first = ex.failures[0] if ex.failures else None
    detail = ""
    if first is not None:
        detail = f"cell {first.cell} {FAILURE_WORDS.get(first.kind, '')}"
        line = ": ".join(x for x in (first.ename, first.evalue) if x)
        detail += f" — {shorten(line, 90)}" if line else ""
    if ex.cells_not_run:
        detail += f" ({len(ex.cells_not_run)} cells not run)"
    return {"student": record.student, "problem": ", ".join(words), "detail": detail}


def summary_view(
    records: Sequence[GradeRecord], similarity: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """All figures and tables of the summary, as plain data (instructor overrides are
    already in the records' scores); ``similarity`` is the batch's
    (:func:`grader.integrity.similarity_section`), None to leave its section out."""
    first = records[0] if records else None
    pcts = [percent(r.score, r.max_score) for r in records]
    totals = [float(r.score) for r in records]
    stats: dict[str, str] = {"Students": str(len(records))}
    if records:
        stats.update(
            {
                "Mean": f"{fmt_points(statistics.fmean(totals))} ({statistics.fmean(pcts):.1f}%)",
                "Median": f"{fmt_points(statistics.median(totals))} "
                f"({statistics.median(pcts):.1f}%)",
                "Std. dev.": fmt_points(statistics.pstdev(totals)),
                "Lowest / highest": f"{fmt_points(min(totals))} / {fmt_points(max(totals))}",
                "Maximum": fmt_points(max(float(r.max_score) for r in records)),
            }
        )
    # per question
    q_order: list[str] = []
    q_info: dict[str, dict[str, Any]] = {}
    c_order: list[str] = []
    c_info: dict[str, dict[str, Any]] = {}
    review: list[dict[str, str]] = []
    for r in records:
        pending = []
        for q in r.questions:
            if q.id not in q_info:
                q_order.append(q.id)
                q_info[q.id] = {"id": q.id, "title": q.title, "fracs": [], "max": q.max_score}
            q_info[q.id]["fracs"].append(percent(q.score, q.max_score))
            for c in q.checks:
                if c.id not in c_info:
                    c_order.append(c.id)
                    c_info[c.id] = {
                        "id": c.id,
                        "question": q.id,
                        "type": c.type.replace("_", " "),
                        "status": Counter(),
                        "fracs": [],
                        "wrong": Counter(),
                        "n_wrong": 0,
                    }
                info = c_info[c.id]
                info["status"][c.status] += 1
                info["fracs"].append(percent(c.score, c.max_score))
                if c.status in ("fail", "partial", "error"):
                    info["n_wrong"] += 1
                    for key in _wrong_keys(c):
                        info["wrong"][key] += 1
                if c.status == "manual":
                    pending.append(f"{c.id} ({fmt_points(c.score)}/{fmt_points(c.max_score)})")
        if pending:
            review.append(
                {"student": r.student, "checks": ", ".join(pending), "n": str(len(pending))}
            )
    questions = []
    for qid in q_order:
        info = q_info[qid]
        fr = info["fracs"]
        questions.append(
            {
                "id": qid,
                "title": info["title"],
                "max": fmt_points(info["max"]),
                "mean_pct": statistics.fmean(fr) if fr else 0.0,
                "full_pct": 100.0 * sum(1 for f in fr if f >= 99.9) / len(fr) if fr else 0.0,
                "n": len(fr),
            }
        )
    checks = []
    for cid in c_order:
        info = c_info[cid]
        n = sum(info["status"].values())
        checks.append(
            {
                "id": cid,
                "question": info["question"],
                "type": info["type"],
                "n": n,
                "pass": info["status"]["pass"],
                "partial": info["status"]["partial"],
                "fail": info["status"]["fail"],
                "error": info["status"]["error"],
                "manual": info["status"]["manual"],
                "pass_pct": 100.0 * info["status"]["pass"] / n if n else 0.0,
                "mean_pct": statistics.fmean(info["fracs"]) if info["fracs"] else 0.0,
                "wrong": [
                    {"answer": k, "code": code, "count": v}
                    for (k, code), v in info["wrong"].most_common(WRONG_ANSWERS)
                ],
                "n_wrong": info["n_wrong"],
                "graded": info["status"]["manual"] < n,
            }
        )
    hardest = sorted(
        (c for c in checks if c["graded"] and c["n_wrong"]), key=lambda c: (c["mean_pct"], c["id"])
    )[:HARDEST]
    problems = [p for p in (_execution_problem(r) for r in records) if p is not None]
    return {
        "course": first.course if first else "",
        "title": (first.title or first.assignment) if first else "",
        "assignment": first.assignment if first else "",
        "stats": stats,
        "histogram": histogram_svg(pcts) if records else None,
        "question_bars": question_bars_svg(
            [q["id"] for q in questions],
            [q["mean_pct"] for q in questions],
            [q["full_pct"] for q in questions],
        )
        if questions
        else None,
        "questions": questions,
        "checks": checks,
        "hardest": hardest,
        "problems": problems,
        "review": review,
        "n_review": sum(int(x["n"]) for x in review),
        "date": max((r.provenance.graded_at[:10] for r in records), default=""),
        "similarity": similarity,
        "given_cells": _given_cells(records),
    }


def _given_cells(records: Sequence[GradeRecord]) -> list[dict[str, str]]:
    """Students whose submission changed the assignment's given cells."""
    out = []
    for r in records:
        given = (r.integrity or {}).get("given_cells")
        if isinstance(given, Mapping):
            out.append({"student": r.student, "message": str(given.get("message", ""))})
    return out


def summary_html(
    records: Sequence[GradeRecord], similarity: Mapping[str, Any] | None = None
) -> str:
    """The summary as an HTML string."""
    return render_template("summary.html.j2", s=summary_view(records, similarity))


def render_summary(
    records: Sequence[GradeRecord],
    out_pdf: Path,
    similarity: Mapping[str, Any] | None = None,
) -> None:
    """Render the class summary of ``records`` to ``out_pdf``.

    Shows the score distribution (histogram), per-question mean scores and full-mark
    rates (bar chart and table), per-check pass rates, the hardest checks with the most
    common wrong answers, submissions that crashed or timed out, and the written answers
    awaiting instructor review; then the integrity section: pairs of similar submissions
    with their matching excerpts side by side (``similarity``, by default read from the
    folder of ``out_pdf``) and changed given cells.
    """
    from grader.integrity import similarity_section
    from grader.report.pdf import html_to_pdf  # WeasyPrint only when it is rendered

    if similarity is None:
        similarity = similarity_section(out_pdf.parent)
    html_to_pdf(summary_html(records, similarity), out_pdf)
