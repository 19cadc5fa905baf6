"""``grade --cluster``: the HW3 samples graded on a Dask LocalCluster (2 worker processes)
give every check the points and status of the hand-written golden file, and the results
are exactly those of a local run (a local run over the same output folder keeps them all
as unchanged). Also: a local batch never imports Dask, an unreachable scheduler is a
one-line error, a worker lost mid-task costs only that student, and a worker whose
rubric differs stops the batch.

All tests share one cluster (module scope), so this file starts it once.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dask
import pytest
from distributed import Client, Future, LocalCluster

import grader.cluster
from grader.batch import grade_batch
from grader.cli import main
from grader.cluster import BatchIdentity, ClusterMismatch, ClusterRun, grade_remote, pack_submission
from grader.models import Submission
from grader.progress import Reporter
from grader.rubric import load_rubric
from tests.golden.support import load_golden

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "submissions" / "hw3"
GOLDEN = load_golden("hw3")
# A subset of the samples, to keep this test well under two minutes on a loaded 2-core
# machine (test_golden_hw3 grades them all locally): a full mark, lost points, a failing
# cell, a dead kernel, a misnamed notebook, a single-file submission, nothing to run, and
# not a notebook. Not the 30-second infinite loop.
SUBSET = (
    "solution",
    "pool_ceil",
    "crash_in_cell",
    "kernel_dies",
    "misnamed_file",
    "lms_single_file.ipynb",
    "no_notebook",
    "not_json",
)
STUDENTS = sorted(Path(name).stem for name in SUBSET)


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A scheduler and 2 single-threaded worker processes; a worker that dies fails its
    task at once (no retry) and holds one task at a time, so a killed worker takes no
    other student's task with it."""
    with (
        dask.config.set(
            {
                "distributed.scheduler.allowed-failures": 0,
                "distributed.scheduler.worker-saturation": 1.0,
            }
        ),
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as local,
    ):
        yield local.scheduler_address


def checks(record: dict[str, Any]) -> dict[str, tuple[float, str]]:
    return {c["id"]: (c["score"], c["status"]) for q in record["questions"] for c in q["checks"]}


def results(out: Path) -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted((out / "results").glob("*.json"))}


class Counting(Reporter):
    """A reporter that remembers how each student's result was made."""

    def __init__(self) -> None:
        super().__init__(log=lambda _: None)
        self.how: dict[str, str] = {}

    def done(self, record: Any, how: Any, failed: bool = False) -> None:
        self.how[record.student] = how


def test_local_batch_never_imports_dask() -> None:
    code = (
        "import sys, grader.cli, grader.pipeline, grader.batch; "
        "assert not {'dask', 'distributed'} & set(sys.modules), 'dask imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_unreachable_scheduler_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(grader.cluster, "CONNECT_TIMEOUT_S", 2.0)  # Dask retries until then
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{probe.getsockname()[1]}"
    (tmp_path / "subs" / "a").mkdir(parents=True)
    args = [str(tmp_path / "subs"), "--rubric", "hw3", "--out", str(tmp_path / "out")]
    assert main([*args, "--no-reports", "--cluster", address]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"cannot reach the Dask scheduler at {address}" in err and "dask worker" in err


def test_hw3_samples_on_the_cluster_match_golden_and_a_local_run(
    cluster: str, tmp_path: Path
) -> None:
    subs, out = tmp_path / "subs", tmp_path / "graded"
    subs.mkdir()
    for name in SUBSET:
        copy = shutil.copytree if (SAMPLES / name).is_dir() else shutil.copyfile
        copy(SAMPLES / name, subs / name)
    started = time.monotonic()
    args = [str(subs), "--rubric", "hw3", "--out", str(out), "--no-reports", "--quiet"]
    assert main([*args, "--cluster", cluster]) == 0
    elapsed = time.monotonic() - started
    got = results(out)
    assert sorted(got) == STUDENTS
    for student in STUDENTS:
        expected = GOLDEN[student].checks
        assert checks(got[student]) == expected, student
        assert got[student]["score"] == GOLDEN[student].total
    assert got["kernel_dies"]["execution"]["kernel_died"] is True
    assert got["misnamed_file"]["execution"]["notebook"] == "HW3_final (1).ipynb"
    assert got["lms_single_file"]["execution"]["notebook"] == "lms_single_file.ipynb"
    assert "gradebook.csv" in os.listdir(out)
    print(f"cluster batch of {len(STUDENTS)}: {elapsed:.1f} s")

    # A local run over the same folder finds every result exactly as it would have made
    # it (same keys, same bytes): nothing runs, nothing changes.
    before = {p.name: p.read_bytes() for p in (out / "results").glob("*.json")}
    local = Counting()
    batch = grade_batch(subs, load_rubric("hw3"), out, jobs=1, reporter=local)
    assert batch.counts == {"executed": 0, "rescored": 0, "cached": len(STUDENTS)}
    assert {p.name: p.read_bytes() for p in (out / "results").glob("*.json")} == before

    # The executions came back into the local cache: a lost result is re-scored here from
    # it, with the same points, without running anything on the cluster.
    for student in ("solution", "pool_ceil"):
        (out / "results" / f"{student}.json").unlink()
    again = Counting()
    batch = grade_batch(subs, load_rubric("hw3"), out, reporter=again, cluster=cluster)
    assert batch.counts["rescored"] == 2 and batch.counts["executed"] == 0
    for student in ("solution", "pool_ceil"):
        assert checks(results(out)[student]) == checks(json.loads(before[f"{student}.json"]))


def test_worker_lost_mid_task_costs_only_that_student(
    cluster: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    subs = tmp_path / "subs"
    shutil.copytree(SAMPLES / "solution", subs / "solution")
    # no notebook to run: grading the victim again below starts no kernel
    shutil.copytree(SAMPLES / "no_notebook", subs / "victim")
    real_submit = ClusterRun.submit

    def submit(self: ClusterRun, sub: Submission) -> Future[tuple[bytes, bytes]]:
        # The victim on one worker, everyone else on the other: the lost worker takes
        # exactly one task with it, whatever the scheduler would have chosen.
        first, second = self.workers()[:2]
        if sub.student != "victim":
            request, files = pack_submission(sub, self.identity)
            key = f"grade-{sub.student}-{uuid.uuid4().hex}"
            return self.client.submit(
                grade_remote, request, files, key=key, workers=[first], pure=False
            )
        # The worker process running this task exits at once, as a machine lost would.
        victim: Future[tuple[bytes, bytes]] = self.client.submit(
            os._exit, 1, key=f"victim-{uuid.uuid4().hex}", workers=[second], pure=False
        )
        return victim

    monkeypatch.setattr(ClusterRun, "submit", submit)
    out = tmp_path / "out"
    batch = grade_batch(subs, load_rubric("hw3"), out, cluster=cluster, reporter=Counting())
    got = results(out)
    assert sorted(got) == ["solution", "victim"]
    assert got["solution"]["score"] == GOLDEN["solution"].total
    warning = " ".join(got["victim"]["execution"]["warnings"])
    assert "the grader failed on this submission" in warning and "KilledWorker" in warning
    assert batch.counts["executed"] == 2

    # The crashed result is not kept: the next run grades the victim (and only it) again.
    monkeypatch.setattr(ClusterRun, "submit", real_submit)
    again = Counting()
    grade_batch(subs, load_rubric("hw3"), out, cluster=cluster, reporter=again)
    assert again.how == {"victim": "executed", "solution": "cached"}
    victim = checks(results(out)["victim"])
    assert victim == GOLDEN["no_notebook"].checks


def test_worker_with_another_rubric_stops_the_batch(cluster: str) -> None:
    rubric = load_rubric("hw3")
    identity = BatchIdentity(str(rubric.path), "0" * 64, "ref", "fingerprint", "strict")
    client = Client(cluster, set_as_default=False)
    run = ClusterRun(cluster, identity, client)
    try:
        with pytest.raises(ClusterMismatch, match=r"worker .* has no rubric with the client's"):
            run.check_workers()
    finally:
        run.close()
