"""Render each student's report as soon as the batch writes the result.

``grade`` hands a :class:`LiveReports` to :func:`grader.batch.grade_batch` as its
``on_result``: reports render in warm worker processes while kernels run (a kernel
mostly waits, a report mostly computes), so the reports are nearly done when the last
student is. The summary and the gradebook need every result: :func:`render_all` makes
them after the batch and skips every report this already rendered (same index).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from grader.overrides import Override, OverridesError, apply_overrides, load_overrides
from grader.report.render import OVERRIDES_FILE, ReportPool


class LiveReports:
    """An ``on_result`` callback that queues each finished result's report."""

    def __init__(self, out_dir: Path, jobs: int) -> None:
        self.out_dir = out_dir
        self.jobs = max(1, jobs)
        path = out_dir / OVERRIDES_FILE
        self.overrides: list[Override] = []
        self.pool: ReportPool | None = None
        self.broken = False
        if path.is_file():
            try:
                self.overrides = load_overrides(path)
            except OverridesError:
                # render_all reports the bad file after the batch; grading goes on
                self.overrides = []

    def __call__(self, result: Mapping[str, Any], warnings: tuple[str, ...]) -> None:
        """Queue ``result``'s report (the first call starts the pool with the warnings)."""
        if self.pool is None:
            self.pool = ReportPool(
                self.out_dir, jobs=self.jobs, show_sandbox_warning="; ".join(warnings) or None
            )
        if self.broken:
            return
        try:
            record = apply_overrides(dict(result), self.overrides)
        except OverridesError:
            return  # an override that does not fit: render_all names it after the batch
        try:
            self.pool.submit(record)
        except Exception:
            # A report worker that died (a broken process pool) must not stop the grading:
            # render_all renders every report missing from the index after the batch.
            self.broken = True

    def close(self) -> None:
        """Wait for the queued reports and save the index; failures are left to
        :func:`render_all`, which renders again every report not in the index."""
        if self.pool is not None:
            self.pool.close(raise_errors=False)
