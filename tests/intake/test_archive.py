"""The zip is unpacked by the grader itself: escapes, symlinks, caps, nesting."""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path

import pytest

from grader.errors import SubmissionsError
from grader.intake import read_submissions
from grader.intake.archive import ArchiveLimits, extract
from tests.intake.archives import write_zip


@pytest.mark.parametrize("name", ["../evil.py", "/etc/evil.py", "a/../../evil.py", "C:/x.py"])
def test_a_path_escape_is_refused_and_nothing_lands_outside(tmp_path: Path, name: str) -> None:
    archive = write_zip(tmp_path / "s.zip", {"alice_1_2_hw1.py": b"ok", name: b"boom"})
    with pytest.raises(SubmissionsError, match=r"s\.zip: entry .* path escape"):
        read_submissions(archive, tmp_path / "out" / "o")
    assert not (tmp_path / "evil.py").exists() and not (tmp_path / "out" / "evil.py").exists()


def test_a_symlink_entry_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "s.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        info = zipfile.ZipInfo("alice_1_2_hw1.py")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(SubmissionsError, match="is a symlink"):
        read_submissions(archive, tmp_path / "o")


def test_caps_on_entries_bytes_and_depth(tmp_path: Path) -> None:
    many = write_zip(tmp_path / "many.zip", {f"f{i}": b"x" for i in range(5)})
    with pytest.raises(SubmissionsError, match="more than 4 entries"):
        extract(many, tmp_path / "a", ArchiveLimits(max_entries=4))
    with pytest.raises(SubmissionsError, match="more than 3 bytes"):
        extract(many, tmp_path / "b", ArchiveLimits(max_bytes=3))
    inner = write_zip(tmp_path / "inner.zip", {"hw1.py": b"x"})
    outer = write_zip(tmp_path / "outer.zip", {"bob.zip": inner.read_bytes()})
    with pytest.raises(SubmissionsError, match="nested more than 1 deep"):
        extract(outer, tmp_path / "c", ArchiveLimits(max_depth=1))


def test_nested_zips_are_unpacked_into_a_folder(tmp_path: Path) -> None:
    inner = write_zip(tmp_path / "inner.zip", {"hw1.py": b"x", "hw1.ipynb": b"{}"})
    outer = write_zip(tmp_path / "outer.zip", {"bob.zip": inner.read_bytes(), "alice/hw1.py": b""})
    intake = read_submissions(outer, tmp_path / "o")
    assert intake.layout == "plain"
    bob = next(s for s in intake.submissions if s.student == "bob")
    assert sorted(p.name for p in bob.files) == ["hw1.ipynb", "hw1.py"]


def test_not_a_zip(tmp_path: Path) -> None:
    (tmp_path / "s.zip").write_bytes(b"not a zip")
    with pytest.raises(SubmissionsError, match=r"s\.zip: not a readable zip"):
        read_submissions(tmp_path / "s.zip", tmp_path / "o")
    (tmp_path / "s.tar").write_bytes(b"")
    with pytest.raises(SubmissionsError, match=r"a folder of submissions or a \.zip"):
        read_submissions(tmp_path / "s.tar", tmp_path / "o")
