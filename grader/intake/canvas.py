"""Canvas's "Download Submissions" zip: flat files ``name_[LATE_]userid_fileid_original``.

The number after the name (or after ``LATE_``) is the user id, the next one a per-file
id. A resubmitted file gets Canvas's ``-N`` suffix before its extension
(``hw1-1.ipynb``); for each original file name the highest ``-N``, then the highest file
id, is kept. A ``name_userid_text.html`` (online text entry) has no file id.
"""

from __future__ import annotations

import re
from pathlib import Path

from grader.intake.records import Handin

#: name, optional LATE mark, user id, file id, original file name
PATTERN = re.compile(
    r"^(?P<name>[^_]+(?:_[^_]+)*?)_(?P<late>LATE_)?(?P<user>\d+)_(?P<file>\d+)_(?P<orig>.+)$"
)
_TEXT = re.compile(r"^(?P<name>[^_]+(?:_[^_]+)*?)_(?P<late>LATE_)?(?P<user>\d+)_text\.html$")
_RESUBMIT = re.compile(r"^(?P<stem>.+?)-(?P<n>\d+)(?P<ext>\.[^.]+)?$")


def _entries(root: Path) -> list[Path]:
    return [p for p in sorted(root.iterdir()) if not p.name.startswith((".", "__MACOSX"))]


def matches(root: Path) -> bool:
    """Canvas's positive marker: every entry is named by its file pattern."""
    entries = _entries(root)
    return bool(entries) and all(PATTERN.match(p.name) or _TEXT.match(p.name) for p in entries)


def _original(orig: str) -> tuple[str, int]:
    """``hw1-2.ipynb`` → (``hw1.ipynb``, 2); a name without ``-N`` is version 0."""
    m = _RESUBMIT.match(orig)
    if m is None:
        return orig, 0
    return m["stem"] + (m["ext"] or ""), int(m["n"])


def read(root: Path) -> list[Handin]:
    """One :class:`Handin` per Canvas user id, newest version of each file."""
    # user id → original name → (version, file id, path)
    chosen: dict[str, dict[str, tuple[int, int, Path]]] = {}
    names: dict[str, str] = {}
    late: dict[str, bool] = {}
    for path in _entries(root):
        m = PATTERN.match(path.name)
        if m is None:
            t = _TEXT.match(path.name)
            if t is None:
                continue
            user, name, is_late, orig, fid, version = (
                t["user"],
                t["name"],
                bool(t["late"]),
                "text.html",
                0,
                0,
            )
        else:
            user, name, is_late = m["user"], m["name"], bool(m["late"])
            orig, version = _original(m["orig"])
            fid = int(m["file"])
        names.setdefault(user, name)
        late[user] = late.get(user, False) or is_late
        files = chosen.setdefault(user, {})
        # a submitted zip was unpacked into a folder of that name: its files count as
        # handed in at the student's top level, versioned like the zip itself
        parts = (
            [(p.relative_to(path).as_posix(), p) for p in sorted(path.rglob("*")) if not p.is_dir()]
            if path.is_dir()
            else [(orig, path)]
        )
        for original, where in parts:
            if original not in files or (version, fid) > files[original][:2]:
                files[original] = (version, fid, where)
    return [
        Handin(
            student=user,
            name=names[user],
            files=tuple((orig, v[2]) for orig, v in sorted(chosen[user].items())),
            late_mark=late[user],
        )
        for user in sorted(chosen)
    ]
