from pathlib import Path

import pytest

from grader.discover import discover
from grader.errors import SubmissionsError


def test_folders_and_single_files(tmp_path: Path) -> None:
    (tmp_path / "alice").mkdir()
    (tmp_path / "alice" / "hw3.ipynb").write_text("{}")
    (tmp_path / "alice" / ".ipynb_checkpoints").mkdir()
    (tmp_path / "bob.ipynb").write_text("{}")
    (tmp_path / ".DS_Store").write_text("")
    (tmp_path / "__MACOSX").mkdir()
    subs = discover(tmp_path)
    assert [(s.student, s.is_single_file) for s in subs] == [("alice", False), ("bob", True)]
    assert [p.name for p in subs[0].files] == ["hw3.ipynb"]


def test_duplicate_student(tmp_path: Path) -> None:
    (tmp_path / "bob").mkdir()
    (tmp_path / "bob.ipynb").write_text("{}")
    with pytest.raises(SubmissionsError, match="two submissions for student 'bob'"):
        discover(tmp_path)


def test_missing_or_empty(tmp_path: Path) -> None:
    with pytest.raises(SubmissionsError, match="no such folder"):
        discover(tmp_path / "nope")
    with pytest.raises(SubmissionsError, match="holds no submissions"):
        discover(tmp_path)
