"""Canvas's download: grouping by user id, LATE marks, resubmissions, file ids."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.errors import SubmissionsError
from grader.intake import detect, read_submissions
from tests.intake.archives import write_tree, write_zip

# Two students, files as Canvas names them. smithjohn: notebook resubmitted once
# (hw1-1.ipynb), module twice with the same -N but a newer file id; late on the
# resubmission. doejane: on time, notebook only, and a name with an underscore.
CANVAS = {
    "smithjohn_12345_678901_hw1.ipynb": b"nb v0",
    "smithjohn_LATE_12345_678950_hw1-1.ipynb": b"nb v1",
    "smithjohn_12345_678902_hw1.py": b"py old",
    "smithjohn_12345_678990_hw1.py": b"py new",
    "doe_jane_777_5550_hw1.ipynb": b"jane nb",
}


def test_files_grouped_by_user_id_newest_resubmission_kept(tmp_path: Path) -> None:
    intake = read_submissions(write_zip(tmp_path / "s.zip", CANVAS), tmp_path / "out")
    assert intake.layout == "canvas"
    by = {h.student: h for h in intake.handins}
    assert sorted(by) == ["12345", "777"]
    smith, jane = by["12345"], by["777"]
    assert (smith.name, smith.late_mark, jane.name, jane.late_mark) == (
        "smithjohn", True, "doe_jane", False,
    )  # fmt: skip
    assert {n: p.read_bytes() for n, p in smith.files} == {
        "hw1.ipynb": b"nb v1",  # -1 beats the original
        "hw1.py": b"py new",  # same version: the higher file id
    }
    sub = next(s for s in intake.submissions if s.student == "12345")
    assert [p.name for p in sub.files] == ["hw1.ipynb", "hw1.py"]
    assert sub.files[0].read_bytes() == b"nb v1"
    # unpacked and regrouped under the output folder, never beside the download
    assert sub.path == tmp_path / "out" / ".intake" / "students" / "12345"


def test_a_zip_wrapped_in_one_folder_and_a_plain_folder_read_alike(tmp_path: Path) -> None:
    wrapped = {f"submissions/{k}": v for k, v in CANVAS.items()}
    a = read_submissions(write_zip(tmp_path / "w.zip", wrapped), tmp_path / "o1")
    b = read_submissions(write_tree(tmp_path / "dl", CANVAS), tmp_path / "o2")
    assert [h.student for h in a.handins] == [h.student for h in b.handins] == ["12345", "777"]


def test_zip_file_times_become_the_submission_time_with_a_warning(tmp_path: Path) -> None:
    times = {"smithjohn_LATE_12345_678950_hw1-1.ipynb": (2026, 9, 17, 9, 30, 0)}
    intake = read_submissions(write_zip(tmp_path / "s.zip", CANVAS, times), tmp_path / "o")
    smith = next(h for h in intake.handins if h.student == "12345")
    assert (smith.submitted_at, smith.time_source) == ("2026-09-17T09:30:00+00:00", "file time")
    assert any("file times" in w for w in intake.warnings)


def test_a_plain_folder_is_not_canvas(tmp_path: Path) -> None:
    write_tree(tmp_path / "plain", {"alice/hw1.ipynb": b"", "bob_2.ipynb": b""})
    assert detect(tmp_path / "plain") == "plain"
    intake = read_submissions(tmp_path / "plain", tmp_path / "o")
    assert [s.student for s in intake.submissions] == ["alice", "bob_2"]


def test_forcing_a_layout_without_its_marker_finds_nothing(tmp_path: Path) -> None:
    write_tree(tmp_path / "plain", {"alice/hw1.ipynb": b""})
    with pytest.raises(SubmissionsError, match="holds no canvas submissions"):
        read_submissions(tmp_path / "plain", tmp_path / "o", layout="canvas")


def test_a_submitted_zip_counts_as_the_files_inside_it(tmp_path: Path) -> None:
    inner = write_zip(tmp_path / "inner.zip", {"hw1.ipynb": b"zipped nb", "hw1.py": b"zipped"})
    outer = {
        "doe_jane_777_5550_hw1.ipynb": b"first nb",
        "doe_jane_777_5560_hw1-1.zip": inner.read_bytes(),
    }
    intake = read_submissions(write_zip(tmp_path / "s.zip", outer), tmp_path / "out")
    (jane,) = intake.handins
    assert {n: p.read_bytes() for n, p in jane.files} == {
        "hw1.ipynb": b"zipped nb",  # the -1 zip replaces the first notebook
        "hw1.py": b"zipped",
    }
