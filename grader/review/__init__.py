"""The instructor's review: the review page (``grade review OUT``), regrade requests
(``grade regrade OUT STUDENT CHECK --reason …``), the audit trail and the batch
dashboard (``OUT/index.html``).

* :mod:`grader.review.queue` — the queues of answers awaiting review (ordering seam);
* :mod:`grader.review.audit` — regrade requests and each result's ``review`` section;
* :mod:`grader.review.dashboard` — ``OUT/index.html`` (extension sections);
* :mod:`grader.review.app` — the local web app;
* :mod:`grader.review.cli` — the two verbs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from grader.models import GradeRecord


def after_grading(out_dir: Path, graded: Sequence[GradeRecord]) -> None:
    """What every ``grade`` run writes for the review once its results are written:
    each result's ``review`` section (a re-scored result has none yet) and
    ``OUT/index.html`` from ``graded`` (the records with the overrides applied)."""
    from grader.review.audit import sync_review_sections
    from grader.review.dashboard import write_dashboard

    changed = set(sync_review_sections(out_dir))
    if changed:
        graded = [_with_review(out_dir, r) if r.student in changed else r for r in graded]
    write_dashboard(out_dir, graded)


def _with_review(out_dir: Path, record: GradeRecord) -> GradeRecord:
    import dataclasses

    from grader.results import RESULTS_DIR, read_result, result_path

    written = read_result(result_path(out_dir / RESULTS_DIR, record.student))
    return dataclasses.replace(record, review=written.review)
