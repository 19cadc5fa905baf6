"""The records intake hands to the batch: one :class:`Handin` per student."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Layout = Literal["canvas", "moodle", "gradescope", "classroom", "plain"]
LAYOUTS: tuple[Layout, ...] = ("canvas", "moodle", "gradescope", "classroom", "plain")


@dataclass(frozen=True)
class Handin:
    """One student's files as an LMS delivered them.

    ``student`` is the LMS's stable id (Canvas user id, Moodle participant id,
    Gradescope submitter id, Classroom user name; for plain folders the folder or file
    name). ``files`` maps the name the grader gives each file (the student's original
    name, e.g. ``hw1.ipynb``) to where it lies. ``late_mark`` is the LMS's own "late"
    flag (Canvas's ``LATE_``); ``submitted_at`` an ISO 8601 time from the LMS's metadata
    and ``time_source`` where it came from (``metadata`` or ``file time``).
    """

    student: str
    name: str
    files: tuple[tuple[str, Path], ...]
    late_mark: bool = False
    submitted_at: str | None = None
    time_source: str | None = None
    single_file: bool = False  # plain layout: a single file directly in the folder
