"""Incremental regrades on 100 generated HW3 submissions (run by hand).

The submissions are the HW3 samples (``submissions/hw3``) except ``infinite_loop``
(whose 30-second cell timeout would dominate every run), cycled to 100 and each made
unique by a metadata field in its notebook, so no two share a cached execution.

Three runs on the same output folder:

1. first run (every notebook executes);
2. a re-run with nothing changed (target: under 2 s for 100 submissions);
3. a re-run after a points-only rubric edit (q2_O: 4 → 5 points): re-scored from the
   cached executions, no kernel started.

Times are measured in this process (torch already imported, as in a long-lived grader),
and for the no-change re-run also as a ``grade`` command from a fresh interpreter.

    .venv/bin/python bench/bench_regrade.py [--n 100] [--jobs N]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from hw3_batch import build_batch

from grader.batch import grade_batch
from grader.cli import default_jobs
from grader.progress import Reporter
from grader.reference import load_expected
from grader.rubric import RUBRICS_DIR, Rubric, load_rubric

# samples left out of the batch
EXCLUDED = {"infinite_loop"}
Q2_O = "{id: q2_O, type: value, answer: q2_O, points: 4, atol: 1.0e-6}"


def timed(label: str, run: Callable[[], object]) -> float:
    started = time.monotonic()
    counts = run()
    elapsed = time.monotonic() - started
    print(f"{label}: {elapsed:.2f} s {counts if counts is not None else ''}", flush=True)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=default_jobs())
    parser.add_argument("--sandbox", default="strict", choices=["strict", "permissive", "off"])
    args = parser.parse_args()
    rubric = load_rubric("hw3")
    load_expected(rubric)  # warm the reference cache
    quiet = Reporter(lambda _: None)
    with tempfile.TemporaryDirectory(prefix="bench-regrade-") as tmp:
        subs, out = Path(tmp) / "subs", Path(tmp) / "out"
        subs.mkdir()
        build_batch(subs, args.n, EXCLUDED)

        def batch(which: Rubric = rubric) -> dict[str, int]:
            result = grade_batch(
                subs, which, out, jobs=args.jobs, sandbox=args.sandbox, reporter=quiet
            )
            return result.counts

        first = timed(f"first run, {args.n} submissions, --jobs {args.jobs}", batch)
        again = timed("no-change re-run (in process)", batch)
        command = [sys.executable, "-m", "grader.cli", str(subs), "--rubric", "hw3"]
        command += ["--out", str(out), "--no-reports", "--quiet", "--sandbox", args.sandbox]
        cli = timed(
            "no-change re-run (`grade` command, fresh interpreter)",
            lambda: (
                subprocess.run(command, check=True, capture_output=True).stdout.decode().strip()
            ),
        )
        edited = Path(tmp) / "hw3.yaml"
        text = (RUBRICS_DIR / "hw3.yaml").read_text()
        edited.write_text(text.replace(Q2_O, Q2_O.replace("points: 4", "points: 5")))
        points = timed(
            "points-only rubric edit re-run (in process)", lambda: batch(load_rubric(edited))
        )
    load = os.getloadavg()[0]
    print(
        f"per submission: first {first / args.n:.3f} s, no-change {again / args.n:.4f} s, "
        f"points edit {points / args.n:.4f} s"
    )
    print(
        f"ratios: first/no-change {first / again:.0f}x, first/points-edit {first / points:.0f}x, "
        f"first/no-change-command {first / cli:.0f}x; target no-change < 2 s: "
        f"{'met' if again < 2 else 'missed'} in process, {'met' if cli < 2 else 'missed'} "
        f"as a command (load average {load:.1f}, {os.cpu_count()} cores)"
    )


if __name__ == "__main__":
    main()
