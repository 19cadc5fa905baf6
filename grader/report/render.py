"""Render results records to PDF: one Jinja environment, one font configuration, one CSS.

The templates live in ``templates/`` at the project root (override with the
``GRADER_TEMPLATES`` environment variable). Autoescaping is on for every template:
student names, answers and tracebacks are untrusted text.

Speed comes from reuse: the Jinja templates are compiled once, the stylesheet is parsed
once against one shared :class:`weasyprint.text.fonts.FontConfiguration`, and
``render_all`` spreads students over worker processes, each warm after its first report.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from weasyprint import CSS, HTML
from weasyprint.text.fonts import FontConfiguration

from grader.errors import GraderError
from grader.overrides import apply_overrides, check_override_targets, load_overrides
from grader.report.view import fmt_points, fmt_shape, report_view

TEMPLATES_DIR = Path(
    os.environ.get("GRADER_TEMPLATES", Path(__file__).resolve().parents[2] / "templates")
)
CSS_FILE = "report.css"
UA_FILE = "ua.css"
OVERRIDES_FILE = "overrides.yaml"


@lru_cache(maxsize=1)
def jinja_env() -> jinja2.Environment:
    """The shared Jinja environment (autoescape on, undefined names are errors)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pts"] = fmt_points
    env.filters["shape"] = fmt_shape
    return env


@lru_cache(maxsize=1)
def font_config() -> FontConfiguration:
    """The one font configuration every render in this process shares."""
    return FontConfiguration()


@lru_cache(maxsize=1)
def stylesheet() -> CSS:
    """``report.css`` parsed once against the shared font configuration."""
    return CSS(filename=str(TEMPLATES_DIR / CSS_FILE), font_config=font_config())


@lru_cache(maxsize=1)
def ua_stylesheet() -> CSS:
    """``ua.css``: the small user-agent stylesheet that replaces WeasyPrint's HTML5 one."""
    return CSS(filename=str(TEMPLATES_DIR / UA_FILE), font_config=font_config())


class _TemplateHTML(HTML):  # type: ignore[misc]
    """An HTML document styled with ``ua.css`` instead of the full HTML5 UA stylesheet.

    WeasyPrint matches every selector of its UA stylesheet against every element; the
    templates use a dozen element types, so a UA sheet for just those renders about a
    fifth faster with the same look. (``_ua_stylesheets`` is WeasyPrint's hook for this;
    should a future version stop calling it, its own UA stylesheet is used instead.)
    """

    def _ua_stylesheets(self, forms: bool = False) -> list[CSS]:
        return [ua_stylesheet()]


def html_to_pdf(html: str, out_pdf: Path) -> None:
    """Write ``html`` (one of our templates) to ``out_pdf`` with the shared CSS and fonts."""
    out_pdf.parent.mkdir(parents=True, exist_ok=True)
    document = _TemplateHTML(string=html, base_url=str(TEMPLATES_DIR))
    document.write_pdf(out_pdf, stylesheets=[stylesheet()], font_config=font_config())


def report_html(record: dict[str, Any], *, show_sandbox_warning: str | None = None) -> str:
    """The report of one record as an HTML string."""
    view = report_view(record, sandbox_warning=show_sandbox_warning)
    return jinja_env().get_template("report.html.j2").render(r=view)


def render_student_report(
    record: dict[str, Any], out_pdf: Path, *, show_sandbox_warning: str | None = None
) -> None:
    """Render one student's results record (a dict loaded from the JSON) to ``out_pdf``.

    ``show_sandbox_warning``, when given, is printed in a red box under the header (for
    batches graded without the sandbox). Only what the record holds is shown: expected
    values appear only where present and the check's ``show_expected`` is not false.
    """
    html_to_pdf(report_html(record, show_sandbox_warning=show_sandbox_warning), out_pdf)


def load_records(results_dir: Path, *, overrides_file: Path | None = None) -> list[dict[str, Any]]:
    """Read ``results_dir/*.json`` (sorted by student) and apply instructor overrides.

    ``overrides_file`` defaults to ``results_dir.parent / "overrides.yaml"`` and is used
    only when it exists. Raises :class:`grader.overrides.OverridesError` for an invalid
    file or an entry naming an unknown student or check.
    """
    records = []
    for path in sorted(results_dir.glob("*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise GraderError(f"{path}: not a valid results file ({exc})") from exc
        if not isinstance(record, dict) or "student" not in record:
            raise GraderError(f"{path}: not a results record (no 'student')")
        records.append(record)
    records.sort(key=lambda r: str(r["student"]))
    path = overrides_file if overrides_file is not None else results_dir.parent / OVERRIDES_FILE
    if path.is_file():
        overrides = load_overrides(path)
        check_override_targets(records, overrides)
        records = [apply_overrides(r, overrides) for r in records]
    return records


def _render_job(args: tuple[dict[str, Any], Path, str | None]) -> Path:
    record, out_pdf, warning = args
    render_student_report(record, out_pdf, show_sandbox_warning=warning)
    return out_pdf


def _safe_name(student: str) -> str:
    name = "".join(c if c.isalnum() or c in "-_.@" else "_" for c in student).strip(".")
    return name or "student"


def render_all(
    results_dir: Path,
    out_dir: Path,
    jobs: int = 1,
    *,
    show_sandbox_warning: str | None = None,
) -> list[Path]:
    """Re-render every report from the results on disk, without running student code.

    Reads ``results_dir/*.json``, applies ``results_dir.parent/overrides.yaml`` when it
    exists, and writes ``out_dir/reports/<student>.pdf``, ``out_dir/summary.pdf`` and
    ``out_dir/gradebook.csv`` (so the gradebook carries the overrides too). With
    ``jobs > 1`` reports are rendered in that many worker processes. Returns the paths
    written: the student reports in student order, then the summary and the gradebook.
    """
    from grader.gradebook import write_gradebook
    from grader.report.summary import render_summary

    records = load_records(results_dir)
    reports_dir = out_dir / "reports"
    reports_dir.mkdir(parents=True, exist_ok=True)
    tasks = [
        (r, reports_dir / f"{_safe_name(str(r['student']))}.pdf", show_sandbox_warning)
        for r in records
    ]
    written: list[Path]
    if jobs > 1 and len(tasks) > 1:
        with ProcessPoolExecutor(max_workers=min(jobs, len(tasks))) as pool:
            written = list(pool.map(_render_job, tasks, chunksize=max(1, len(tasks) // (4 * jobs))))
    else:
        written = [_render_job(t) for t in tasks]
    summary_pdf = out_dir / "summary.pdf"
    render_summary(records, summary_pdf)
    gradebook_csv = out_dir / "gradebook.csv"
    write_gradebook(records, gradebook_csv)
    return [*written, summary_pdf, gradebook_csv]


def render_template(name: str, **context: Any) -> str:
    """Render another template of ``templates/`` (used by the summary)."""
    return jinja_env().get_template(name).render(**context)


__all__ = [
    "font_config",
    "html_to_pdf",
    "jinja_env",
    "load_records",
    "render_all",
    "render_student_report",
    "render_template",
    "report_html",
    "stylesheet",
]
