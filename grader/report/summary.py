"""The class summary: score distribution, pass rates, hardest checks, problems, reviews."""

from __future__ import annotations

import statistics
from collections import Counter
from pathlib import Path
from typing import Any

from grader.report.figures import histogram_svg, question_bars_svg
from grader.report.render import render_template
from grader.report.view import FAILURE_WORDS, fmt_compact, fmt_points, fmt_shape, percent, shorten

HARDEST = 6
WRONG_ANSWERS = 3
SHORT_ANSWER = 48


def _wrong_keys(check: dict[str, Any]) -> list[tuple[str, bool]]:
    """How one failing check was wrong: short comparable strings, and whether each is code."""
    details = check.get("details") if isinstance(check.get("details"), dict) else {}
    assert isinstance(details, dict)
    ctype = check.get("type")
    if ctype == "shape_table" and details.get("rows"):
        keys = []
        for row in details["rows"]:
            if not isinstance(row, dict) or (row.get("shape_ok") and row.get("params_ok")):
                continue
            keys.append(
                f"row {row.get('row')} {row.get('layer', '')}: {fmt_shape(row.get('got_shape'))}, "
                f"{fmt_compact(row.get('got_params'), 20)} params"
            )
        return [(k, True) for k in keys]
    if ctype == "model" and details.get("parts"):
        return [
            (f"{p.get('name')}: {shorten(str(p.get('message', '')), 70)}", False)
            for p in details["parts"]
            if isinstance(p, dict) and not p.get("ok")
        ]
    if "got" in check and check["got"] is not None and ctype != "text":
        got = fmt_compact(check["got"], 200)
        if len(got) <= SHORT_ANSWER:  # a number or a short list: the answer itself
            return [(got, True)]
    return [(shorten(str(check.get("message", "")), 90), False)]


def _execution_problem(record: dict[str, Any]) -> dict[str, str] | None:
    ex = record.get("execution") or {}
    words = []
    if ex.get("notebook") is None and not ex.get("module"):
        words.append("no notebook run")
    if ex.get("module_problem"):
        words.append(str(ex["module_problem"])[:80])
    if ex.get("timed_out"):
        words.append("timed out")
    if ex.get("kernel_died"):
        words.append("kernel died")
    if ex.get("limit_hit"):
        words.append(f"limit: {ex['limit_hit']}")
    failures = [f for f in ex.get("failures", []) if isinstance(f, dict)]
    errors = [f for f in failures if f.get("kind") == "error"]
    if errors:
        words.append(f"{len(errors)} cell error{'s' if len(errors) > 1 else ''}")
    if not words:
        return None
    first = failures[0] if failures else None
    detail = ""
    if first is not None:
        detail = f"cell {first.get('cell')} {FAILURE_WORDS.get(str(first.get('kind')), '')}"
        line = ": ".join(
            x for x in (str(first.get("ename") or ""), str(first.get("evalue") or "")) if x
        )
        detail += f" — {shorten(line, 90)}" if line else ""
    not_run = ex.get("cells_not_run") or []
    if not_run:
        detail += f" ({len(not_run)} cells not run)"
    return {"student": str(record.get("student")), "problem": ", ".join(words), "detail": detail}


def summary_view(records: list[dict[str, Any]]) -> dict[str, Any]:
    """All figures and tables of the summary, as plain data."""
    first = records[0] if records else {}
    pcts = [percent(r.get("score", 0), r.get("max_score", 0)) for r in records]
    totals = [float(r.get("score", 0)) for r in records]
    stats: dict[str, str] = {"Students": str(len(records))}
    if records:
        stats.update(
            {
                "Mean": f"{fmt_points(statistics.fmean(totals))} ({statistics.fmean(pcts):.1f}%)",
                "Median": f"{fmt_points(statistics.median(totals))} "
                f"({statistics.median(pcts):.1f}%)",
                "Std. dev.": fmt_points(statistics.pstdev(totals)),
                "Lowest / highest": f"{fmt_points(min(totals))} / {fmt_points(max(totals))}",
                "Maximum": fmt_points(max(float(r.get("max_score", 0)) for r in records)),
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
        for q in r.get("questions", []):
            qid = str(q.get("id"))
            if qid not in q_info:
                q_order.append(qid)
                q_info[qid] = {
                    "id": qid,
                    "title": str(q.get("title", "")),
                    "fracs": [],
                    "max": q.get("max_score", 0),
                }
            q_info[qid]["fracs"].append(percent(q.get("score", 0), q.get("max_score", 0)))
            for c in q.get("checks", []):
                cid = str(c.get("id"))
                if cid not in c_info:
                    c_order.append(cid)
                    c_info[cid] = {
                        "id": cid,
                        "question": qid,
                        "type": str(c.get("type", "")).replace("_", " "),
                        "status": Counter(),
                        "fracs": [],
                        "wrong": Counter(),
                        "n_wrong": 0,
                    }
                info = c_info[cid]
                status = str(c.get("status"))
                info["status"][status] += 1
                info["fracs"].append(percent(c.get("score", 0), c.get("max_score", 0)))
                if status in ("fail", "partial", "error"):
                    info["n_wrong"] += 1
                    for key in _wrong_keys(c):
                        info["wrong"][key] += 1
                if status == "manual":
                    mark = f"{fmt_points(c.get('score', 0))}/{fmt_points(c.get('max_score', 0))}"
                    pending.append(f"{cid} ({mark})")
        if pending:
            review.append(
                {
                    "student": str(r.get("student")),
                    "checks": ", ".join(pending),
                    "n": str(len(pending)),
                }
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
        "course": str(first.get("course", "")),
        "title": str(first.get("title") or first.get("assignment", "")),
        "assignment": str(first.get("assignment", "")),
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
        "date": max(
            (str((r.get("provenance") or {}).get("graded_at") or "")[:10] for r in records),
            default="",
        ),
    }


def summary_html(records: list[dict[str, Any]]) -> str:
    """The summary as an HTML string."""
    return render_template("summary.html.j2", s=summary_view(records))


def render_summary(records: list[dict[str, Any]], out_pdf: Path) -> None:
    """Render the class summary of ``records`` (results dicts) to ``out_pdf``.

    Shows the score distribution (histogram), per-question mean scores and full-mark
    rates (bar chart and table), per-check pass rates, the hardest checks with the most
    common wrong answers, submissions that crashed or timed out, and the written answers
    awaiting instructor review.
    """
    from grader.report.pdf import html_to_pdf  # WeasyPrint only when it is rendered

    html_to_pdf(summary_html(records), out_pdf)
