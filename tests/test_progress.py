"""Progress reporting: lines in logs, a rich bar on a terminal, ``--quiet``; the
``--jobs`` default."""

from __future__ import annotations

import io
import os
from typing import Any

import pytest

from grader.cli import _grade_parser, default_jobs
from grader.progress import (
    BarReporter,
    QuietReporter,
    Reporter,
    Tally,
    make_reporter,
    result_line,
)


def result(student: str, **execution: Any) -> dict[str, Any]:
    ex = {"notebook": "hw3.ipynb", "module": None, "failures": [], "warnings": [], **execution}
    return {"student": student, "score": 83.5, "max_score": 90, "execution": ex}


CRASHED = result("c", failures=[{"kind": "error"}])
TIMED_OUT = result("t", failures=[{"kind": "timeout"}], timed_out=True)
DIED = result("d", failures=[{"kind": "kernel_died"}], kernel_died=True)
GRADER_FAILED = result(
    "g", notebook=None, warnings=["the grader failed on this submission (KeyError: 'x')"]
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
    assert tally.text() == "crashes 1 · timeouts 1 · kernel deaths 1 · cached 2"


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
    reporter.done(GRADER_FAILED, "executed")
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
    reporter.done(GRADER_FAILED, "executed")
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
