"""``grade review`` started as root serves as an unprivileged user (a real process)."""

from __future__ import annotations

import http.client
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOBODY = 65534

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to start as root")


def _chown_tree(top: Path, uid: int) -> None:
    for folder, dirs, files in os.walk(top):
        for name in [folder, *(os.path.join(folder, n) for n in dirs + files)]:
            os.lchown(name, uid, uid)


@pytest.fixture
def nobody_out(out: Path) -> Iterator[Path]:
    """The graded folder in a place uid 65534 can reach, owned by it."""
    top = Path(tempfile.mkdtemp(prefix="grade-review-test-"))
    try:
        shutil.copytree(out, top / "graded")
        _chown_tree(top, NOBODY)
        yield top / "graded"
    finally:
        shutil.rmtree(top)


def _start(args: list[str]) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "grader.cli", "review", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )


def _uids(pid: int) -> list[int]:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return [int(x) for x in line.split()[1:]]
    raise AssertionError("no Uid line")


def test_started_as_root_it_serves_as_the_folder_owner(nobody_out: Path) -> None:
    process = _start([str(nobody_out), "--as", "jdoe"])
    try:
        assert process.stdout is not None
        first = process.stdout.readline()  # printed after the drop, before serving
        url_line = process.stdout.readline()
        assert "not root" in first, first + process.stderr.read()
        assert _uids(process.pid) == [NOBODY] * 4  # real, effective, saved, filesystem
        port = int(url_line.split("http://127.0.0.1:")[1].split("/")[0])
        token = url_line.split("token=")[1].strip()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.request("GET", f"/?token={token}", headers={"Host": f"127.0.0.1:{port}"})
        response = conn.getresponse()
        assert response.status == 303  # it serves, and only with the token
    finally:
        process.terminate()
        process.wait(timeout=60)


def test_a_folder_owned_by_root_is_refused_without_user(out: Path) -> None:
    process = _start([str(out)])
    _, err = process.communicate(timeout=120)
    assert process.returncode == 2
    assert "does not serve pages as root" in err and "--user NAME" in err
