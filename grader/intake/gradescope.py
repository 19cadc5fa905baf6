"""Gradescope's "Export Submissions": ``submission_metadata.yml`` and a folder per submission.

The metadata maps each folder (``submission_123``) to its submitters (``:name:``,
``:sid:``, ``:email:``) and ``:created_at:``. It is read with ``yaml.safe_load`` (keys
written as Ruby symbols, ``:name:``, come back as strings ``":name"``). The student id
is each submitter's ``sid`` (the school's id Gradescope keeps), else the folder. A group
submission gives every member a hand-in of the same files, each graded under its own id,
so every member gets a grade; a student named in two submissions is an error.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from grader.errors import SubmissionsError
from grader.intake.records import Handin

METADATA = "submission_metadata.yml"


def matches(root: Path) -> bool:
    """Gradescope's positive marker: ``submission_metadata.yml`` at the top."""
    return (root / METADATA).is_file()


def _get(entry: Any, key: str) -> Any:
    if not isinstance(entry, dict):
        return None
    for k in (f":{key}", key):
        if k in entry:
            return entry[k]
    return None


def read(root: Path) -> list[Handin]:
    """One :class:`Handin` per submission folder named in the metadata."""
    path = root / METADATA
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise SubmissionsError(f"{path}: cannot read Gradescope's metadata ({exc})") from exc
    if not isinstance(data, dict):
        raise SubmissionsError(f"{path}: expected a mapping of submission folders")
    out: list[Handin] = []
    seen: dict[str, str] = {}
    for folder_name, entry in sorted(data.items()):
        folder = root / str(folder_name)
        submitters = _get(entry, "submitters")
        if not isinstance(submitters, list) or not submitters:
            submitters = [{}]
        created = _get(entry, "created_at")
        when = created.isoformat() if isinstance(created, datetime) else created
        files = (
            tuple(
                (p.relative_to(folder).as_posix(), p)
                for p in sorted(folder.rglob("*"))
                if p.is_file() or p.is_symlink()
            )
            if folder.is_dir()
            else ()
        )
        for member in submitters:
            student = str(_get(member, "sid") or folder_name)
            if student in seen:
                raise SubmissionsError(
                    f"{path}: student {student!r} is a submitter of both {seen[student]} and "
                    f"{folder_name}: keep the export's active submission only"
                )
            seen[student] = str(folder_name)
            out.append(
                Handin(
                    student=student,
                    name=str(_get(member, "name") or ""),
                    files=files,
                    submitted_at=None if when is None else str(when),
                    time_source=None if when is None else "metadata",
                )
            )
    return out


def strays(root: Path) -> list[str]:
    """Top-level entries the metadata names no submitter for (not graded: said in a
    warning)."""
    try:
        data = yaml.safe_load((root / METADATA).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return []  # read() reports the damaged metadata itself
    named = {str(k) for k in data} if isinstance(data, dict) else set()
    return sorted(p.name for p in root.iterdir() if p.name not in named | {METADATA})
