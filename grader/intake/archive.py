"""Unpack a submissions ``.zip`` safely, outside the sandbox.

An LMS download is untrusted input unpacked by the grader itself (no sandbox around
it), so every entry is checked before a byte is written: no absolute paths or ``..``
components (path escapes), no symlink entries, and caps on the total unpacked size, the
number of entries and the depth of nested zips (a zip inside a zip is unpacked into a
folder of the same name without ``.zip``).
"""

from __future__ import annotations

import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from grader.errors import SubmissionsError


@dataclass(frozen=True)
class ArchiveLimits:
    """Caps on what one download may unpack to (nested zips included)."""

    max_bytes: int = 2 * 1024**3
    max_entries: int = 20_000
    max_depth: int = 3


class _Budget:
    """What is left of the caps, shared by the outer zip and every nested one."""

    def __init__(self, limits: ArchiveLimits) -> None:
        self.limits = limits
        self.bytes = 0
        self.entries = 0


def _safe_name(archive: Path, name: str) -> PurePosixPath:
    """The entry's relative path, or an error naming the archive and the entry."""
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise SubmissionsError(
            f"{archive}: entry {name!r} points outside the archive (a path escape); "
            "refusing to unpack it - re-download the submissions or remove that entry"
        )
    return path


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


#: A zip entry's stored time: (year, month, day, hour, minute, second), no time zone.
ZipTime = tuple[int, int, int, int, int, int]


def entry_times(archive: Path) -> dict[str, ZipTime]:
    """Each file entry's stored modification time (``ZipInfo.date_time``), by name."""
    with zipfile.ZipFile(archive) as zf:
        return {i.filename: i.date_time for i in zf.infolist() if not i.is_dir()}


def extract(archive: Path, dest: Path, limits: ArchiveLimits = ArchiveLimits()) -> Path:
    """Unpack ``archive`` into ``dest`` (created), nested zips included; returns ``dest``.

    Raises :class:`SubmissionsError` naming the archive and the entry for a damaged
    zip, a path escape, a symlink entry, or a cap exceeded. Nothing is graded from a
    partly unpacked archive: the caller grades only after this returns.
    """
    dest.mkdir(parents=True, exist_ok=True)  # an empty zip still gives a folder
    _extract(archive, dest, _Budget(limits), depth=1)
    return dest


def _extract(archive: Path, dest: Path, budget: _Budget, depth: int) -> None:
    if depth > budget.limits.max_depth:
        raise SubmissionsError(
            f"{archive}: zips nested more than {budget.limits.max_depth} deep; unpack it "
            "yourself and pass the folder"
        )
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise SubmissionsError(f"{archive}: not a readable zip ({exc})") from exc
    nested: list[Path] = []
    with zf:
        for info in zf.infolist():
            rel = _safe_name(archive, info.filename)
            if _is_symlink(info):
                raise SubmissionsError(
                    f"{archive}: entry {info.filename!r} is a symlink; refusing to unpack it"
                )
            budget.entries += 1
            budget.bytes += info.file_size
            if budget.entries > budget.limits.max_entries:
                raise SubmissionsError(
                    f"{archive}: more than {budget.limits.max_entries} entries; refusing it"
                )
            if budget.bytes > budget.limits.max_bytes:
                raise SubmissionsError(
                    f"{archive}: unpacks to more than {budget.limits.max_bytes} bytes; refusing it"
                )
            target = dest.joinpath(*rel.parts)
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            # read in chunks and count what is really written: a zip may lie about sizes
            written = 0
            with zf.open(info) as src, target.open("wb") as out:
                while chunk := src.read(1 << 20):
                    written += len(chunk)
                    if written > info.file_size or budget.bytes > budget.limits.max_bytes:
                        raise SubmissionsError(
                            f"{archive}: entry {info.filename!r} unpacks to more than it "
                            "declares; refusing it"
                        )
                    out.write(chunk)
            if target.suffix.lower() == ".zip":
                nested.append(target)
    for inner in nested:
        folder = inner.with_suffix("")
        _extract(inner, folder, budget, depth + 1)
        inner.unlink()
