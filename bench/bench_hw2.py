"""Grade 30 HW2 submissions with ``--jobs 2`` and compare with the issue's 60 s target.

The batch is built in a temporary folder from the samples in ``submissions/hw2``: every
sample except ``trains_at_import`` (whose 20 s import limit is a fixed cost, not grading
speed; add it back with ``--with-slow-import``), copied round-robin under new student
ids until there are ``--n`` of them. Run by hand, as root, from the project root::

    .venv/bin/python bench/bench_hw2.py [--n 30] [--jobs 2] [--runs 1]

Prints the wall time of each run (the reference values come from the cache, as in any
batch after the first), seconds per submission, and the ratio to the 60 s target.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from grader.batch import grade_batch
from grader.reference import load_expected
from grader.rubric import load_rubric

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "submissions" / "hw2"
TARGET_S = 60.0


def build_batch(dest: Path, n: int, with_slow_import: bool) -> list[str]:
    """``n`` student folders copied round-robin from the samples."""
    skip = set() if with_slow_import else {"trains_at_import"}
    samples = sorted(p for p in SAMPLES.iterdir() if p.is_dir() and p.name not in skip)
    names = []
    for i in range(n):
        src = samples[i % len(samples)]
        name = f"s{i:02d}_{src.name}"
        shutil.copytree(src, dest / name)
        names.append(name)
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=30)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--with-slow-import", action="store_true")
    parser.add_argument("--sandbox", default="strict", choices=["strict", "permissive", "off"])
    args = parser.parse_args()
    rubric = load_rubric("hw2")
    load_expected(rubric)  # warm the reference cache, as every batch after the first finds it
    times = []
    with tempfile.TemporaryDirectory(prefix="bench-hw2-") as tmp:
        subs = Path(tmp) / "subs"
        subs.mkdir()
        build_batch(subs, args.n, args.with_slow_import)
        for run in range(args.runs):
            out = Path(tmp) / f"out{run}"
            started = time.monotonic()
            result = grade_batch(
                subs, rubric, out, jobs=args.jobs, sandbox=args.sandbox, log=lambda _: None
            )
            elapsed = time.monotonic() - started
            times.append(elapsed)
            total = sum(r.score for r in result.records)
            print(
                f"run {run + 1}: {len(result.records)} submissions in {elapsed:.1f} s "
                f"({elapsed / len(result.records):.2f} s each), points awarded {total:g}"
            )
    best, median = min(times), statistics.median(times)
    load = os.getloadavg()[0]
    print(
        f"median {median:.1f} s, best {best:.1f} s for {args.n} submissions with --jobs "
        f"{args.jobs} (load average {load:.1f}); ratio to the {TARGET_S:g} s target: "
        f"{median / TARGET_S:.2f}"
    )


if __name__ == "__main__":
    main()
