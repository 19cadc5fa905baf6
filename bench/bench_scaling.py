"""Scaling: one batch of generated HW3 submissions graded four ways (run by hand).

``--jobs 1`` and ``--jobs 2`` (local threads, each submission in its own sandboxed
kernel), then a Dask ``LocalCluster`` with 1 and with 2 single-threaded worker processes
(``grade_batch(..., cluster=address)``: the same per-submission task, sent as bytes).
Every run grades the same submissions from scratch into its own output folder (nothing
cached), in strict sandbox mode, with the reference values already cached, as for every
batch after the first. Cluster start-up (scheduler, worker processes) and the workers'
first imports are not timed - a grading cluster is long-lived - but each timed cluster
batch includes its per-batch checks (one check task and one preflight kernel per worker).

The submissions are the HW3 samples that run normally - every sample except
``infinite_loop`` (a fixed 30 s cell timeout), ``kernel_dies`` (a kernel crash),
``not_json`` and ``no_notebook`` (nothing to run) - cycled to ``--n`` and each made
byte-unique by a metadata field, so no two share a hash.

    .venv/bin/python bench/bench_scaling.py [--n 8] [--rounds 1]

Prints, for each run, wall seconds, seconds per submission and the speed-up over
``--jobs 1`` measured in the same round, with the load average before and after.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from hw3_batch import build_batch

from grader.batch import grade_batch
from grader.progress import Reporter
from grader.reference import load_expected
from grader.rubric import Rubric, load_rubric

# samples left out of the batch
EXCLUDED = {"infinite_loop", "kernel_dies", "not_json", "no_notebook"}


def _warm() -> str:
    """Run on each worker before timing: the imports a long-lived worker has done."""
    import grader.cluster  # noqa: F401

    return "warm"


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=8, help="submissions per run (default 8)")
    parser.add_argument("--rounds", type=int, default=1, help="times to repeat the 4 runs")
    args = parser.parse_args()

    from distributed import Client, LocalCluster

    rubric = load_rubric("hw3")
    load_expected(rubric)  # warm the reference cache
    quiet = Reporter(lambda _: None)
    print(f"{os.cpu_count()} cores; load average (1/5/15 min) at start {load()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-scaling-") as tmp:
        subs = Path(tmp) / "subs"
        subs.mkdir()
        build_batch(subs, args.n, EXCLUDED)
        outs = iter(range(10**6))

        def batch(which: Rubric, **kwargs: object) -> float:
            out = Path(tmp) / f"out{next(outs)}"
            started = time.monotonic()
            result = grade_batch(subs, which, out, reporter=quiet, **kwargs)  # type: ignore[arg-type]
            elapsed = time.monotonic() - started
            assert result.counts["executed"] == args.n, result.counts
            return elapsed

        def on_cluster(workers: int) -> Callable[[], float]:
            def run() -> float:
                with (
                    LocalCluster(
                        n_workers=workers,
                        threads_per_worker=1,
                        processes=True,
                        dashboard_address=None,
                    ) as local,
                    Client(local, set_as_default=False) as client,
                ):
                    client.run(_warm)
                    return batch(rubric, cluster=local.scheduler_address)

            return run

        runs: list[tuple[str, Callable[[], float]]] = [
            ("--jobs 1", lambda: batch(rubric, jobs=1)),
            ("--jobs 2", lambda: batch(rubric, jobs=2)),
            ("LocalCluster, 1 worker", on_cluster(1)),
            ("LocalCluster, 2 workers", on_cluster(2)),
        ]
        for round_ in range(1, args.rounds + 1):
            print(f"\nround {round_}: {args.n} submissions per run")
            print(f"{'run':26} {'wall s':>8} {'s/sub':>7} {'speed-up':>9}  load before → after")
            base = None
            for label, run in runs:
                before = load()
                elapsed = run()
                base = base or elapsed
                print(
                    f"{label:26} {elapsed:8.1f} {elapsed / args.n:7.2f} {base / elapsed:8.2f}x"
                    f"  {before} → {load()}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
