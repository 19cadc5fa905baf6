"""The one atomic writer: complete-or-nothing, fsynced file and folder, normal permissions."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from grader import atomic
from grader.atomic import is_temporary, sweep, write_atomic, write_json_atomic


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if is_temporary(p))


def test_writes_and_replaces_without_leaving_temporary_files(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "a.json"
    write_atomic(target, b"first")
    assert target.read_bytes() == b"first"
    write_atomic(target, lambda handle: handle.write(b"second"))
    assert target.read_bytes() == b"second"
    assert leftovers(target.parent) == []


def test_file_is_fsynced_before_the_rename_and_the_folder_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[tuple[str, Any]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        info = os.fstat(fd)
        events.append(("fsync", "folder" if stat.S_ISDIR(info.st_mode) else "file", info.st_ino))
        real_fsync(fd)

    def replace(src: Any, dst: Any) -> None:
        events.append(("replace", Path(dst).name, None))
        real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "fsync", fsync)
    monkeypatch.setattr(atomic.os, "replace", replace)
    target = tmp_path / "r.json"
    write_atomic(target, b"{}")
    folder_inode = tmp_path.stat().st_ino
    assert [e[:2] for e in events] == [
        ("fsync", "file"),
        ("replace", "r.json"),
        ("fsync", "folder"),
    ]
    assert events[0][2] == target.stat().st_ino  # the file that became the target
    assert events[2][2] == folder_inode  # the target's own folder


def test_a_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "keep.json"
    write_atomic(target, b"old")

    def half(handle: BinaryIO) -> None:
        handle.write(b"half of the new")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomic(target, half)
    assert target.read_bytes() == b"old"
    assert leftovers(tmp_path) == []


def test_json_is_strict_and_a_refused_value_changes_nothing(tmp_path: Path) -> None:
    target = tmp_path / "x.json"
    write_json_atomic(target, {"name": "王小明", "n": 1})
    text = target.read_text(encoding="utf-8")
    assert "王小明" in text and text.endswith("\n") and json.loads(text)["n"] == 1
    with pytest.raises(ValueError):
        write_json_atomic(target, {"n": float("nan")})  # NaN is not JSON
    assert json.loads(target.read_text(encoding="utf-8"))["n"] == 1


def test_new_files_get_the_permissions_the_umask_gives(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        write_atomic(tmp_path / "a", b"x")
        os.umask(0o077)
        write_atomic(tmp_path / "b", b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "b").stat().st_mode) == 0o600


def test_sweep_removes_only_stale_temporary_files(tmp_path: Path) -> None:
    stale = tmp_path / ".a.json.0123456789ab.tmp"
    fresh = tmp_path / ".b.json.ba9876543210.tmp"
    kept = tmp_path / "c.json"
    for path in (stale, fresh, kept):
        path.write_text("x")
    os.utime(stale, (1, 1))
    os.utime(kept, (1, 1))
    sweep([tmp_path, tmp_path / "absent"])
    assert not stale.exists() and fresh.exists() and kept.exists()
