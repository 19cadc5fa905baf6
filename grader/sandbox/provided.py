"""The instructor's provided files (a rubric's ``files:``), put into a submission's scratch.

Each :class:`~grader.sandbox.records.ProvidedFile` appears at its target path relative
to the notebook or module being run (where the student had it), read-only:

* with mount namespaces (bubblewrap, cold or warm), as a read-only bind mount of the
  instructor's file or folder on a placeholder made here (nothing is copied; writes
  fail with "read-only file system", the mount point cannot be removed or renamed);
* without them (``--sandbox=off``, or permissive without bubblewrap), as a copy whose
  files are read-only by permission only, and a warning says so.

A student's own file of the same name is removed from the scratch copy (a warning says
it was not used) unless the file is ``replaceable``: then the student's file is used
and the provided one is not put in.

A target may instead be an absolute path under ``/content/`` or ``/kaggle/input/`` (where
Colab and Kaggle notebooks find their data): such a file is bound read-only at exactly
that path inside the sandbox, never placed in the scratch. That needs bubblewrap (cold
sessions only: a warm template's namespace is already made); without it the run is
refused, since the grader never writes into the machine's own ``/content`` or ``/kaggle``.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from grader.sandbox.cgroups import format_bytes
from grader.sandbox.errors import SandboxError
from grader.sandbox.mounts import copy_plain
from grader.sandbox.records import ProvidedFile

Bind = tuple[Path, Path]
"""(the instructor's file or folder, its placeholder in the scratch copy)."""

AbsoluteBind = tuple[Path, str]
"""(the instructor's file or folder, its absolute target inside the sandbox)."""

#: The roots an absolute target may lie under: Colab's and Kaggle's data folders.
ABSOLUTE_ROOTS = (PurePosixPath("/content"), PurePosixPath("/kaggle/input"))


@dataclass(frozen=True)
class Placed:
    """What :func:`place_provided` did: the read-only binds the session must make (none
    when the files were copied), and warnings for the student's result."""

    binds: tuple[Bind, ...] = ()
    warnings: tuple[str, ...] = ()
    #: Files bound at absolute targets (``/content/...``, ``/kaggle/input/...``).
    absolute: tuple[AbsoluteBind, ...] = ()


def target_path(target: str) -> PurePosixPath:
    """A provided file's target as a POSIX path: relative (inside the notebook's folder)
    or absolute strictly under one of :data:`ABSOLUTE_ROOTS`; ValueError when it is
    another absolute path or climbs out (``..``)."""
    path = PurePosixPath(target)
    bad = ".." in path.parts or not path.parts or path == PurePosixPath(".")
    if path.is_absolute() and not any(root in path.parents for root in ABSOLUTE_ROOTS):
        bad = True
    if bad:
        raise ValueError(
            f"provided file target {target!r} must be a relative path inside the notebook's "
            "folder, or an absolute path under /content/ or /kaggle/input/ (as on Colab "
            "and Kaggle)"
        )
    return path


def is_absolute_target(target: str) -> bool:
    """True for a target bound at an absolute path (``/content/...``, ``/kaggle/input/...``)."""
    return PurePosixPath(target).is_absolute()


def provided_size(sources: Sequence[Path]) -> int:
    """The total size in bytes of the provided files and folders (symlinks not followed)."""
    total = 0
    for src in sources:
        if src.is_dir() and not src.is_symlink():
            for root, _dirs, files in os.walk(src):
                for name in files:
                    total += os.lstat(os.path.join(root, name)).st_size
        else:
            total += os.lstat(src).st_size
    return total


def _unreadable_by_others(src: Path) -> Path | None:
    """The first file or folder under ``src`` that uid 65534 could not read, or None."""
    items = [src]
    if src.is_dir():
        for root, dirs, files in os.walk(src):
            items += [Path(root, n) for n in (*dirs, *files)]
    for item in items:
        mode = os.lstat(item).st_mode
        need = stat.S_IROTH | (stat.S_IXOTH if stat.S_ISDIR(mode) else 0)
        if mode & need != need:
            return item
    return None


def place_provided(
    provided: Sequence[ProvidedFile],
    scratch: Path,
    base: Path,
    *,
    copy: bool,
    max_bytes: int,
    other_uid: bool = False,
) -> Placed:
    """Put ``provided`` into the scratch copy ``scratch``, relative to ``base`` (the
    folder of the notebook or module found in it).

    ``copy``: no mount namespace here, so copy them (read-only by permission) instead of
    making placeholders for read-only binds. ``other_uid``: the student's code runs as
    another uid, which must be able to read the files. Raises
    :class:`~grader.errors.SandboxError` for a missing or unreadable provided file, or
    files larger than ``max_bytes`` together: the instructor's mistake, not the
    student's.
    """
    if not provided:
        return Placed()
    sources = [Path(os.path.abspath(p.source)) for p in provided]
    for p, src in zip(provided, sources, strict=True):
        if not src.exists():
            raise SandboxError(f"provided file {src} (target {p.target}) does not exist")
    total = provided_size(sources)
    if total > max_bytes:
        raise SandboxError(
            f"the provided files take {format_bytes(total)}, more than the "
            f"{format_bytes(max_bytes)} limit (limits: provided_mb)"
        )
    if other_uid and not copy:
        for src in sources:
            bad = _unreadable_by_others(src)
            if bad is not None:
                raise SandboxError(
                    f"provided file {bad} is not readable by other users, and the student's "
                    f"code runs as uid 65534: chmod -R o+rX {src}"
                )
    binds: list[Bind] = []
    absolute: list[AbsoluteBind] = []
    warnings: list[str] = []
    scratch = Path(os.path.abspath(scratch))
    for p, src in zip(provided, sources, strict=True):
        rel = target_path(p.target)
        if rel.is_absolute():
            if copy:
                raise SandboxError(
                    f"the rubric's files: binds {src} at {p.target}, which needs bubblewrap "
                    "(mount namespaces), and the grader never writes into this machine's "
                    f"/{rel.parts[1]}: grade with the sandbox on "
                    "(strict, or permissive where bubblewrap runs), or give that entry a "
                    "target relative to the notebook"
                )
            absolute.append((src, rel.as_posix()))
            continue
        dst = Path(os.path.abspath(base / rel))
        if scratch != dst and scratch not in dst.parents:
            raise ValueError(f"provided file target {p.target!r} leaves the submission folder")
        shown = dst.relative_to(scratch).as_posix()
        if p.replaceable and os.path.lexists(dst):
            continue  # the student's own file is used
        shadowed = _clear_way(scratch, dst)
        if shadowed:
            warnings.append(
                f"your {shadowed} was not used: the instructor provides {shown} "
                "(read-only); keep your own files under other names"
            )
        dst.parent.mkdir(parents=True, exist_ok=True)
        if copy:
            _copy_read_only(src, dst)
        elif src.is_dir():
            dst.mkdir()
            binds.append((src, dst))
        else:
            dst.touch()
            binds.append((src, dst))
    if copy:
        warnings.append(
            "the provided files were copied into the submission's folder, not mounted "
            "read-only (no mount namespaces here): they are read-only by permission only"
        )
    return Placed(tuple(binds), tuple(warnings), tuple(absolute))


def _clear_way(scratch: Path, dst: Path) -> str | None:
    """Remove whatever of the student's is at ``dst`` or blocks its folders (a file where
    a folder is needed); the student's path removed, relative to ``scratch``, or None."""
    here = scratch
    for part in dst.relative_to(scratch).parts[:-1]:
        here = here / part
        if os.path.lexists(here) and not here.is_dir():
            here.unlink()
            return here.relative_to(scratch).as_posix()
    if not os.path.lexists(dst):
        return None
    if dst.is_dir() and not dst.is_symlink():
        shutil.rmtree(dst)
    else:
        dst.unlink()
    return dst.relative_to(scratch).as_posix()


def _copy_read_only(src: Path, dst: Path) -> None:
    if src.is_dir():
        copy_plain(src, dst)
        for root, _dirs, files in os.walk(dst):
            for name in files:
                os.chmod(os.path.join(root, name), 0o444)
    else:
        shutil.copyfile(src, dst)
        os.chmod(dst, 0o444)
