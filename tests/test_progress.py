"""Progress reporting: lines in logs, a rich bar on a terminal, ``--quiet``; the
``--jobs`` default."""

from __future__ import annotations

import dataclasses
import io
import os
from typing import Any

import pytest

from grader.cli import _grade_parser, default_jobs
from grader.models import CellFailure, GradeRecord
from grader.progress import (
    BarReporter,
    QuietReporter,
    Reporter,
    Tally,
    make_reporter,
    result_line,
)
from grader.report.samples import sample_grade_record

BASE = sample_grade_record("base", traceback_lines=0)


def result(student: str, **execution: Any) -> GradeRecord:
    ex = dataclasses.replace(BASE.execution, **execution)
    return dataclasses.replace(BASE, student=student, score=83.5, max_score=90, execution=ex)


def failure(kind: Any) -> CellFailure:
    return CellFailure(cell=3, kind=kind, ename="E", evalue="v", traceback="")


CRASHED = result("c", failures=(failure("error"),))
TIMED_OUT = result("t", failures=(failure("timeout"),), timed_out=True)
DIED = result("d", failures=(failure("kernel_died"),), kernel_died=True)
# the batch says the grader failed (the record's warnings say so too, in words)
GRADER_FAILED = result(
    "g", notebook=None, warnings=("the grader failed on this submission (KeyError: 'x')",)
)


def test_result_lines() -> None:
    assert result_line(result("a")) == "a: 83.5/90"
    assert result_line(TIMED_OUT) == "t: 83.5/90 (1 cell(s) failed, timed out)"
    assert result_line(result("a"), "cached") == "a: 83.5/90 [unchanged]"
    assert result_line(result("a"), "rescored") == "a: 83.5/90 [re-scored from cache]"
    assert result_line(GRADER_FAILED) == "g: 83.5/90 (not run)"


def test_tally_counts_crashes_timeouts_and_kernel_deaths() -> None:
    tally = Tally()
    for item, how in [(CRASHED, "executed"), (TIMED_OUT, "executed"), (DIED, "rescored")]:
        tally.add(item, how)  # type: ignore[arg-type]
    tally.add(result("a"), "cached")
    tally.add(GRADER_FAILED, "executed", True)
    assert tally.text() == "crashes 1 · timeouts 1 · kernel deaths 1 · cached 2"
    assert tally.counts["grader errors"] == 1


def test_lines_when_not_a_terminal() -> None:
    stream = io.StringIO()
    reporter = make_reporter("auto", stream)
    assert type(reporter) is Reporter
    reporter.start(2)
    reporter.done(result("a"), "executed")
    reporter.done(CRASHED, "cached")
    reporter.close()
    assert stream.getvalue() == "a: 83.5/90\nc: 83.5/90 (1 cell(s) failed) [unchanged]\n"


def test_quiet_prints_only_errors(capsys: pytest.CaptureFixture[str]) -> None:
    reporter = make_reporter("quiet")
    assert isinstance(reporter, QuietReporter)
    reporter.start(2)
    reporter.done(result("a"), "executed")
    reporter.done(dataclasses.replace(GRADER_FAILED, student="w"), "executed")  # words only
    reporter.done(GRADER_FAILED, "executed", True)
    reporter.warning("sandbox protection off: cgroups")
    reporter.close()
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        "grade: error: g: 83.5/90 (not run)",
        "grade: warning: sandbox protection off: cgroups",
    ]


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bar_on_a_terminal_shows_counts_and_tally() -> None:
    stream = FakeTTY()
    reporter = make_reporter("auto", stream, width=140)
    assert isinstance(reporter, BarReporter)
    reporter.start(3)
    reporter.done(TIMED_OUT, "executed")
    reporter.done(GRADER_FAILED, "executed", True)
    reporter.done(result("a"), "cached")
    reporter.close()
    text = stream.getvalue()
    assert "3/3" in text and "timeouts 1" in text and "cached 1" in text
    assert "error:" in text and "g: 83.5/90" in text


def test_jobs_default_is_the_cores_this_process_may_use() -> None:
    cores = len(os.sched_getaffinity(0))
    assert default_jobs() == cores
    args = _grade_parser().parse_args(["subs", "--rubric", "hw3"])
    assert args.jobs == cores and args.force is False and args.quiet is False
    with pytest.raises(SystemExit):
        _grade_parser().parse_args(["subs", "--rubric", "hw3", "--jobs", "0"])


def test_the_running_cell_shows_once_it_has_run_a_while() -> None:
    from grader.progress import RunningCells

    now = [100.0]
    running = RunningCells(clock=lambda: now[0])
    assert running.text() == ""
    running.update("alice", 5, 12)
    now[0] += 1
    running.update("bob", 2, 3)
    assert running.text() == ""  # 2 s: not long enough to show
    now[0] += 66
    assert running.text() == "alice: cell 5 of 12, 1:07"  # the longest-running one
    running.update("alice", 0, 0)  # alice's notebook finished
    assert running.text() == "bob: cell 2 of 3, 1:06"


def test_the_bar_shows_the_running_cell() -> None:
    import io

    from grader.progress import BarReporter

    out = io.StringIO()
    bar = BarReporter(out, width=160)
    bar.running.clock = lambda: 1000.0
    bar.start(2)
    bar.cell("carol", 3, 9)
    bar.running.clock = lambda: 1042.0
    bar.progress.refresh()
    bar.close()
    assert "carol: cell 3 of 9, 0:42" in out.getvalue()
