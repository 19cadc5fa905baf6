"""GitHub Classroom's clone of an assignment: one repo folder ``assignment-username``.

Chosen only when every folder is a git repository (holds ``.git``) and all share the
prefix before the user name, so an ordinary folder of student folders stays plain.
"""

from __future__ import annotations

import os
from pathlib import Path

from grader.intake.records import Handin


def _repos(root: Path) -> list[Path]:
    return [p for p in sorted(root.iterdir()) if p.is_dir() and not p.name.startswith(".")]


def _prefix(repos: list[Path]) -> str:
    names = [p.name for p in repos]
    # character by character on purpose: the names are single folder names, not paths
    common = os.path.commonprefix(names)  # noqa: RUF071
    return common[: common.rfind("-") + 1] if "-" in common else ""


def matches(root: Path) -> bool:
    """Classroom's positive marker: repo folders with a common ``assignment-`` prefix."""
    repos = _repos(root)
    return bool(repos) and bool(_prefix(repos)) and all((p / ".git").exists() for p in repos)


def read(root: Path) -> list[Handin]:
    """One :class:`Handin` per repo, the id the GitHub user name after the prefix."""
    repos = _repos(root)
    prefix = _prefix(repos)
    out = []
    for repo in repos:
        user = repo.name[len(prefix) :]
        files = tuple(
            (p.relative_to(repo).as_posix(), p)
            for p in sorted(repo.rglob("*"))
            if (p.is_file() or p.is_symlink()) and ".git" not in p.relative_to(repo).parts
        )
        out.append(Handin(student=user, name=user, files=files))
    return out
