"""Reports rendered while the batch grades (grader/report/live.py)."""

from __future__ import annotations

from pathlib import Path

from pypdf import PdfReader

from grader.models import Batch
from grader.report.live import LiveReports
from grader.report.render import load_records, render_all
from grader.report.samples import sample_grade_record
from grader.results import write_result


def batch(*warnings: str) -> Batch:
    return Batch("hw3", "0" * 64, "1" * 64, "permissive", warnings=warnings)


def test_live_reports_are_kept_by_the_render_after_the_batch(tmp_path: Path) -> None:
    results = tmp_path / "results"
    results.mkdir()
    (tmp_path / "overrides.yaml").write_text(
        "- student: s1\n  check: Q1a\n  points: 2\n  comment: Seen in office hours.\n",
        encoding="utf-8",
    )
    live = LiveReports(tmp_path, jobs=1)
    warnings = ("no cgroup here: memory not limited",)
    for i in range(2):
        record = sample_grade_record(f"s{i}", seed=i)
        # as the batch does: the result is on disk when on_result is called
        write_result(results, record)
        live(record, batch(*warnings))
    live.close()

    s1 = "\n".join(p.extract_text() or "" for p in PdfReader(tmp_path / "reports/s1.pdf").pages)
    assert "Seen in office hours." in s1  # the override was applied before rendering

    after = render_all(load_records(results), tmp_path, show_sandbox_warning="; ".join(warnings))
    assert after.rendered == []  # same record, overrides and warning: nothing re-rendered
    assert [p.name for p in after.skipped] == ["s0.pdf", "s1.pdf"]
    assert (tmp_path / "summary.pdf").is_file()


def test_a_bad_overrides_file_does_not_stop_live_rendering(tmp_path: Path) -> None:
    (tmp_path / "overrides.yaml").write_text("- student: s0\n  points: lots\n", encoding="utf-8")
    live = LiveReports(tmp_path, jobs=1)
    live(sample_grade_record("s0", seed=0), batch())
    live.close()
    assert (tmp_path / "reports" / "s0.pdf").is_file()


def test_a_broken_report_pool_does_not_stop_the_batch(tmp_path: Path) -> None:
    class Broken:
        def submit(self, record: object) -> None:
            raise RuntimeError("A process in the process pool was terminated abruptly")

        def close(self, *, raise_errors: bool = True) -> None:
            pass

    live = LiveReports(tmp_path, jobs=1)
    live.pool = Broken()  # type: ignore[assignment]
    live(sample_grade_record("s0", seed=0), batch())  # must not raise
    live(sample_grade_record("s1", seed=1), batch())
    assert live.broken
    live.close()
