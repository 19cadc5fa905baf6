"""Moodle's "Download all submissions": ``Full Name_12345_assignsubmission_file_/`` folders.

The number is the participant id (stable for the assignment); the files inside keep
their names. Online text comes as ``..._assignsubmission_onlinetext_`` folders, read the
same way.
"""

from __future__ import annotations

import re
from pathlib import Path

from grader.intake.records import Handin

PATTERN = re.compile(r"^(?P<name>.+)_(?P<pid>\d+)_assignsubmission_(?P<plugin>[a-z]+)_?$")


def matches(root: Path) -> bool:
    """Moodle's positive marker: a folder named ``..._assignsubmission_...``."""
    return any(p.is_dir() and PATTERN.match(p.name) for p in root.iterdir())


def read(root: Path) -> list[Handin]:
    """One :class:`Handin` per participant id (its file and online-text folders merged)."""
    files: dict[str, dict[str, Path]] = {}
    names: dict[str, str] = {}
    for folder in sorted(root.iterdir()):
        m = PATTERN.match(folder.name)
        if m is None or not folder.is_dir():
            continue
        names.setdefault(m["pid"], m["name"])
        mine = files.setdefault(m["pid"], {})
        for path in sorted(folder.rglob("*")):
            if path.is_file() or path.is_symlink():
                mine.setdefault(path.relative_to(folder).as_posix(), path)
    return [
        Handin(student=pid, name=names[pid], files=tuple(sorted(files[pid].items())))
        for pid in sorted(files)
    ]


def strays(root: Path) -> list[str]:
    """Top-level entries that are no participant's folder (not graded: said in a warning)."""
    return sorted(p.name for p in root.iterdir() if not (p.is_dir() and PATTERN.match(p.name)))
