"""The batch dashboard: ``OUT/index.html``, readable offline from the folder.

A sortable, filterable table of students (total, each question, late penalty, flags,
answers awaiting review, a link to each PDF), the per-check item analysis (pass rate,
the most common wrong answers), the cells that crash most, and the score histogram.
Every ``grade`` run writes it (:func:`write_dashboard`), and so does every decision in
the review page, which also serves it with live state.

Safety: the page is rendered with autoescaping, its data block is JSON with ``<``,
``>``, ``&`` and the line separators escaped (so a student's ``</script>`` stays text),
and its Content-Security-Policy allows only its own inline script and style (by hash):
a student's string can neither end the data block nor run as script.

Extension point (integrity reports, issue 18, use it for the similar submissions:
:func:`similarity_provider`): a **section** is plain data,

    {"id": "similarity", "title": "Similar submissions",
     "note": "optional text under the title",
     "columns": ["Student A", "Student B", "Similarity"],
     "rows": [["alice", "bob", "0.93"], ...]}

rendered (escaped) as a table after the built-in ones. Pass sections to
:func:`dashboard_html`/:func:`write_dashboard` as ``sections=``, or register a provider
once, ``SECTION_PROVIDERS.append(fn)``, where ``fn(records, out_dir)`` returns a section
or None; every dashboard (offline and live) then includes it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import statistics
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2

from grader.atomic import write_text_atomic
from grader.gradebook import penalty, unreviewed
from grader.lms import info_of, late_of
from grader.models import GradeRecord
from grader.report.format import fmt_points, percent
from grader.review.queue import awaits_review

TEMPLATES = Path(__file__).resolve().parent / "templates"
INDEX_FILE = "index.html"
#: Called with (records, out_dir) by every dashboard; each returns a section or None.
SectionProvider = Callable[[Sequence[GradeRecord], Path], Mapping[str, Any] | None]
SECTION_PROVIDERS: list[SectionProvider] = []
HISTOGRAM_BINS = 10


@cache
def asset(name: str) -> str:
    """The text of a static asset shipped with the package (script or stylesheet)."""
    return (TEMPLATES / name).read_text(encoding="utf-8")


def csp_hash(text: str) -> str:
    """A CSP source for an inline script or style with exactly this text."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


def content_security_policy(scripts: Sequence[str], styles: Sequence[str]) -> str:
    """The policy of every page: nothing but these inline scripts and styles, images
    only as ``data:`` (PNG/JPEG figures), forms only to the page's own origin."""
    script_src = " ".join(csp_hash(s) for s in scripts) or "'none'"
    style_src = " ".join(csp_hash(s) for s in styles) or "'none'"
    return (
        "default-src 'none'; "
        f"script-src {script_src}; "
        f"style-src {style_src}; "
        "img-src data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    )


@cache
def env() -> jinja2.Environment:
    """The review package's Jinja environment (autoescape on, strict undefined)."""
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["pts"] = fmt_points
    return environment


def json_for_html(data: Any) -> str:
    """JSON safe inside ``<script type="application/json">``: no ``<``, ``>`` or ``&``
    (so no ``</script>`` or ``<!--``) and no raw U+2028/U+2029."""
    text = json.dumps(data, ensure_ascii=False, sort_keys=True, default=str)
    for raw, escaped in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(raw, escaped)
    return text


def offline_report_href(student: str) -> str:
    """The link to a student's PDF from ``OUT/index.html`` (relative to the folder)."""
    from grader.report.render import report_file_name

    return "reports/" + quote(report_file_name(student))


def _question_order(records: Sequence[GradeRecord]) -> list[tuple[str, str, float]]:
    seen: dict[str, tuple[str, str, float]] = {}
    for r in records:
        for q in r.questions:
            seen.setdefault(q.id, (q.id, q.title, float(q.max_score)))
    return list(seen.values())


def _crashes(records: Sequence[GradeRecord]) -> list[dict[str, Any]]:
    """Which cells fail most: (cell, how many students, kinds, most common error)."""
    by_cell: dict[int, list[tuple[str, str]]] = {}
    for r in records:
        for f in r.execution.failures:
            by_cell.setdefault(f.cell, []).append((f.kind, f.ename))
    rows = []
    for cell, hits in by_cell.items():
        kinds = Counter(k for k, _ in hits)
        errors = Counter(e for _, e in hits if e)
        rows.append(
            {
                "cell": cell,
                "count": len(hits),
                "kinds": ", ".join(f"{k} ×{n}" for k, n in kinds.most_common()),
                "error": errors.most_common(1)[0][0] if errors else "",
            }
        )
    return sorted(rows, key=lambda x: (-x["count"], x["cell"]))


def _histogram(pcts: Sequence[float]) -> dict[str, Any]:
    """Counts of students per 10 % band (the last band includes 100 %), and bar heights
    for the SVG (in a 100-unit tall box)."""
    counts = [0] * HISTOGRAM_BINS
    for p in pcts:
        counts[min(int(p // (100 / HISTOGRAM_BINS)), HISTOGRAM_BINS - 1)] += 1
    top = max(counts, default=0) or 1
    bars = [
        {
            "label": f"{i * 10}–{i * 10 + 10}%",
            "count": n,
            "x": i * 30 + 5,
            "height": round(90 * n / top, 1),
            "y": round(95 - 90 * n / top, 1),
        }
        for i, n in enumerate(counts)
    ]
    return {"bars": bars, "width": HISTOGRAM_BINS * 30 + 10}


def _item_analysis(records: Sequence[GradeRecord]) -> list[dict[str, Any]]:
    """Per check: pass rate, mean, answers awaiting review, errors and the most common
    wrong answers (keyed as the class summary keys them: the check type's own rule)."""
    from grader.report.summary import WRONG_ANSWERS, _wrong_keys

    order: dict[str, dict[str, Any]] = {}
    for r in records:
        for q in r.questions:
            for c in q.checks:
                info = order.setdefault(
                    c.id,
                    {"id": c.id, "question": q.id, "type": c.type.replace("_", " "),
                     "status": Counter(), "fracs": [], "wrong": Counter()},
                )  # fmt: skip
                info["status"][c.status] += 1
                info["fracs"].append(percent(c.score, c.max_score))
                # an instructor's mark on a written answer is not a "wrong answer"
                if c.status in ("fail", "partial", "error") and not awaits_review(c):
                    for key in _wrong_keys(c):
                        info["wrong"][key] += 1
    rows = []
    for info in order.values():
        n = sum(info["status"].values())
        rows.append(
            {
                "id": info["id"],
                "question": info["question"],
                "type": info["type"],
                "n": n,
                "pass_pct": round(100.0 * info["status"]["pass"] / n, 1) if n else 0.0,
                "mean_pct": round(statistics.fmean(info["fracs"]), 1) if info["fracs"] else 0.0,
                "manual": info["status"]["manual"],
                "error": info["status"]["error"],
                "wrong": [
                    {"answer": k, "code": code, "count": v}
                    for (k, code), v in info["wrong"].most_common(WRONG_ANSWERS)
                ],
            }
        )
    return rows


def dashboard_data(
    records: Sequence[GradeRecord],
    *,
    report_href: Callable[[str], str] = offline_report_href,
    sections: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """Everything the dashboard shows, as plain data (``records`` with the overrides
    applied)."""
    questions = _question_order(records)
    students = []
    for r in sorted(records, key=lambda r: r.student):
        info = info_of(r)
        late = late_of(r)
        scores = {q.id: q.score for q in r.questions}
        flags = [*info.get("flags", ()), *(late.flags if late else ())]
        if r.execution.timed_out:
            flags.append("timed out")
        if r.execution.kernel_died:
            flags.append("kernel died")
        students.append(
            {
                "student": r.student,
                "name": str(info.get("name") or ""),
                "total": r.score,
                "max": r.max_score,
                "pct": round(percent(r.score, r.max_score), 1),
                "q": [scores.get(qid) for qid, _, _ in questions],
                "late": penalty(r),
                "flags": [str(f) for f in flags],
                "unreviewed": unreviewed(r),
                "report": report_href(r.student),
            }
        )
    pcts = [round(percent(r.score, r.max_score), 1) for r in records]
    first = records[0] if records else None
    return {
        "title": (first.title or first.assignment) if first else "",
        "course": first.course if first else "",
        "questions": [{"id": q, "title": t, "max": m} for q, t, m in questions],
        "students": students,
        "checks": _item_analysis(records),
        "crashes": _crashes(records),
        "histogram": _histogram(pcts),
        "mean": round(statistics.fmean(pcts), 1) if pcts else None,
        "n_unreviewed": sum(s["unreviewed"] for s in students),
        "sections": [_section(s) for s in sections],
    }


def _section(section: Mapping[str, Any]) -> dict[str, Any]:
    """An extension section as plain strings (everything escaped when rendered)."""
    return {
        "id": str(section.get("id", "")),
        "title": str(section.get("title", "")),
        "note": str(section.get("note", "")),
        "columns": [str(c) for c in section.get("columns", ())],
        "rows": [[("" if v is None else str(v)) for v in row] for row in section.get("rows", ())],
    }


def similarity_provider(records: Sequence[GradeRecord], out_dir: Path) -> Mapping[str, Any] | None:
    """The batch's similar submissions (``OUT/similarity.json``, issue 18's
    :func:`grader.integrity.similarity.similarity_section`) as a dashboard section:
    flagged pairs first; None when the folder has no similarity results."""
    from grader.integrity.similarity import similarity_section

    found = similarity_section(out_dir)
    if found is None:
        return None
    rows = [
        [p.get("student_a"), p.get("student_b"), f"{float(p.get('similarity') or 0):.2f}",
         "yes" if flagged else "", p.get("evidence", "")]
        for flagged, pairs in ((True, found["flagged"]), (False, found["reported"]))
        for p in pairs
    ]  # fmt: skip
    note = (
        f"{found['n_pairs']} pair(s) of {found['students']} students at or above "
        f"{found['floor']}; flagged at {found['threshold']} (OUT/similarity.csv). "
        "Similarity never changes a score."
    )
    return {
        "id": "similarity",
        "title": "Similar submissions",
        "note": note,
        "columns": ["Student A", "Student B", "Similarity", "Flagged", "Evidence"],
        "rows": rows,
    }


SECTION_PROVIDERS.append(similarity_provider)


def provided_sections(records: Sequence[GradeRecord], out_dir: Path) -> list[Mapping[str, Any]]:
    """The sections of every registered :data:`SECTION_PROVIDERS` entry."""
    found = []
    for provider in SECTION_PROVIDERS:
        section = provider(records, out_dir)
        if section is not None:
            found.append(section)
    return found


def dashboard_html(
    records: Sequence[GradeRecord],
    *,
    report_href: Callable[[str], str] = offline_report_href,
    sections: Sequence[Mapping[str, Any]] = (),
    nav: Mapping[str, str] | None = None,
    live: bool = False,
) -> str:
    """The dashboard page; ``nav`` (label → href) adds the review page's links, ``live``
    says the numbers are current (served by ``grade review``)."""
    data = dashboard_data(records, report_href=report_href, sections=sections)
    script, style = asset("dashboard.js"), asset("review.css")
    return (
        env()
        .get_template("dashboard.html.j2")
        .render(
            d=data,
            data_json=json_for_html(data),
            script=script,
            style=style,
            csp=content_security_policy([script], [style]),
            nav=dict(nav or {}),
            live=live,
        )
    )


def dashboard_csp() -> str:
    """The Content-Security-Policy of the dashboard page."""
    return content_security_policy([asset("dashboard.js")], [asset("review.css")])


def write_dashboard(
    out_dir: Path,
    records: Sequence[GradeRecord],
    *,
    sections: Sequence[Mapping[str, Any]] | None = None,
) -> Path:
    """Write ``OUT/index.html`` for ``records`` (overrides applied); returns its path.
    ``sections`` default to those of :data:`SECTION_PROVIDERS`."""
    if sections is None:
        sections = provided_sections(records, out_dir)
    path = out_dir / INDEX_FILE
    write_text_atomic(path, dashboard_html(records, sections=sections))
    return path
