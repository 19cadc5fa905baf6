"""Render time of per-student PDF reports in one warm process.

    .venv/bin/python bench/bench_reports.py [--n 100] [--baseline-n 20] [--jobs N]
                                            [--results DIR/results]

Renders ``--n`` synthetic HW3 reports (``grader.report.samples``), or the results JSON
files of a graded batch given with ``--results`` (cycled to ``--n``), after one warm-up
report and prints the seconds per report (wall and CPU), the ratio against the issue's
target of 0.25 s, and the ratio against a naive baseline measured in the same run: a
render that builds a new Jinja environment and a new ``FontConfiguration`` and re-parses
the CSS for every report. ``--jobs`` > 1 also times the same reports spread over worker
processes through :class:`grader.report.render.ReportPool` (as ``render_all`` and the
batch do: ``spawn`` workers, each warmed by its initializer), reported as wall seconds
per report including the workers' start-up.

Wall and CPU times move with the machine's load (the CI machine is shared), so the
benchmark also counts the Python function calls of a few renders under cProfile: a
load-independent measure of the work per report, for comparing changes.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import os
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jinja2
from pypdf import PdfReader
from weasyprint import CSS, HTML
from weasyprint.text.fonts import FontConfiguration

from grader.models import GradeRecord
from grader.report import render as render_mod
from grader.report.format import fmt_points, fmt_shape
from grader.report.render import ReportPool, render_student_report
from grader.report.samples import sample_grade_record
from grader.report.view import student_view
from grader.results import read_results

TARGET_S = 0.25


def naive_render(record: GradeRecord, out_pdf: Path) -> None:
    """The baseline: nothing reused between reports."""
    env = jinja2.Environment(
        # the report's templates and the check types' macro files, compiled afresh
        loader=render_mod.jinja_env().loader,
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pts"] = fmt_points
    env.filters["shape"] = fmt_shape
    html = env.get_template("report.html.j2").render(r=student_view(record))
    fonts = FontConfiguration()
    css = CSS(filename=str(render_mod.TEMPLATES_DIR / render_mod.CSS_FILE), font_config=fonts)
    HTML(string=html, base_url=str(render_mod.TEMPLATES_DIR)).write_pdf(
        out_pdf, stylesheets=[css], font_config=fonts
    )


def timed(fn: Any, records: list[GradeRecord], out: Path) -> tuple[list[float], list[float]]:
    walls, cpus = [], []
    for r in records:
        w, c = time.perf_counter(), time.process_time()
        fn(r, out / f"{r.student}.pdf")
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return walls, cpus


def calls_per_report(fn: Any, records: list[GradeRecord], out: Path) -> float:
    """Python function calls per report (deterministic, unlike timings)."""
    profile = cProfile.Profile()
    profile.enable()
    for r in records:
        fn(r, out / f"calls-{r.student}.pdf")
    profile.disable()
    return pstats.Stats(profile).total_calls / len(records)  # type: ignore[attr-defined, no-any-return]


def describe(name: str, walls: list[float], cpus: list[float]) -> float:
    mean = statistics.fmean(walls)
    print(
        f"{name:<34} n={len(walls):>3}  mean {mean:.3f} s  median {statistics.median(walls):.3f} s"
        f"  min {min(walls):.3f} s  cpu mean {statistics.fmean(cpus):.3f} s"
    )
    return mean


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--baseline-n", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--results", type=Path, help="a results/ folder to render instead")
    args = parser.parse_args()

    if args.results:
        real = read_results(args.results)
        records = [
            dataclasses.replace(real[i % len(real)], student=f"{real[i % len(real)].student}-{i}")
            for i in range(args.n)
        ]
    else:
        records = [sample_grade_record(f"s{i:03d}", seed=i) for i in range(args.n)]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        t0 = time.perf_counter()
        render_student_report(records[0], out / "warmup.pdf")
        print(f"warm-up (first report, cold caches)  {time.perf_counter() - t0:.3f} s")
        pages = len(PdfReader(out / "warmup.pdf").pages)
        load = os.getloadavg()[0]
        print(f"first report: {pages} pages; load average {load:.2f} on {os.cpu_count()} cores")

        walls, cpus = timed(render_student_report, records, out)
        mean = describe("reused env/fonts/CSS (this code)", walls, cpus)

        naive_render(records[0], out / "naive-warmup.pdf")
        b_walls, b_cpus = timed(naive_render, records[: args.baseline_n], out)
        base = describe("naive (new fonts+CSS+env each)", b_walls, b_cpus)

        ours = calls_per_report(render_student_report, records[:5], out)
        naive = calls_per_report(naive_render, records[:5], out)
        print(f"python calls per report: {ours / 1e3:.0f}k (naive {naive / 1e3:.0f}k)")
        print(f"ratio to target {TARGET_S:.2f} s: {mean / TARGET_S:.2f}x")
        print(f"speed-up over naive baseline: {base / mean:.2f}x")

        if args.jobs > 1:
            t = time.perf_counter()
            with ReportPool(out / "pool", jobs=args.jobs, force=True) as pool:
                for r in records:
                    pool.submit(r)
                pool.close()
            per = (time.perf_counter() - t) / len(records)
            print(
                f"ReportPool, {args.jobs} worker processes (incl. start-up and warm-up): "
                f"{per:.3f} s wall per report, ratio to target {per / TARGET_S:.2f}x"
            )


if __name__ == "__main__":
    main()
