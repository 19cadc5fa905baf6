"""Render each student's report as soon as the batch writes the result.

``grade`` hands a :class:`LiveReports` to :func:`grader.batch.grade_batch` as its
``on_result``: reports render in warm worker processes while kernels run (a kernel
mostly waits, a report mostly computes), so the reports are nearly done when the last
student is. The summary needs every result: :func:`render_all` makes it after the batch
and skips every report this already rendered (same index).
"""

from __future__ import annotations

from pathlib import Path

from grader.models import Batch, GradeRecord
from grader.overrides import (
    OVERRIDES_FILE,
    Override,
    OverridesError,
    apply_overrides,
    load_overrides,
)
from grader.report.render import ReportPool


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

    def __call__(self, record: GradeRecord, batch: Batch) -> None:
        """Queue ``record``'s report (the first call starts the pool with the batch's
        sandbox warning)."""
        if self.pool is None:
            self.pool = ReportPool(
                self.out_dir, jobs=self.jobs, show_sandbox_warning=batch.sandbox_warning
            )
        if self.broken:
            return
        try:
            record = apply_overrides(record, self.overrides)
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
