"""Render results records to PDF: one Jinja environment, one font configuration, one CSS.

The templates live in ``templates/`` at the project root (override with the
``GRADER_TEMPLATES`` environment variable); each check type's macro file lives with its
check module and is found through the check registry. Autoescaping is on for every
template: student names, answers and tracebacks are untrusted text.

Speed comes from reuse: the Jinja templates are compiled once, the stylesheet is parsed
once against one shared :class:`weasyprint.text.fonts.FontConfiguration`, and
:class:`ReportPool` spreads students over worker processes, each warmed when it starts,
skipping reports whose inputs have not changed since they were written.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import multiprocessing
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from grader.atomic import sweep, write_json_atomic
from grader.checks.base import REGISTRY
from grader.errors import GraderError
from grader.models import ExecutionReport, GradeRecord, Provenance
from grader.overrides import OVERRIDES_FILE, with_overrides
from grader.report.format import fmt_points, fmt_shape
from grader.report.view import MACROS_NAME, student_view
from grader.results import read_results, record_to_dict

TEMPLATES_DIR = Path(
    os.environ.get("GRADER_TEMPLATES", Path(__file__).resolve().parents[2] / "templates")
)
CSS_FILE = "report.css"
UA_FILE = "ua.css"


def _check_macros() -> dict[str, Path]:
    """Each check type's macro file by its Jinja name (``checks/<type>.html.j2``)."""
    return {
        MACROS_NAME.format(type=name): entry.view.macros
        for name, entry in REGISTRY.items()
        if entry.view is not None and entry.view.macros is not None
    }


def _load_check_macros(name: str) -> tuple[str, str, Callable[[], bool]] | None:
    """Jinja's source of a check type's macro file, looked up in the registry when asked
    (a type registered after the environment was made is found too)."""
    path = _check_macros().get(name)
    if path is None:
        return None
    mtime = path.stat().st_mtime

    def uptodate() -> bool:  # the same file, unchanged, still registered under the name
        return _check_macros().get(name) == path and path.stat().st_mtime == mtime

    return path.read_text(encoding="utf-8"), str(path), uptodate


@lru_cache(maxsize=1)
def jinja_env() -> jinja2.Environment:
    """The shared Jinja environment (autoescape on, undefined names are errors)."""
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(
            [
                jinja2.FileSystemLoader(TEMPLATES_DIR),
                jinja2.FunctionLoader(_load_check_macros),
            ]
        ),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pts"] = fmt_points
    env.filters["shape"] = fmt_shape
    return env


def report_html(record: GradeRecord, *, show_sandbox_warning: str | None = None) -> str:
    """The report of one record as an HTML string."""
    view = student_view(record, sandbox_warning=show_sandbox_warning)
    return jinja_env().get_template("report.html.j2").render(r=view)


def render_student_report(
    record: GradeRecord, out_pdf: Path, *, show_sandbox_warning: str | None = None
) -> None:
    """Render one student's record to ``out_pdf``.

    ``show_sandbox_warning``, when given, is printed in a red box under the header (for
    batches graded without the sandbox). Only what the record holds is shown: expected
    values appear only where present and the check's ``show_expected`` is not false.
    """
    from grader.report.pdf import html_to_pdf  # WeasyPrint only where a PDF is written

    html_to_pdf(report_html(record, show_sandbox_warning=show_sandbox_warning), out_pdf)


def load_records(results_dir: Path, *, overrides_file: Path | None = None) -> list[GradeRecord]:
    """Read ``results_dir/*.json`` (sorted by student) and apply instructor overrides.

    ``overrides_file`` defaults to ``results_dir.parent / "overrides.yaml"`` and is used
    only when it exists. Raises :class:`grader.results.ResultFormatError` naming a file
    that is not a result, and :class:`grader.overrides.OverridesError` for an invalid
    overrides file or an entry naming an unknown student or check.
    """
    records = read_results(results_dir)
    path = overrides_file if overrides_file is not None else results_dir.parent / OVERRIDES_FILE
    return with_overrides(records, path)


def _render_job(args: tuple[GradeRecord, Path, str | None]) -> Path:
    record, out_pdf, warning = args
    render_student_report(record, out_pdf, show_sandbox_warning=warning)
    return out_pdf


def _safe_name(student: str) -> str:
    name = "".join(c if c.isalnum() or c in "-_.@" else "_" for c in student).strip(".")
    return name or "student"


def report_file_name(student: str) -> str:
    """The file name of a student's report in ``OUT/reports`` (exports look it up)."""
    return f"{_safe_name(student)}.pdf"


# ---------------------------------------------------------------- incremental rendering

INDEX_FILE = ".index.json"
SUMMARY_KEY = "\x00summary"  # not a possible student id in the index (NUL)


def templates_digest() -> str:
    """SHA-256 over every template and stylesheet in ``TEMPLATES_DIR`` and every check
    type's macro file (names and bytes)."""
    digest = hashlib.sha256()
    files = [
        (path.name, path)
        for path in sorted(TEMPLATES_DIR.iterdir())
        if path.is_file() and path.suffix in {".j2", ".css", ".html"}
    ]
    files += sorted(_check_macros().items())
    for name, path in files:
        digest.update(name.encode() + b"\x00" + path.read_bytes() + b"\x00")
    return digest.hexdigest()


def _record_key(record: GradeRecord, context: str) -> str:
    """What a report depends on: the record (overrides applied) and the render context."""
    data = json.dumps(
        record_to_dict(record), sort_keys=True, ensure_ascii=False, separators=(",", ":")
    )
    return hashlib.sha256((context + "\x00" + data).encode("utf-8")).hexdigest()


def _read_index(path: Path) -> dict[str, dict[str, str]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    entries = data.get("reports") if isinstance(data, dict) else None
    if not isinstance(entries, dict):
        return {}
    return {
        str(k): v
        for k, v in entries.items()
        if isinstance(v, dict) and isinstance(v.get("key"), str) and isinstance(v.get("pdf"), str)
    }


def _write_index(path: Path, entries: dict[str, dict[str, str]]) -> None:
    """Write the index atomically and durably (:func:`grader.atomic.write_json_atomic`)."""
    write_json_atomic(path, {"version": 1, "reports": entries}, indent=0)


# ---------------------------------------------------------------- worker processes


def _init_worker() -> None:
    """Warm a worker: templates compiled, CSS parsed, fonts loaded, one tiny report laid out."""
    jinja_env().get_template("report.html.j2")
    from grader.report.pdf import stylesheet, ua_stylesheet

    stylesheet()
    ua_stylesheet()
    with tempfile.TemporaryDirectory() as tmp:
        render_student_report(_WARM_UP, Path(tmp) / "warm-up.pdf")


#: The tiny record a report worker lays out once when it starts.
_WARM_UP = GradeRecord(
    student="warm-up",
    assignment="warm-up",
    title="",
    course="",
    score=0.0,
    max_score=1.0,
    questions=(),
    execution=ExecutionReport.not_run(),
    provenance=Provenance("", "", "", "", "", "", ""),
)


class RenderedPaths(list[Path]):
    """The paths a render wrote or kept, plus which were rendered and which were current."""

    def __init__(self, paths: list[Path], rendered: list[Path], skipped: list[Path]) -> None:
        super().__init__(paths)
        self.rendered = rendered
        self.skipped = skipped


class ReportPool:
    """Render student reports in warm worker processes while the caller goes on grading.

    ``ReportPool(out_dir, rubric_meta, jobs)``: reports go to ``out_dir/reports/<student>.pdf``.
    ``submit(record)`` hands over one finished :class:`GradeRecord` (overrides already
    applied, as :func:`load_records` does) and returns at once with a future of the PDF
    path;
    ``close()`` waits for every report, saves the index and returns the paths in
    submission order. Use it as a context manager to close it on every exit.

    ``rubric_meta`` (e.g. ``{"course": …, "title": …}``) fills fields a record left empty.
    ``jobs`` ≥ 1 starts that many worker processes (``spawn``: safe beside threads of the
    grading loop) on the first report that needs rendering, each warmed by its initializer
    (templates, CSS, fonts, one tiny report); ``jobs`` = 0 renders in the calling process
    inside ``submit``.

    Incremental: ``out_dir/reports/.index.json`` maps each student to a hash of its record
    and of the render context (templates and CSS, grader version, sandbox warning,
    ``rubric_meta``); a record whose hash matches and whose PDF exists is not rendered
    again unless ``force``. The index is written atomically on ``close()``.
    """

    def __init__(
        self,
        out_dir: Path,
        rubric_meta: Mapping[str, Any] | None = None,
        jobs: int = 1,
        *,
        show_sandbox_warning: str | None = None,
        force: bool = False,
    ) -> None:
        from grader import __version__

        self.reports_dir = Path(out_dir) / "reports"
        self.reports_dir.mkdir(parents=True, exist_ok=True)
        sweep((self.reports_dir,))  # what a killed render left half-written
        self.rubric_meta = dict(rubric_meta or {})
        self.jobs = max(int(jobs), 0)
        self.warning = show_sandbox_warning
        self.force = force
        self.context = json.dumps(
            [templates_digest(), __version__, show_sandbox_warning, self.rubric_meta],
            sort_keys=True,
            ensure_ascii=False,
            default=str,
        )
        self.index_path = self.reports_dir / INDEX_FILE
        self.index = _read_index(self.index_path)
        self._executor: ProcessPoolExecutor | None = None
        self._futures: list[tuple[str, str, Path, Future[Path]]] = []
        self.rendered: list[Path] = []
        self.skipped: list[Path] = []
        self.keys: dict[str, str] = {}
        self._closed = False
        self._result: RenderedPaths | None = None

    def __enter__(self) -> ReportPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close(raise_errors=exc[0] is None)

    def _pool(self) -> ProcessPoolExecutor:
        if self._executor is None:
            self._executor = ProcessPoolExecutor(
                max_workers=self.jobs,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
            )
        return self._executor

    def submit(self, record: GradeRecord) -> Future[Path]:
        """Queue one student's report; returns a future of its PDF path."""
        if self._closed:
            raise GraderError("ReportPool.submit after close()")
        empty = {k: v for k, v in self.rubric_meta.items() if getattr(record, k, None) == ""}
        full = dataclasses.replace(record, **empty) if empty else record
        student = full.student
        out_pdf = self.reports_dir / f"{_safe_name(student)}.pdf"
        key = _record_key(full, self.context)
        self.keys[student] = key
        entry = self.index.get(student)
        future: Future[Path]
        if (
            not self.force
            and entry is not None
            and entry["key"] == key
            and entry["pdf"] == out_pdf.name
            and out_pdf.is_file()
        ):
            future = Future()
            future.set_result(out_pdf)
            self.skipped.append(out_pdf)
        elif self.jobs == 0:
            future = Future()
            try:
                future.set_result(_render_job((full, out_pdf, self.warning)))
            except Exception as exc:  # reported by close()
                future.set_exception(exc)
        else:
            future = self._pool().submit(_render_job, (full, out_pdf, self.warning))
        self._futures.append((student, key, out_pdf, future))
        return future

    def close(self, *, raise_errors: bool = True) -> RenderedPaths:
        """Wait for every queued report, save the index, return the paths in order.

        Raises :class:`GraderError` naming the students whose report failed (after the
        others are finished and indexed) unless ``raise_errors`` is false.
        """
        if self._result is not None:
            return self._result
        errors: list[str] = []
        paths: list[Path] = []
        skipped = set(self.skipped)
        try:
            for student, key, out_pdf, future in self._futures:
                try:
                    future.result()
                except Exception as exc:  # collected, raised below
                    errors.append(f"{student}: {type(exc).__name__}: {exc}")
                    self.index.pop(student, None)
                    continue
                paths.append(out_pdf)
                if out_pdf not in skipped:
                    self.rendered.append(out_pdf)
                self.index[student] = {"key": key, "pdf": out_pdf.name}
        finally:
            if self._executor is not None:
                self._executor.shutdown(wait=True, cancel_futures=True)
                self._executor = None
            if not self._closed:
                _write_index(self.index_path, self.index)
            self._closed = True
        self._result = RenderedPaths(paths, list(self.rendered), list(self.skipped))
        if errors and raise_errors:
            raise GraderError("report rendering failed for " + "; ".join(errors))
        return self._result


def render_all(
    records: Sequence[GradeRecord],
    out_dir: Path,
    jobs: int = 1,
    *,
    show_sandbox_warning: str | None = None,
    force: bool = False,
) -> RenderedPaths:
    """Render every student's report and the class summary from ``records`` (overrides
    already applied, as :func:`load_records` gives them), without running student code.

    Writes ``out_dir/reports/<student>.pdf`` and ``out_dir/summary.pdf``. Reports whose
    record, templates, grader version and warning are unchanged since they were written
    are kept (see :class:`ReportPool`; ``force`` renders all). With ``jobs > 1`` reports
    are rendered in that many worker processes, otherwise in this one. Returns the
    paths: the student reports in student order, then the summary; ``.rendered`` and
    ``.skipped`` list which reports were rendered and which kept. The gradebook is not
    written here: :func:`grader.gradebook.write_gradebook` takes the same records.
    """
    from grader.report.summary import render_summary

    records = sorted(records, key=lambda r: r.student)
    with ReportPool(
        out_dir,
        jobs=min(jobs, len(records)) if jobs > 1 else 0,
        show_sandbox_warning=show_sandbox_warning,
        force=force,
    ) as pool:
        for record in records:
            pool.submit(record)
        written = pool.close()
    summary_pdf = out_dir / "summary.pdf"
    # the integrity section reads similarity.json: a new comparison re-renders it
    similarity = out_dir / "similarity.json"
    similarity_sha = (
        hashlib.sha256(similarity.read_bytes()).hexdigest() if similarity.is_file() else ""
    )
    summary_key = hashlib.sha256(
        (pool.context + json.dumps(sorted(pool.keys.items())) + similarity_sha).encode("utf-8")
    ).hexdigest()
    entry = pool.index.get(SUMMARY_KEY)
    if force or not summary_pdf.is_file() or entry is None or entry["key"] != summary_key:
        render_summary(list(records), summary_pdf)
        pool.index[SUMMARY_KEY] = {"key": summary_key, "pdf": "../" + summary_pdf.name}
        _write_index(pool.index_path, pool.index)
    return RenderedPaths([*written, summary_pdf], written.rendered, written.skipped)


def render_template(name: str, **context: Any) -> str:
    """Render another template of ``templates/`` (used by the summary)."""
    return jinja_env().get_template(name).render(**context)


__all__ = [
    "RenderedPaths",
    "ReportPool",
    "jinja_env",
    "load_records",
    "render_all",
    "render_student_report",
    "render_template",
    "report_html",
    "templates_digest",
]
