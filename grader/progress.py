"""How a batch reports its progress: a live bar on a terminal, one line per student in
logs, or nothing but the last line and errors (``--quiet``).

Every reporter receives the same events: the batch size, then each finished result as
the plain dict written to ``results/<student>.json`` with how it was obtained
(``executed``: the student's code ran; ``rescored``: checks re-ran over a cached
execution; ``cached``: the result on disk was still valid).
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any, Literal, TextIO

How = Literal["executed", "rescored", "cached"]
Style = Literal["auto", "bar", "lines", "quiet"]

_HOW_NOTE = {"executed": "", "rescored": " [re-scored from cache]", "cached": " [unchanged]"}


def outcome_notes(result: Mapping[str, Any]) -> list[str]:
    """What went wrong while a result's code ran, in a few words each."""
    ex = result.get("execution", {})
    notes = []
    if ex.get("failures"):
        notes.append(f"{len(ex['failures'])} cell(s) failed")
    if ex.get("timed_out"):
        notes.append("timed out")
    if ex.get("kernel_died"):
        notes.append("kernel died")
    if ex.get("notebook") is None and ex.get("module") is None:
        notes.append("not run")
    if ex.get("module_problem"):
        notes.append(f"{ex['module_problem'][:80]}")
    return notes


def result_line(result: Mapping[str, Any], how: How = "executed") -> str:
    """``student: 83/90 (1 cell(s) failed)``, the line logged per student."""
    notes = outcome_notes(result)
    tail = f" ({', '.join(notes)})" if notes else ""
    return f"{result['student']}: {result['score']:g}/{result['max_score']:g}{tail}{_HOW_NOTE[how]}"


def grader_failed(result: Mapping[str, Any]) -> bool:
    """The grader itself failed on this submission (a crashed record)."""
    warnings = result.get("execution", {}).get("warnings", [])
    return any(isinstance(w, str) and w.startswith("the grader failed") for w in warnings)


class Tally:
    """Counts shown live: how results were obtained and what went wrong."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def add(self, result: Mapping[str, Any], how: How) -> None:
        ex = result.get("execution", {})
        self.counts[how] += 1
        if any(f.get("kind") == "error" for f in ex.get("failures", [])):
            self.counts["crashes"] += 1
        if ex.get("timed_out"):
            self.counts["timeouts"] += 1
        if ex.get("kernel_died") or ex.get("limit_hit"):
            self.counts["kernel deaths"] += 1
        if grader_failed(result):
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

    def done(self, result: Mapping[str, Any], how: How) -> None:
        self.tally.add(result, how)
        self.log(result_line(result, how))

    def close(self) -> None:
        """Called once, whether the batch finished or was interrupted."""


class QuietReporter(Reporter):
    """Nothing per student; errors (grader failures, warnings) to stderr."""

    def warning(self, message: str) -> None:
        print(f"grade: warning: {message}", file=self.err or sys.stderr)

    def done(self, result: Mapping[str, Any], how: How) -> None:
        self.tally.add(result, how)
        if grader_failed(result):
            print(f"grade: error: {result_line(result, how)}", file=self.err or sys.stderr)


class BarReporter(Reporter):
    """A rich progress bar with counts, elapsed time, ETA and a live tally."""

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
        self.progress = Progress(
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[tally]}"),
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

    def done(self, result: Mapping[str, Any], how: How) -> None:
        self.tally.add(result, how)
        if grader_failed(result):
            self.console.print(f"[red]error:[/red] {result_line(result, how)}", highlight=False)
        if self.task is not None:
            self.progress.update(self.task, advance=1, tally=self.tally.text())

    def close(self) -> None:
        self.progress.stop()


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
