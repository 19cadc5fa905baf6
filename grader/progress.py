"""How a batch reports its progress: a live bar on a terminal, one line per student in
logs, or nothing but the last line and errors (``--quiet``).

Every reporter receives the same events: the batch size, then each finished
:class:`GradeRecord` (as written to ``results/<student>.json``) with how it was obtained
(``executed``: the student's code ran; ``rescored``: checks re-ran over a cached
execution; ``cached``: the result on disk was still valid) and whether the grader itself
failed on that submission (the batch knows; the record then says so in its warnings).
"""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, Literal, TextIO

from grader.models import GradeRecord

How = Literal["executed", "rescored", "cached"]
Style = Literal["auto", "bar", "lines", "quiet"]

_HOW_NOTE = {"executed": "", "rescored": " [re-scored from cache]", "cached": " [unchanged]"}


def outcome_notes(record: GradeRecord) -> list[str]:
    """What went wrong while a result's code ran, in a few words each."""
    ex = record.execution
    notes = []
    if ex.failures:
        notes.append(f"{len(ex.failures)} cell(s) failed")
    if ex.timed_out:
        notes.append("timed out")
    if ex.kernel_died:
        notes.append("kernel died")
    if ex.notebook is None and ex.module is None:
        notes.append("not run")
    if ex.module_problem:
        notes.append(f"{ex.module_problem[:80]}")
    return notes


def result_line(record: GradeRecord, how: How = "executed") -> str:
    """``student: 83/90 (1 cell(s) failed)``, the line logged per student."""
    notes = outcome_notes(record)
    tail = f" ({', '.join(notes)})" if notes else ""
    return f"{record.student}: {record.score:g}/{record.max_score:g}{tail}{_HOW_NOTE[how]}"


class Tally:
    """Counts shown live: how results were obtained and what went wrong."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def add(self, record: GradeRecord, how: How, failed: bool = False) -> None:
        ex = record.execution
        self.counts[how] += 1
        if any(f.kind == "error" for f in ex.failures):
            self.counts["crashes"] += 1
        if ex.timed_out:
            self.counts["timeouts"] += 1
        if ex.kernel_died or ex.limit_hit:
            self.counts["kernel deaths"] += 1
        if failed:
            self.counts["grader errors"] += 1

    def text(self) -> str:
        c = self.counts
        return (
            f"crashes {c['crashes']} · timeouts {c['timeouts']} · kernel deaths "
            f"{c['kernel deaths']} · cached {c['cached'] + c['rescored']}"
        )


class Reporter:
    """One-line-per-student logs (the behaviour when output is not a terminal)."""

    def __init__(self, log: Callable[[str], None] = print, err: TextIO | None = None) -> None:
        self.log = log
        self.err = err
        self.tally = Tally()
        self.total = 0

    def start(self, total: int) -> None:
        self.total = total

    def warning(self, message: str) -> None:
        self.log(f"warning: {message}")

    def done(self, record: GradeRecord, how: How, failed: bool = False) -> None:
        """One student finished; ``failed``: the grader itself failed on the submission."""
        self.tally.add(record, how, failed)
        self.log(result_line(record, how))

    def cell(self, student: str, n: int, total: int) -> None:
        """``student``'s notebook started its ``n``-th code cell of ``total`` (``n`` 0:
        it is no longer running). Called from grading threads; logs show nothing."""

    def close(self) -> None:
        """Called once, whether the batch finished or was interrupted."""


class QuietReporter(Reporter):
    """Nothing per student; errors (grader failures, warnings) to stderr."""

    def warning(self, message: str) -> None:
        print(f"grade: warning: {message}", file=self.err or sys.stderr)

    def done(self, record: GradeRecord, how: How, failed: bool = False) -> None:
        self.tally.add(record, how, failed)
        if failed:
            print(f"grade: error: {result_line(record, how)}", file=self.err or sys.stderr)


class RunningCells:
    """The notebooks running now, each with its current cell and when it started (thread
    safe: grading threads report, the bar's refresh reads)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._running: dict[str, tuple[int, int, float]] = {}

    def update(self, student: str, n: int, total: int) -> None:
        with self._lock:
            if n <= 0:
                self._running.pop(student, None)
            else:
                self._running[student] = (n, total, self.clock())

    def text(self, min_seconds: float = 5.0) -> str:
        """The longest-running cell, once it has run ``min_seconds`` (short cells would
        only flicker): ``alice: cell 5 of 12, 1:07``; empty when there is none."""
        with self._lock:
            if not self._running:
                return ""
            student, (n, total, since) = min(self._running.items(), key=lambda kv: kv[1][2])
        elapsed = self.clock() - since
        if elapsed < min_seconds:
            return ""
        minutes, seconds = divmod(int(elapsed), 60)
        return f"{student}: cell {n} of {total}, {minutes}:{seconds:02d}"


class BarReporter(Reporter):
    """A rich progress bar with counts, elapsed time, ETA, a live tally and the running
    cell of the longest-running notebook."""

    def __init__(self, stream: TextIO | None = None, width: int | None = None) -> None:
        super().__init__()
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.console = Console(file=stream or sys.stdout, width=width)
        self.running = RunningCells()
        self.progress = Progress(
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[tally]}"),
            _RunningColumn(self.running),
            console=self.console,
            transient=False,
        )
        self.task: Any = None

    def start(self, total: int) -> None:
        self.total = total
        self.progress.start()
        self.task = self.progress.add_task("grading", total=total, tally=self.tally.text())

    def warning(self, message: str) -> None:
        self.console.print(f"[yellow]warning:[/yellow] {message}", markup=True, highlight=False)

    def done(self, record: GradeRecord, how: How, failed: bool = False) -> None:
        self.tally.add(record, how, failed)
        if failed:
            self.console.print(f"[red]error:[/red] {result_line(record, how)}", highlight=False)
        if self.task is not None:
            self.progress.update(self.task, advance=1, tally=self.tally.text())

    def cell(self, student: str, n: int, total: int) -> None:
        self.running.update(student, n, total)

    def close(self) -> None:
        self.progress.stop()


def _RunningColumn(running: RunningCells) -> Any:
    """A rich column rendering ``running.text()`` at each refresh (rich imported late so
    that the line and quiet reporters never load it)."""
    from rich.progress import ProgressColumn
    from rich.text import Text

    class RunningColumn(ProgressColumn):
        def render(self, task: Any) -> Text:
            return Text(running.text(), style="dim")

    return RunningColumn()


def make_reporter(
    style: Style = "auto", stream: TextIO | None = None, width: int | None = None
) -> Reporter:
    """The reporter for ``style``; ``auto`` is a bar on a terminal, lines otherwise."""
    out = stream or sys.stdout
    if style == "auto":
        style = "bar" if out.isatty() else "lines"
    if style == "quiet":
        return QuietReporter()
    if style == "bar":
        return BarReporter(out, width)
    return Reporter(lambda line: print(line, file=out, flush=True))
