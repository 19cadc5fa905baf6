"""Rosters in the grader's shape and as Canvas and Moodle export them."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.roster import RosterEntry, RosterError, load_roster


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "roster.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_grader_roster_with_extensions(tmp_path: Path) -> None:
    roster = load_roster(write(tmp_path, "id,name,email,sis_id,extension_days\n"
                               "12345,John Smith,js@x.edu,S1,2\n777,Jane Doe,,S2,\n"))  # fmt: skip
    assert roster.kind == "grader"
    assert roster.entries == (
        RosterEntry("12345", "John Smith", "js@x.edu", "S1", extension_hours=48.0),
        RosterEntry("777", "Jane Doe", "", "S2"),
    )


def test_canvas_gradebook_export_as_downloaded(tmp_path: Path) -> None:
    text = (
        "\ufeffStudent,ID,SIS User ID,SIS Login ID,Section,HW1 (555)\n"
        "    Points Possible,,,,,85\n"
        '"Smith, John",12345,S1,jsmith,DL 2026,\n'
        "Test Student,,,,,\n"
    )
    roster = load_roster(write(tmp_path, text))
    assert roster.kind == "canvas"
    assert roster.entries == (RosterEntry("12345", "Smith, John", "", "S1", "jsmith", "DL 2026"),)


def test_moodle_worksheet_as_downloaded(tmp_path: Path) -> None:
    text = (
        "Identifier,Full name,Email address,Status,Grade,Maximum Grade\n"
        "Participant 12345,John Smith,js@x.edu,Submitted,,85\n"
    )
    roster = load_roster(write(tmp_path, text))
    assert roster.entries == (RosterEntry("12345", "John Smith", "js@x.edu"),)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name,email\nA,a@x\n", "not a roster"),
        ("id,name\n1,A\n1,B\n", r"roster\.csv:3: student id '1' appears twice"),
        ("id,extension_hours\n1,soon\n", r"roster\.csv:2: extension must be a number"),
        ("id,name\n,A\n", r"roster\.csv:2: a row without a student id"),
    ],
)
def test_bad_rosters_name_the_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(RosterError, match=message):
        load_roster(write(tmp_path, text))
