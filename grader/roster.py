"""Class rosters: ``--roster roster.csv`` → who should have handed in, and how to name them.

Three CSV shapes are read as they come, recognised by their header:

* the grader's own: ``id`` (the LMS id intake uses: Canvas user id, Moodle participant
  id, Gradescope sid, GitHub user name; required), and optionally ``name``, ``email``,
  ``sis_id``, ``login_id``, ``section``, ``extension_hours`` or ``extension_days``;
* Canvas's gradebook export: ``Student``, ``ID``, ``SIS User ID``, ``SIS Login ID``,
  ``Section`` (its ``Points Possible`` row is skipped);
* Moodle's grading worksheet: ``Identifier`` (``Participant 12345``), ``Full name``,
  ``Email address``, and ``ID number`` when the site shows it.

Extensions (hours, or days) move the student's due time and cut-off (:mod:`grader.late`).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from grader.errors import GraderError


class RosterError(GraderError, ValueError):
    """A roster file that cannot be read."""


@dataclass(frozen=True)
class RosterEntry:
    """One student on the roster."""

    id: str
    name: str = ""
    email: str = ""
    sis_id: str = ""
    login_id: str = ""
    section: str = ""
    extension_hours: float = 0.0


@dataclass(frozen=True)
class Roster:
    """The whole roster, in file order, and the shape it was read as."""

    path: Path
    kind: str  # grader | canvas | moodle
    entries: tuple[RosterEntry, ...]

    def by_id(self) -> dict[str, RosterEntry]:
        """The entries keyed by LMS id."""
        return {e.id: e for e in self.entries}


def _cell(row: dict[str, str], *names: str) -> str:
    for name in names:
        value = row.get(name)
        if value is not None and value.strip():
            return value.strip()
    return ""


def _extension(path: Path, line: int, row: dict[str, str]) -> float:
    hours, days = _cell(row, "extension_hours"), _cell(row, "extension_days")
    try:
        value = float(hours) if hours else 24 * float(days) if days else 0.0
    except ValueError as exc:
        raise RosterError(
            f"{path}:{line}: extension must be a number of hours or days ({exc})"
        ) from exc
    if value < 0:
        raise RosterError(f"{path}:{line}: a negative extension")
    return value


def load_roster(path: Path) -> Roster:
    """Read a roster CSV (UTF-8, a BOM allowed as Excel writes it).

    Raises :class:`RosterError` naming the file and line for an unreadable file, a
    header of none of the three shapes, a row without an id, or a duplicated id.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise RosterError(f"{path}: cannot read the roster ({exc})") from exc
    reader = csv.DictReader(text.splitlines())
    header = set(reader.fieldnames or ())
    if "id" in header:
        kind = "grader"
    elif {"Student", "ID"} <= header:
        kind = "canvas"
    elif "Identifier" in header:
        kind = "moodle"
    else:
        raise RosterError(
            f"{path}: header {sorted(header)} is not a roster: give an `id` column (and "
            "name, email, sis_id, login_id, section, extension_hours), or pass Canvas's "
            "gradebook export or Moodle's grading worksheet as downloaded"
        )
    entries: list[RosterEntry] = []
    seen: set[str] = set()
    for line, row in enumerate(reader, start=2):
        if kind == "grader":
            ident = _cell(row, "id")
            entry = RosterEntry(
                ident,
                _cell(row, "name"),
                _cell(row, "email"),
                _cell(row, "sis_id"),
                _cell(row, "login_id"),
                _cell(row, "section"),
                _extension(path, line, row),
            )
        elif kind == "canvas":
            if "Points Possible" in _cell(row, "Student") or not _cell(row, "ID"):
                continue  # Canvas's second row, and its test student without an id
            ident = _cell(row, "ID")
            entry = RosterEntry(
                ident,
                _cell(row, "Student"),
                "",
                _cell(row, "SIS User ID"),
                _cell(row, "SIS Login ID"),
                _cell(row, "Section"),
                _extension(path, line, row),
            )
        else:
            m = re.search(r"(\d+)", _cell(row, "Identifier"))
            ident = m.group(1) if m else ""
            entry = RosterEntry(
                ident,
                _cell(row, "Full name"),
                _cell(row, "Email address"),
                _cell(row, "ID number"),
                extension_hours=_extension(path, line, row),
            )
        if not ident:
            raise RosterError(f"{path}:{line}: a row without a student id")
        if ident in seen:
            raise RosterError(f"{path}:{line}: student id {ident!r} appears twice")
        seen.add(ident)
        entries.append(entry)
    return Roster(path, kind, tuple(entries))
