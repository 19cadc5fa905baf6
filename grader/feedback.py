"""Feedback files for an LMS's bulk upload, from the rendered reports (``OUT/reports``).

* Moodle ("Upload multiple feedback files in a zip"): the zip holds one folder per
  participant named as in Moodle's own download, ``Full Name_<id>_assignsubmission_file_/``,
  with the student's report inside;
* Canvas: a folder of ``<Canvas user id>.pdf``, one per student, to attach per student.

Runs no student code and renders nothing: reports missing on disk are listed so the
instructor can run ``grade report DIR`` first.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from pathlib import Path

from grader.atomic import write_atomic
from grader.lms import info_of
from grader.models import GradeRecord


def _report(out_dir: Path, record: GradeRecord) -> Path:
    from grader.report.render import report_file_name

    return out_dir / "reports" / report_file_name(record.student)


def _students(records: Sequence[GradeRecord]) -> list[GradeRecord]:
    # no report is rendered for a roster student who handed in nothing
    return [r for r in records if not info_of(r).get("no_submission")]


def moodle_feedback_zip(
    records: Sequence[GradeRecord], out_dir: Path, out_zip: Path
) -> tuple[int, list[str]]:
    """Write Moodle's feedback-files zip; returns (files written, students without a
    rendered report)."""
    missing: list[str] = []
    buffer = io.BytesIO()
    count = 0
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for record in _students(records):
            pdf = _report(out_dir, record)
            if not pdf.is_file():
                missing.append(record.student)
                continue
            name = str(info_of(record).get("name") or record.student).replace("/", " ")
            folder = f"{name}_{record.student}_assignsubmission_file_"
            zf.write(pdf, f"{folder}/{record.assignment}-feedback.pdf")
            count += 1
    write_atomic(out_zip, buffer.getvalue())
    return count, missing


def canvas_feedback_folder(
    records: Sequence[GradeRecord], out_dir: Path, folder: Path
) -> tuple[int, list[str]]:
    """Copy each report to ``folder/<Canvas user id>.pdf``; returns (files written,
    students without a rendered report)."""
    from grader.report.render import report_file_name

    folder.mkdir(parents=True, exist_ok=True)
    missing: list[str] = []
    count = 0
    for record in _students(records):
        pdf = _report(out_dir, record)
        if not pdf.is_file():
            missing.append(record.student)
            continue
        write_atomic(folder / report_file_name(record.student), pdf.read_bytes())
        count += 1
    return count, missing
