"""Warm vs cold starts: a small torch notebook, and an HW2 module worker, per submission.

Run as root on the grading machine (needs bubblewrap and a writable cgroup)::

    .venv/bin/python bench/bench_warm.py [--runs 10] [--what notebook|module|both]

Each run is one submission as the sandbox runs it
(:func:`grader.sandbox.stages.notebook_in_session` with the HW3 rubric's limits: a fresh
scratch copy with quotas, a cgroup, a kernel in its own namespaces, the harness, two
cells importing torch and building a layer, the harvest, teardown), once cold (new
sandbox, new interpreter) and once warm (forked from this thread's template). Runs are
interleaved (cold, warm, ...) so that load from other jobs affects both sides alike. The
template's own start (importing torch once) is reported apart: it is paid once per
grading worker, not per submission. Prints wall seconds per submission (median, mean,
min), the ratio cold/warm and the load average.

The module part does the same for the HW2 module stage (:func:`grader.sandbox.warm_or_cold.
open_session` + :func:`grader.sandbox.module.run_module`: scratch quota, cgroup, one
worker that imports ``layers.py`` and makes all of the rubric's calls, teardown), with
the reference solution (NumPy only) and with the same solution plus ``import torch`` (a
student who imports torch pays its import cold, not warm: the template holds it).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from grader.models import AnswerRequest, Call
from grader.pipeline import execution_limits
from grader.reference import load_expected
from grader.rubric import Rubric, load_rubric
from grader.sandbox import confine, warm
from grader.sandbox.module import run_module
from grader.sandbox.protections import detect_protections
from grader.sandbox.stages import notebook_in_session
from grader.sandbox.warm_or_cold import open_session
from grader.sandbox.warm_session import WarmSession

CELLS = [
    "import torch\nimport torch.nn as nn",
    "layer = nn.Linear(16, 4)\ny = float(layer(torch.ones(2, 16)).sum())\nn_params = sum("
    "p.numel() for p in layer.parameters())",
]


def one(root: Path, rubric: Rubric, use_warm: bool, i: int) -> float:
    """Seconds for one submission; asserts the answers came back."""
    base = Path(tempfile.mkdtemp(prefix=f"grade-bench-{i}-", dir=root))
    work, outbox = base / "work", base / "outbox"
    work.mkdir()
    outbox.mkdir()
    nb = nbformat.v4.new_notebook()  # type: ignore[no-untyped-call]
    nb.cells = [nbformat.v4.new_code_cell(c) for c in CELLS]  # type: ignore[no-untyped-call]
    nbformat.write(nb, work / "hw3.ipynb")  # type: ignore[no-untyped-call]
    started = time.monotonic()
    run, _ = notebook_in_session(
        work / "hw3.ipynb",
        work,
        outbox,
        [AnswerRequest("n_params")],
        execution_limits(rubric).model_copy(update={"cell_timeout": 60}),
        "strict",
        frameworks=rubric.frameworks,
        warm=use_warm,
    )
    took = time.monotonic() - started
    answer = run.answers["n_params"]
    assert answer.status == "ok" and answer.value == 68, (answer, run.execution.failures)
    return took


def one_module(
    root: Path, rubric: Rubric, source: str, calls: list[Call], use_warm: bool, i: int
) -> float:
    """Seconds for one submission's module stage; asserts every call came back ok."""
    base = Path(tempfile.mkdtemp(prefix=f"grade-bench-m{i}-", dir=root))
    work, outbox = base / "work", base / "outbox"
    work.mkdir()
    outbox.mkdir()
    (work / "layers.py").write_text(source)
    started = time.monotonic()
    limits = execution_limits(rubric)
    with open_session(work, outbox, limits, "strict", rubric.frameworks, warm=use_warm) as box:
        assert isinstance(box, WarmSession) is use_warm
        run = run_module(
            work / "layers.py",
            work,
            outbox,
            box.runtime / "inbox",
            calls,
            limits,
            launcher=box.worker_launcher,
            env=box.worker_env(),
            limit_hit=box.limit_hit,
        )
    took = time.monotonic() - started
    bad = {k: r.message for k, r in run.results.items() if r.status != "ok"}
    assert run.import_error is None and not bad, (run.import_error, bad)
    return took


def bench_modules(runs: int) -> None:
    """Cold vs warm module stage (HW2) for the solution, without and with ``import torch``."""
    rubric = load_rubric("hw2")
    assert rubric.solution is not None
    calls = rubric.calls(load_expected(rubric).values)
    solution = (rubric.solution / "layers.py").read_text()
    load = [os.getloadavg()]
    started = time.monotonic()
    template = warm.thread_template(
        warm.preload(rubric.frameworks), execution_limits(rubric), confine.extra_env()
    )
    if template is None:
        sys.exit(f"no warm template: {warm._failed}")
    print(f"module template start (HW2): {time.monotonic() - started:.2f} s")
    with tempfile.TemporaryDirectory(prefix="bench-warm-m-", dir="/tmp") as tmp:
        root = Path(tmp)
        for label, source in (
            ("numpy", solution),
            ("torch", "import torch\n" + solution),
        ):
            one_module(root, rubric, source, calls, True, -1)
            one_module(root, rubric, source, calls, False, -2)
            cold: list[float] = []
            hot: list[float] = []
            for i in range(runs):
                cold.append(one_module(root, rubric, source, calls, False, i))
                hot.append(one_module(root, rubric, source, calls, True, i))
                load.append(os.getloadavg())
            print(f"HW2 module worker, solution importing {label} ({len(calls)} calls):")
            print("  " + describe("cold", cold))
            print("  " + describe("warm", hot))
            ratio = statistics.median(cold) / statistics.median(hot)
            saved = statistics.median(cold) - statistics.median(hot)
            print(f"  ratio cold/warm (medians): {ratio:.1f}x; saved {saved:.2f} s per submission")
    warm.close_thread_template()
    ones = [x[0] for x in load]
    print(
        f"load average (1 min) during the module runs: {min(ones):.2f}-{max(ones):.2f}, "
        f"nproc {os.cpu_count()}"
    )


def describe(name: str, xs: list[float]) -> str:
    return (
        f"{name:5s} median {statistics.median(xs):6.3f} s   mean {statistics.mean(xs):6.3f} s"
        f"   min {min(xs):6.3f} s   (n={len(xs)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--what", choices=("notebook", "module", "both"), default="both")
    args = parser.parse_args()
    if os.geteuid() != 0 or not detect_protections().complete:
        sys.exit("run as root on a machine with bubblewrap and a writable cgroup")
    if args.what != "notebook":
        bench_modules(args.runs)
    if args.what == "module":
        return
    rubric = load_rubric("hw3")
    load = [os.getloadavg()]
    started = time.monotonic()
    template = warm.thread_template(
        warm.preload(rubric.frameworks), execution_limits(rubric), confine.extra_env()
    )
    if template is None:
        sys.exit(f"no warm template: {warm._failed}")
    print(
        f"template start (once per worker, modules {', '.join(template.modules)}): "
        f"{time.monotonic() - started:.2f} s"
    )
    cold: list[float] = []
    hot: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-warm-", dir="/tmp") as tmp:
        root = Path(tmp)
        one(root, rubric, True, -1)  # warm-up of both paths (page cache, reference)
        one(root, rubric, False, -2)
        for i in range(args.runs):
            cold.append(one(root, rubric, False, i))
            hot.append(one(root, rubric, True, i))
            load.append(os.getloadavg())
    warm.close_thread_template()
    print(describe("cold", cold))
    print(describe("warm", hot))
    ratio = statistics.median(cold) / statistics.median(hot)
    saved = statistics.median(cold) - statistics.median(hot)
    print(f"ratio cold/warm (medians): {ratio:.1f}x; saved {saved:.2f} s per submission")
    ones = [x[0] for x in load]
    print(
        f"load average (1 min) during the runs: {min(ones):.2f}-{max(ones):.2f}, "
        f"nproc {os.cpu_count()}"
    )


if __name__ == "__main__":
    main()
