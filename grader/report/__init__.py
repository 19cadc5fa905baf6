"""Feedback reports: a PDF per student and a class summary, rendered with Jinja2 and WeasyPrint.

Reports take :class:`grader.models.GradeRecord`s (read from ``results/<student>.json`` by
:func:`load_records`); nothing here imports the grading pipeline, so ``grade report DIR``
re-renders from disk without running code. The names below are imported when first used:
check types import this package's formatting helpers (:mod:`grader.report.format`), and
grading must not pay for Jinja and the renderer.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "load_records": "grader.report.render",
    "render_all": "grader.report.render",
    "render_student_report": "grader.report.render",
    "render_summary": "grader.report.summary",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """``grader.report.render_all`` and the other entry points, imported on first use."""
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
