"""Moodle, Gradescope and GitHub Classroom downloads, and a folder matching two layouts."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.errors import SubmissionsError
from grader.intake import detect, read_submissions
from tests.intake.archives import write_tree, write_zip


def test_moodle_folders_keyed_by_participant_id(tmp_path: Path) -> None:
    files = {
        "John Smith_12345_assignsubmission_file_/hw1.ipynb": b"nb",
        "John Smith_12345_assignsubmission_file_/hw1.py": b"py",
        "John Smith_12345_assignsubmission_onlinetext_/onlinetext.html": b"<p>hi</p>",
        "Ana María López_678_assignsubmission_file_/hw1.ipynb": b"nb2",
    }
    intake = read_submissions(write_zip(tmp_path / "m.zip", files), tmp_path / "o")
    assert intake.layout == "moodle"
    by = {h.student: h for h in intake.handins}
    assert {k: h.name for k, h in by.items()} == {"12345": "John Smith", "678": "Ana María López"}
    assert [n for n, _ in by["12345"].files] == ["hw1.ipynb", "hw1.py", "onlinetext.html"]


METADATA = """\
submission_1:
  :submitters:
  - :name: Jane Doe
    :sid: '9001'
    :email: jane@example.edu
  :created_at: 2026-09-16 01:15:00.000000000 -04:00
submission_2:
  :submitters:
  - :name: Bob Roe
    :sid: '9002'
  :created_at: 2026-09-15 10:00:00.000000000 -04:00
"""


def test_gradescope_metadata_gives_ids_names_and_times(tmp_path: Path) -> None:
    files = {
        "submission_metadata.yml": METADATA.encode(),
        "submission_1/hw1.ipynb": b"a",
        "submission_2/hw1.ipynb": b"b",
        "submission_2/hw1.py": b"c",
    }
    intake = read_submissions(write_tree(tmp_path / "gs", files), tmp_path / "o")
    assert intake.layout == "gradescope"
    by = {h.student: h for h in intake.handins}
    assert by["9001"].name == "Jane Doe" and by["9001"].time_source == "metadata"
    assert by["9001"].submitted_at == "2026-09-16T01:15:00-04:00"
    assert [n for n, _ in by["9002"].files] == ["hw1.ipynb", "hw1.py"]


GROUP = """\
submission_7:
  :submitters:
  - :name: Jane Doe
    :sid: '9001'
  - :name: Bob Roe
    :sid: '9002'
  :created_at: 2026-09-16 01:15:00.000000000 -04:00
"""


def test_a_gradescope_group_submission_grades_every_member(tmp_path: Path) -> None:
    files = {"submission_metadata.yml": GROUP.encode(), "submission_7/hw1.ipynb": b"a"}
    intake = read_submissions(write_tree(tmp_path / "gs", files), tmp_path / "o")
    by = {h.student: h for h in intake.handins}
    assert {k: h.name for k, h in by.items()} == {"9001": "Jane Doe", "9002": "Bob Roe"}
    assert by["9001"].files == by["9002"].files  # the group's one hand-in, for each member


def test_a_student_in_two_gradescope_submissions_is_an_error(tmp_path: Path) -> None:
    twice = GROUP + METADATA.replace("submission_2:", "submission_8:", 1)
    files = {"submission_metadata.yml": twice.encode(), "submission_7/hw1.ipynb": b"a"}
    with pytest.raises(SubmissionsError, match=r"'9001' is a submitter of both"):
        read_submissions(write_tree(tmp_path / "gs", files), tmp_path / "o")


def test_gradescope_metadata_is_read_safely(tmp_path: Path) -> None:
    files = {"submission_metadata.yml": b"!!python/object/apply:os.system ['echo hi']\n"}
    with pytest.raises(SubmissionsError, match=r"submission_metadata\.yml"):
        read_submissions(write_tree(tmp_path / "gs", files), tmp_path / "o")


def test_classroom_repos_keyed_by_user_name(tmp_path: Path) -> None:
    files = {
        "hw1-octocat/.git/HEAD": b"ref",
        "hw1-octocat/hw1.ipynb": b"a",
        "hw1-jdoe-2/.git/HEAD": b"ref",
        "hw1-jdoe-2/hw1.ipynb": b"b",
    }
    intake = read_submissions(write_tree(tmp_path / "cl", files), tmp_path / "o")
    assert intake.layout == "classroom"
    assert [h.student for h in intake.handins] == ["jdoe-2", "octocat"]
    assert [n for n, _ in intake.handins[1].files] == ["hw1.ipynb"]  # .git left out


def test_plain_student_folders_that_are_not_repos_stay_plain(tmp_path: Path) -> None:
    write_tree(tmp_path / "p", {"hw1-alice/hw1.ipynb": b"", "hw1-bob/hw1.ipynb": b""})
    assert detect(tmp_path / "p") == "plain"


def test_a_folder_with_two_markers_is_an_error_naming_both(tmp_path: Path) -> None:
    files = {
        "submission_metadata.yml": b"{}\n",
        "John Smith_12345_assignsubmission_file_/hw1.ipynb": b"",
    }
    with pytest.raises(SubmissionsError, match=r"moodle and gradescope.*--layout moodle"):
        read_submissions(write_tree(tmp_path / "x", files), tmp_path / "o")
    forced = read_submissions(tmp_path / "x", tmp_path / "o", layout="moodle")
    assert [h.student for h in forced.handins] == ["12345"]


def test_stray_entries_of_a_moodle_or_gradescope_download_are_named(tmp_path: Path) -> None:
    moodle = {
        "John Smith_12345_assignsubmission_file_/hw1.ipynb": b"nb",
        "notes.txt": b"the TA's notes",
    }
    intake = read_submissions(write_tree(tmp_path / "m", moodle), tmp_path / "o1")
    assert [h.student for h in intake.handins] == ["12345"]
    assert any("not graded" in w and "notes.txt" in w for w in intake.warnings)
    gradescope = {
        "submission_metadata.yml": METADATA.encode(),
        "submission_1/hw1.ipynb": b"a",
        "submission_2/hw1.ipynb": b"b",
        "submission_9/hw1.ipynb": b"c",  # in the folder, not in the metadata
    }
    intake = read_submissions(write_tree(tmp_path / "gs", gradescope), tmp_path / "o2")
    assert sorted(h.student for h in intake.handins) == ["9001", "9002"]
    assert any("submission_9" in w for w in intake.warnings)
    del gradescope["submission_9/hw1.ipynb"]
    clean = read_submissions(write_tree(tmp_path / "ok", gradescope), tmp_path / "o3")
    assert not any("not graded" in w for w in clean.warnings)
