"""A batch killed with SIGKILL resumes where it stopped: no finished student runs again,
and the final results are those of a clean run (the hand-written HW3 golden file)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from grader.cli import main
from tests.golden.support import load_golden

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = load_golden("hw3")
# The quick samples (not the 30-second infinite loop): enough for a kill mid-batch.
STUDENTS = (
    "ansari_seed",
    "channels_first_and_no_cat",
    "crash_in_cell",
    "misnamed_file",
    "no_notebook",
    "pool_ceil",
    "solution",
    "transposed_gradient",
    "unsupported_types",
)


def descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (kernels run in sandboxes of their own session)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = (entry / "stat").read_text()
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def kill_tree(pid: int) -> None:
    """SIGKILL the batch (as a power loss would) and every process it started."""
    tree = descendants(pid)
    for target in (pid, *tree):
        with contextlib.suppress(ProcessLookupError):
            os.kill(target, signal.SIGKILL)


def test_killed_batch_resumes_without_rerunning_finished_students(tmp_path: Path) -> None:
    subs, out = tmp_path / "subs", tmp_path / "out"
    for student in STUDENTS:
        shutil.copytree(ROOT / "submissions" / "hw3" / student, subs / student)
    results = out / "results"
    with (tmp_path / "first.log").open("w") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "grader.cli",
                str(subs),
                "--rubric",
                "hw3",
                "--out",
                str(out),
                "--no-reports",
                "--jobs",
                "1",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 240
            while len(list(results.glob("*.json"))) < 3 and proc.poll() is None:
                assert time.monotonic() < deadline, "no results after 240 s"
                time.sleep(0.05)
        finally:
            kill_tree(proc.pid)
            proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the batch finished before it could be killed"
    finished = {p.stem for p in results.glob("*.json")}
    assert 3 <= len(finished) < len(STUDENTS)
    executions = out / ".cache" / "executions"
    mtimes = {p.name: p.stat().st_mtime_ns for p in executions.iterdir()}

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert main([str(subs), "--rubric", "hw3", "--out", str(out), "--no-reports"]) == 0
    lines = {line.split(":")[0]: line for line in buffer.getvalue().splitlines() if ":" in line}
    for student in finished:  # kept, or at worst re-scored: never executed again
        assert lines[student].endswith(("[unchanged]", "[re-scored from cache]")), lines[student]
    for student in set(STUDENTS) - finished:
        assert not lines[student].endswith("[unchanged]"), lines[student]
    # a student whose execution was cached just before the kill is only re-scored
    executed = int(re.search(r"\((\d+) executed", buffer.getvalue()).group(1))  # type: ignore[union-attr]
    assert 1 <= executed <= len(STUDENTS) - len(finished)
    for name, mtime in mtimes.items():  # no cached execution was rewritten
        assert (executions / name).stat().st_mtime_ns == mtime

    for student in STUDENTS:
        record = json.loads((results / f"{student}.json").read_text())
        got = {c["id"]: (c["score"], c["status"]) for q in record["questions"] for c in q["checks"]}
        want = GOLDEN[student].checks
        assert got == want, student
        assert record["score"] == GOLDEN[student].total
