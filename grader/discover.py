"""A folder of submissions → ``Submission`` records.

Either one sub-folder per student (the folder name is the student id) or single files
directly inside (one per student, the id from the file name, as LMS downloads come).
"""

from __future__ import annotations

from pathlib import Path

from grader.errors import SubmissionsError
from grader.models import Submission

_IGNORED = {"__MACOSX", ".DS_Store", "Thumbs.db", "desktop.ini"}


def _visible(path: Path) -> bool:
    return not path.name.startswith(".") and path.name not in _IGNORED


def files_under(folder: Path) -> tuple[Path, ...]:
    # rglob does not follow directory symlinks; symlinked files are kept as entries so the
    # copy step can refuse them with a message instead of silently reading outside.
    return tuple(
        sorted(p for p in folder.rglob("*") if (p.is_file() or p.is_symlink()) and _visible(p))
    )


def discover(root: Path) -> list[Submission]:
    """Every submission under ``root``, sorted by student id."""
    if not root.is_dir():
        raise SubmissionsError(f"{root}: no such folder of submissions")
    found: dict[str, Submission] = {}
    for entry in sorted(root.iterdir()):
        if not _visible(entry):
            continue
        if entry.is_dir() and not entry.is_symlink():
            sub = Submission(student=entry.name, path=entry, files=files_under(entry))
        elif entry.is_file() or entry.is_symlink():
            sub = Submission(student=entry.stem, path=entry, files=(entry,), is_single_file=True)
        else:
            continue
        if sub.student in found:
            raise SubmissionsError(
                f"{root}: two submissions for student {sub.student!r} "
                f"({found[sub.student].path.name} and {entry.name}); keep one"
            )
        found[sub.student] = sub
    if not found:
        raise SubmissionsError(f"{root}: holds no submissions (expected one folder per student)")
    return list(found.values())
