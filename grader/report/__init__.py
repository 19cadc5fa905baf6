"""Feedback reports: a PDF per student and a class summary, rendered with Jinja2 and WeasyPrint.

Reports take :class:`grader.models.GradeRecord`s (read from ``results/<student>.json`` by
:func:`load_records`); nothing here imports the grading pipeline, so ``grade report DIR``
re-renders from disk without running code.
"""

from grader.report.render import load_records, render_all, render_student_report
from grader.report.summary import render_summary

__all__ = ["load_records", "render_all", "render_student_report", "render_summary"]
