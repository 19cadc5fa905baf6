"""``grade review`` started as root serves as an unprivileged user (a real process)."""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

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
        host = {"Host": f"127.0.0.1:{port}"}

        def get(path: str, **headers: str) -> tuple[int, dict[str, str], str]:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=400)
            conn.request("GET", path, headers={**host, **headers})
            response = conn.getresponse()
            body = response.read().decode()
            return response.status, dict(response.getheaders()), body

        status, headers, _ = get(f"/?token={token}")
        assert status == 303  # it serves, and only with the token
        cookie = headers["set-cookie"].split(";")[0]
        _, _, page = get("/queue/Q1a", Cookie=cookie)
        key = re.search(r'name="key" value="(\w+)"', page)[1]  # type: ignore[index]
        form = urlencode({"token": token, "key": key, "i": "0", "action": "accept"})
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.request("POST", "/queue/Q1a/mark", body=form, headers={**host, "Cookie": cookie,
                     "Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
        assert conn.getresponse().status == 303
        # the decision's files belong to the unprivileged user, and its reports render
        assert (nobody_out / "overrides.yaml").stat().st_uid == NOBODY
        state = json.loads(get("/status?wait=1", Cookie=cookie)[2])  # once rendered
        assert state == {"rendering": False, "render_error": None}
        assert (nobody_out / "reports" / "ansari_seed.pdf").stat().st_uid == NOBODY
    finally:
        process.terminate()
        process.wait(timeout=60)


def test_a_folder_owned_by_root_is_refused_without_user(out: Path) -> None:
    process = _start([str(out)])
    _, err = process.communicate(timeout=120)
    assert process.returncode == 2
    assert "does not serve pages as root" in err and "--user NAME" in err
