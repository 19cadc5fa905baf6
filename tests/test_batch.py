"""A batch (grader/batch.py) over a fake execution stage: what it writes where, what it
tells the reporter and the live reports, what a re-run keeps, re-scores and retries, and
the gradebook written once with the instructor's overrides. No kernel starts here."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pandas as pd
import pytest

import grader.batch
from grader.batch import BatchResult, grade_batch
from grader.cache import Executed, file_sha256
from grader.models import (
    Answer,
    Batch,
    ExecutionReport,
    GradeRecord,
    NotebookRun,
    Submission,
)
from grader.normalize import to_plain
from grader.overrides import OverridesError
from grader.plain import decode
from grader.progress import How, Reporter
from grader.reference import Expected
from grader.results import SECTIONS, batch_schema, read_batch, read_result
from grader.rubric import Rubric, load_rubric
from tests.values import same

WARNING = "sandbox protection off: seccomp (a test)"
STUDENTS = ("crash", "good", "none")


class Recorder(Reporter):
    """Remembers every event."""

    def __init__(self) -> None:
        super().__init__(log=lambda _: None)
        self.done_calls: list[tuple[str, How, bool]] = []
        self.warnings: list[str] = []

    def warning(self, message: str) -> None:
        self.warnings.append(message)

    def done(self, record: GradeRecord, how: How, failed: bool = False) -> None:
        self.done_calls.append((record.student, how, failed))


class FakeExecution:
    """The execution stage: ``good`` answers every value check with the reference's own
    value, ``none`` answers nothing, ``crash`` makes the grader fail."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, sub: Submission, rubric: Rubric, expected: Expected, **_: Any) -> Executed:
        self.calls.append(sub.student)
        if sub.student == "crash":
            raise RuntimeError("a bug in the grader")
        report = ExecutionReport(
            notebook="hw3.ipynb",
            cells_total=3,
            cells_run=3,
            cells_not_run=(),
            failures=(),
            timed_out=False,
            kernel_died=False,
            limit_hit=None,
            warnings=(),
            duration_s=0.5,
        )
        answers = {}
        if sub.student == "good":
            for check in rubric.checks():
                name = getattr(check, "answer", None)
                if check.type == "value" and isinstance(name, str):
                    value = expected.values[check.reference_key]
                    answers[name] = Answer(name, "ok", np.asarray(value), "ndarray")
        return Executed(NotebookRun(report, answers), None, report, None, None)


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, FakeExecution]:
    subs = tmp_path / "subs"
    for student in STUDENTS:
        (subs / student).mkdir(parents=True)
        (subs / student / "hw3.ipynb").write_text(f"{student}'s notebook")
    fake = FakeExecution()
    monkeypatch.setattr(grader.batch, "execute_submission", fake)
    monkeypatch.setattr(grader.batch, "preflight", lambda *a, **k: None)
    monkeypatch.setattr(grader.batch, "sandbox_warnings", lambda mode: (WARNING,))
    return subs, tmp_path / "out", fake


def run(subs: Path, out: Path, **kwargs: Any) -> tuple[BatchResult, Recorder]:
    reporter = Recorder()
    result = grade_batch(subs, load_rubric("hw3"), out, reporter=reporter, **kwargs)
    return result, reporter


def test_a_batch_writes_its_facts_its_results_and_the_gradebook(
    world: tuple[Path, Path, FakeExecution],
) -> None:
    subs, out, fake = world
    seen: list[tuple[GradeRecord, Batch]] = []
    result, reporter = run(subs, out, on_result=lambda r, b: seen.append((r, b)))

    assert sorted(fake.calls) == list(STUDENTS)
    assert result.counts == {"executed": 3, "rescored": 0, "cached": 0}
    # results/ holds one JSON file per student and nothing else; batch facts are beside it
    assert sorted(p.name for p in (out / "results").iterdir()) == [f"{s}.json" for s in STUDENTS]
    batch = read_batch(out)
    assert batch == result.batch and batch.warnings == (WARNING,)
    assert (batch.assignment, batch.sandbox, batch.cluster) == ("hw3", "strict", None)
    jsonschema.validate(json.loads((out / "batch.json").read_text()), batch_schema())
    assert reporter.warnings == [WARNING]

    records = {r.student: r for r in result.records}
    assert sorted(records) == list(STUDENTS)
    for student, record in records.items():
        assert same(read_result(out / "results" / f"{student}.json"), record)
        assert record.execution.warnings[-1] == WARNING  # every result says what was off
    good, none = records["good"], records["none"]
    value_checks = [c for q in good.questions for c in q.checks if c.type == "value"]
    assert value_checks and all(c.status == "pass" for c in value_checks)
    assert good.score > none.score

    assert sorted(reporter.done_calls) == [
        ("crash", "executed", True),  # the grader failed: the batch says so, no text matched
        ("good", "executed", False),
        ("none", "executed", False),
    ]
    assert sorted(r.student for r, _ in seen) == list(STUDENTS)
    assert all(b is result.batch for _, b in seen)

    book = pd.read_csv(out / "gradebook.csv")
    assert list(book["student"]) == list(STUDENTS)
    assert book.set_index("student")["total"].to_dict() == {
        s: pytest.approx(r.score) for s, r in records.items()
    }


def test_a_rerun_keeps_finished_results_and_retries_a_grader_failure(
    world: tuple[Path, Path, FakeExecution],
) -> None:
    subs, out, fake = world
    first, _ = run(subs, out)
    before = {p.name: p.read_bytes() for p in (out / "results").iterdir() if p.stem != "crash"}
    fake.calls.clear()
    again, reporter = run(subs, out)
    assert fake.calls == ["crash"]  # never kept: the next run grades it again
    assert again.counts == {"executed": 1, "rescored": 0, "cached": 2}
    assert ("good", "cached", False) in reporter.done_calls
    after = {p.name: p.read_bytes() for p in (out / "results").iterdir() if p.stem != "crash"}
    assert after == before
    assert [r.score for r in again.records] == [r.score for r in first.records]


def test_the_gradebook_carries_the_overrides_and_the_results_do_not(
    world: tuple[Path, Path, FakeExecution],
) -> None:
    subs, out, _ = world
    run(subs, out)
    results = {p.name: p.read_bytes() for p in (out / "results").iterdir()}
    (out / "overrides.yaml").write_text(
        "- {student: good, check: Q1a, points: 3, comment: Seen in office hours.}\n"
    )
    again, _ = run(subs, out)
    assert again.counts["cached"] == 2  # an overrides edit re-grades nothing
    good = next(r for r in again.graded if r.student == "good")
    q1a = next(c for q in good.questions for c in q.checks if c.id == "Q1a")
    assert q1a.score == 3 and q1a.override is not None
    assert q1a.override.comment == "Seen in office hours."
    raw = next(r for r in again.records if r.student == "good")
    assert good.score == pytest.approx(raw.score - q1a.override.original_score + 3)
    book = pd.read_csv(out / "gradebook.csv").set_index("student")
    assert book.loc["good", "total"] == pytest.approx(good.score)
    assert book.loc["good", "q1"] != pytest.approx(
        next(q.score for q in raw.questions if q.id == "q1")
    )
    results_now = {p.name: json.loads(p.read_bytes()) for p in (out / "results").iterdir()}
    # results files never hold overrides' scores; only the review section (the audit trail)
    review = results_now["good.json"].pop("review")
    assert [(m["check"], m["points"], m["comment"]) for m in review["marks"]] == [
        ("Q1a", 3.0, "Seen in office hours.")
    ]
    assert {k: v for k, v in results_now.items() if k != "crash.json"} == {
        k: json.loads(v) for k, v in results.items() if k != "crash.json"
    }

    (out / "overrides.yaml").write_text("- {student: good, check: Q9z, points: 1}\n")
    with pytest.raises(OverridesError, match="good has no check 'Q9z'"):
        run(subs, out)
    assert sorted(p.name for p in (out / "results").iterdir()) == [f"{s}.json" for s in STUDENTS]


def as_version_1(data: dict[str, Any]) -> dict[str, Any]:
    """What the version-1 grader wrote for the same grading: values as plain lists and
    strings, no override, show_expected or optional sections."""
    v1 = copy.deepcopy(data)
    v1["schema_version"] = 1
    for name in SECTIONS:
        v1.pop(name, None)
    for question in v1["questions"]:
        for check in question["checks"]:
            check.pop("show_expected", None)
            check.pop("override", None)
            for key in ("expected", "got", "details"):
                if key in check:
                    check[key] = to_plain(decode(check[key]))
    return v1


def test_a_version_1_result_is_rescored_from_its_cached_execution(
    world: tuple[Path, Path, FakeExecution],
) -> None:
    subs, out, fake = world
    first, _ = run(subs, out)
    path = out / "results" / "good.json"
    path.write_text(json.dumps(as_version_1(json.loads(path.read_text()))))
    index = out / ".cache" / "results" / "good.json"
    entry = json.loads(index.read_text())
    # the index says the file is intact: only its version makes it stale
    entry["sha256"] = file_sha256(path)
    index.write_text(json.dumps(entry))
    fake.calls.clear()
    _, reporter = run(subs, out)
    assert "good" not in fake.calls
    assert ("good", "rescored", False) in reporter.done_calls
    assert json.loads(path.read_text())["schema_version"] == 2
    old = next(r for r in first.records if r.student == "good")
    new = read_result(path)
    assert same(new.questions, old.questions) and new.score == old.score


def test_a_roster_names_kept_results_without_running_them_and_adds_zero_rows(
    world: tuple[Path, Path, FakeExecution], tmp_path: Path
) -> None:
    from grader.roster import load_roster

    subs, out, fake = world
    run(subs, out)
    assert read_result(out / "results" / "good.json").lms == {
        "layout": "plain", "name": "good", "email": "", "sis_id": "", "login_id": "",
        "section": "", "on_roster": None, "no_submission": False, "flags": [],
    }  # fmt: skip
    roster = tmp_path / "roster.csv"
    roster.write_text("id,name,sis_id\ngood,Ada Good,S1\ncrash,C,S2\nnone,N,S3\nabsent,Al,S4\n")
    ran = list(fake.calls)
    result, _ = run(subs, out, roster=load_roster(roster))
    assert fake.calls == [*ran, "crash"]  # only the grader failure is retried
    good = read_result(out / "results" / "good.json")
    assert good.lms is not None and (good.lms["name"], good.lms["sis_id"]) == ("Ada Good", "S1")
    absent = read_result(out / "results" / "absent.json")
    assert absent.score == 0 and absent.lms is not None and absent.lms["no_submission"]
    assert [r.student for r in result.graded] == ["absent", "crash", "good", "none"]
    assert list(pd.read_csv(out / "gradebook.csv")["student"]) == [
        "absent",
        "crash",
        "good",
        "none",
    ]
    assert result.counts["missing"] == 1


# --- GPUs (issue 14): job planning and lending ------------------------------------------

GPU_RUBRIC = """\
assignment: t
title: T
reference: hw3
notebook: t.ipynb
{extra}
questions:
  - id: q
    checks:
      - {{id: c, type: value, answer: c, points: 1}}
"""


def _gpu_rubric(tmp_path: Path, extra: str) -> Rubric:
    path = tmp_path / "t.yaml"
    path.write_text(GPU_RUBRIC.format(extra=extra))
    return load_rubric(path)


def _units(n: int) -> Any:
    from grader.sandbox import gpus

    return gpus.GpuInventory(tuple(gpus.GpuUnit(f"GPU-{i}", i, "fake") for i in range(n)))


def test_jobs_follow_the_gpus_rather_than_the_cores() -> None:
    assert grader.batch.plan_jobs(8, 0) == 8  # no GPU lent: the cores decide
    assert grader.batch.plan_jobs(8, 2) == 2  # one unit per concurrent job
    assert grader.batch.plan_jobs(1, 4) == 1


def test_gpus_are_lent_only_to_a_rubric_that_asks(tmp_path: Path) -> None:
    from grader.errors import GraderError
    from grader.sandbox import gpus

    saved = gpus._POOL
    try:
        cpu = _gpu_rubric(tmp_path, "")
        assert cpu.devices == "cpu"
        with pytest.raises(GraderError, match="does not declare `devices: gpu`"):
            grader.batch.lend_gpus(cpu, None, 4, inventory=_units(2), log=lambda _: None)
        gpu = _gpu_rubric(tmp_path, "devices: gpu")
        with pytest.raises(GraderError, match="--gpus 3: this machine has 2"):
            grader.batch.lend_gpus(gpu, 3, 4, inventory=_units(2), log=lambda _: None)
        with pytest.raises(GraderError, match="--gpus all: this machine has 0"):
            grader.batch.lend_gpus(gpu, None, 4, inventory=_units(0), log=lambda _: None)
        lines: list[str] = []
        assert grader.batch.lend_gpus(gpu, None, 4, inventory=_units(3), log=lines.append) == 3
        assert lines == ["GPUs: 3 lent (fake, fake, fake); 3 submission(s) at once"]
        assert gpus.pool().size == 3
        from grader.pipeline import device_request

        assert device_request(gpu).gpus == 1
        assert device_request(cpu).gpus == 0  # a CPU rubric never gets one
    finally:
        gpus._POOL = saved


def test_devices_and_datasets_keys_are_checked(tmp_path: Path) -> None:
    from grader.errors import RubricError

    assert _gpu_rubric(tmp_path, "datasets: [mnist, fashion-mnist]").datasets == (
        "mnist",
        "fashion-mnist",
    )
    with pytest.raises(RubricError, match="not a data set name"):
        _gpu_rubric(tmp_path, "datasets: [../etc]")
    with pytest.raises(RubricError, match="devices"):
        _gpu_rubric(tmp_path, "devices: tpu")
