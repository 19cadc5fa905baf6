"""Intake: an LMS download (folder or ``.zip``) → one :class:`Handin` per student →
:class:`grader.models.Submission` folders the pipeline grades.

Each layout lives in its own module with ``matches(root)`` (its positive marker only)
and ``read(root)``: :mod:`~grader.intake.canvas`, :mod:`~grader.intake.moodle`,
:mod:`~grader.intake.gradescope`, :mod:`~grader.intake.classroom`; anything else is
``plain`` (today's rule, :mod:`grader.discover`). A zip is unpacked by
:mod:`~grader.intake.archive` into the output folder's ``.intake/`` (never into the
sandbox); LMS layouts are then copied to ``.intake/students/<id>/<original name>`` so
each student's files carry the names the rubric expects.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from grader.discover import discover
from grader.errors import SubmissionsError
from grader.intake import archive, canvas, classroom, gradescope, moodle
from grader.intake.records import LAYOUTS, Handin, Layout
from grader.models import Submission

__all__ = ["LAYOUTS", "Handin", "Intake", "Layout", "detect", "read_submissions"]

_READERS: dict[str, tuple[Callable[[Path], bool], Callable[[Path], list[Handin]]]] = {
    "canvas": (canvas.matches, canvas.read),
    "moodle": (moodle.matches, moodle.read),
    "gradescope": (gradescope.matches, gradescope.read),
    "classroom": (classroom.matches, classroom.read),
}
# Layouts whose download has a fixed shape, so anything else in it is worth a warning.
_STRAYS: dict[str, Callable[[Path], list[str]]] = {
    "moodle": moodle.strays,
    "gradescope": gradescope.strays,
}
INTAKE_DIR = ".intake"


@dataclass(frozen=True)
class Intake:
    """What was found: the layout, each student's hand-in and the gradable submissions
    (same order, by student id), and warnings for the terminal."""

    layout: Layout
    handins: tuple[Handin, ...]
    submissions: tuple[Submission, ...]
    warnings: tuple[str, ...] = ()


def detect(root: Path) -> Layout:
    """The one layout whose marker ``root`` carries, else ``plain``; an error naming
    both when two match (pass ``--layout`` to choose)."""
    found = [name for name, (matches, _) in _READERS.items() if matches(root)]
    if len(found) > 1:
        raise SubmissionsError(
            f"{root}: looks like both {found[0]} and {found[1]} downloads; "
            f"pass --layout {found[0]} or --layout {found[1]}"
        )
    return found[0] if found else "plain"  # type: ignore[return-value]


def _top(folder: Path) -> Path:
    """The folder itself, or its one sub-folder when a zip wraps everything in one."""
    entries = [p for p in folder.iterdir() if not p.name.startswith((".", "__MACOSX"))]
    if (
        len(entries) == 1
        and entries[0].is_dir()
        and not any(m(folder) for m, _ in _READERS.values())
    ):
        return entries[0]
    return folder


def _file_time(handin: Handin, root: Path, times: dict[str, archive.ZipTime]) -> Handin:
    """A hand-in's time from its zip entries' stored file times (the latest), when the
    layout's metadata gave none."""
    stamps = []
    for _, path in handin.files:
        rel = path.relative_to(root).as_posix() if path.is_relative_to(root) else None
        if rel is not None and rel in times:
            y, mo, d, h, mi, sec = times[rel]
            stamps.append(datetime(y, mo, d, h, mi, sec, tzinfo=UTC))
    if handin.submitted_at is not None or not stamps:
        return handin
    return replace(handin, submitted_at=max(stamps).isoformat(), time_source="file time")


def read_submissions(source: Path, out_dir: Path, layout: Layout | None = None) -> Intake:
    """Read ``source`` (a folder or a ``.zip``) as ``layout`` (detected when None).

    Raises :class:`SubmissionsError` naming the file for a missing source, an unsafe or
    damaged zip, an ambiguous layout, or two hand-ins with the same id.
    """
    if not source.exists():
        raise SubmissionsError(f"{source}: no such folder of submissions (nor a .zip download)")
    work = out_dir / INTAKE_DIR
    warnings: list[str] = []
    times: dict[str, archive.ZipTime] = {}
    root = source
    if source.is_file():
        if source.suffix.lower() != ".zip":
            raise SubmissionsError(f"{source}: pass a folder of submissions or a .zip download")
        unpacked = work / "unpacked"
        shutil.rmtree(unpacked, ignore_errors=True)
        archive.extract(source, unpacked)
        root = _top(unpacked)
        prefix = root.relative_to(unpacked).as_posix()
        for name, when in archive.entry_times(source).items():
            inside = prefix != "." and name.startswith(prefix + "/")
            times[name[len(prefix) + 1 :] if inside else name] = when
    chosen: Layout = layout or detect(root)
    if chosen == "plain":
        subs = tuple(discover(root))
        handins = tuple(
            Handin(student=s.student, name=s.student, files=(), single_file=s.is_single_file)
            for s in subs
        )
        return Intake("plain", handins, subs, ())
    matches, reader = _READERS[chosen]
    if layout is not None and not matches(root):
        warnings.append(f"{source}: does not carry the {chosen} marker; read as {chosen} anyway")
    handins = tuple(_file_time(h, root, times) for h in reader(root))
    stray = _STRAYS[chosen](root) if chosen in _STRAYS else []
    if stray:
        shown = ", ".join(stray[:5]) + (f" and {len(stray) - 5} more" if len(stray) > 5 else "")
        warnings.append(f"{source}: not graded, as they belong to no {chosen} submission: {shown}")
    if any(h.time_source == "file time" for h in handins):
        warnings.append(
            "submission times taken from the zip's file times (the LMS gives no timestamps "
            "in this layout); check them before applying late penalties"
        )
    seen: set[str] = set()
    for h in handins:
        if h.student in seen:
            raise SubmissionsError(f"{source}: two hand-ins for student id {h.student!r}")
        seen.add(h.student)
    students = work / "students"
    shutil.rmtree(students, ignore_errors=True)
    subs_list = []
    for h in handins:
        folder = students / h.student
        files = []
        for name, path in h.files:
            if path.is_symlink():
                raise SubmissionsError(f"{path}: a symlink in the submissions; remove it")
            target = folder / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            files.append(target)
        folder.mkdir(parents=True, exist_ok=True)
        subs_list.append(Submission(student=h.student, path=folder, files=tuple(sorted(files))))
    if not handins:
        raise SubmissionsError(f"{source}: holds no {chosen} submissions")
    return Intake(chosen, handins, tuple(subs_list), tuple(warnings))
