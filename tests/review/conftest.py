"""Shared fixtures of the review tests: three HW3 students graded once per session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from grader.cli import main

ROOT = Path(__file__).resolve().parents[2]
#: A correct submission, one with a long written answer, one whose cell crashes.
STUDENTS = ("ansari_seed", "crash_in_cell", "solution")


@pytest.fixture(scope="session")
def graded_three(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``grade`` of three HW3 students (no reports), once per session; copy it before
    changing it (:func:`out`)."""
    base = tmp_path_factory.mktemp("hw3-three")
    subs = base / "submissions"
    for student in STUDENTS:
        shutil.copytree(ROOT / "submissions" / "hw3" / student, subs / student)
    out = base / "graded"
    assert main([str(subs), "--rubric", "hw3", "--out", str(out), "--no-reports", "--quiet"]) == 0
    return out


@pytest.fixture
def out(graded_three: Path, tmp_path: Path) -> Path:
    """A private copy of the graded folder."""
    target = tmp_path / "graded"
    shutil.copytree(graded_three, target)
    return target
