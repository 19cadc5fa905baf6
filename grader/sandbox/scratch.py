"""The scratch copy of a submission, and the notebook or module found in it.

Each stage (notebook, module) runs on a fresh copy of the student's files. Symbolic links
are refused, never followed. The file to run is found by the name the handout asks for,
tolerating the usual misnamings (one notebook under another name, a module inside the
one folder of an unzipped archive) with a warning, never guessed among several.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from grader.sandbox.records import SubmissionFiles


@dataclass(frozen=True)
class Located:
    """The notebook or module file found in the scratch copy, or why there is none."""

    path: Path | None
    problem: str | None
    warnings: tuple[str, ...] = ()


def copy_to_scratch(files: SubmissionFiles, scratch: Path) -> list[str]:
    """Copy the student's files into ``scratch``; symlinks are refused, never followed."""
    warnings = []
    for rel in files.paths:
        path = files.root / rel
        if path.is_symlink():
            warnings.append(f"{rel} is a symbolic link and was not copied: submit real files")
            continue
        target = scratch / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    return warnings


def locate_notebook(files: SubmissionFiles, wanted: str, scratch: Path) -> Located:
    """Find the notebook to grade in the scratch copy, tolerating the usual misnamings."""
    if files.single_file:
        name = Path(files.paths[0]).name
        if Path(name).suffix.lower() != ".ipynb":
            return Located(None, f"{name} is not a Jupyter notebook: submit {wanted}")
        return Located(scratch / name, None)
    exact = scratch / wanted
    if exact.is_file():
        return Located(exact, None)
    notebooks = sorted(p for p in scratch.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    if len(notebooks) == 1:
        found = notebooks[0].relative_to(scratch)
        return Located(
            notebooks[0],
            None,
            (f"graded {found}: the handout asks for the notebook to be named {wanted}",),
        )
    present = ", ".join(
        str(p.relative_to(scratch)) for p in sorted(scratch.rglob("*")) if p.is_file()
    )
    if not notebooks:
        return Located(
            None,
            f"no notebook in the submission: expected {wanted} (found: {present or 'nothing'})",
        )
    names = ", ".join(str(p.relative_to(scratch)) for p in notebooks)
    return Located(None, f"several notebooks ({names}) and none named {wanted}: keep one")


def locate_module(wanted: str, scratch: Path) -> Located:
    """Find the module to import in the scratch copy (``layers.py``), or say what is there.

    A single-file submission of that name is the module itself; in a folder the module
    is taken at the top level, or from the one sub-folder that holds it (an unzipped
    archive), never guessed from other file names.
    """
    exact = scratch / wanted
    if exact.is_file():
        return Located(exact, None)
    matches = sorted(p for p in scratch.rglob(wanted) if p.is_file() and "__MACOSX" not in p.parts)
    if len(matches) == 1:
        found = matches[0].relative_to(scratch)
        return Located(
            matches[0], None, (f"imported {found}: the handout asks for {wanted} at the top level",)
        )
    present = [str(p.relative_to(scratch)) for p in sorted(scratch.rglob("*")) if p.is_file()]
    if matches:
        names = ", ".join(str(p.relative_to(scratch)) for p in matches)
        return Located(None, f"several files named {wanted} ({names}): keep one")
    return Located(None, missing_module_message(wanted, present))


def missing_module_message(wanted: str, present: Sequence[str]) -> str:
    """Why there is nothing to import, naming what the submission holds."""
    found = ", ".join(present) or "nothing"
    return f"no {wanted} in the submission (found: {found})"
