"""The notebook runner with real kernels: failures per cell, timeouts, deaths, harvests.

Notebooks are generated with nbformat in ``tmp_path``; each is tiny and the limits are
short, so every test finishes in a few seconds.
"""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest

from grader.models import AnswerRequest, CellFailure, NotebookRun, ProbeSpec
from grader.sandbox import ExecutionLimits, KernelStartError
from grader.sandbox.nbfile import NotebookFormatError, assigns
from grader.sandbox.notebook import run_notebook

FAST = ExecutionLimits(cell_timeout=3, interrupt_grace=1, harvest_timeout=3, notebook_timeout=60)


def make_notebook(tmp_path: Path, cells: list[str], name: str = "hw.ipynb") -> Path:
    """A notebook whose cells are code, or markdown when prefixed with ``md:``."""
    nb = nbformat.v4.new_notebook()  # type: ignore[no-untyped-call]
    for source in cells:
        if source.startswith("md:"):
            nb.cells.append(nbformat.v4.new_markdown_cell(source[3:]))  # type: ignore[no-untyped-call]
        else:
            nb.cells.append(nbformat.v4.new_code_cell(source))  # type: ignore[no-untyped-call]
    path = tmp_path / name
    nbformat.write(nb, path)  # type: ignore[no-untyped-call]
    return path


def run(
    tmp_path: Path, cells: list[str], names: list[str], limits: ExecutionLimits = FAST
) -> NotebookRun:
    work, outbox = tmp_path / "work", tmp_path / "out"
    work.mkdir()
    outbox.mkdir()
    path = make_notebook(tmp_path, cells)
    return run_notebook(path, work, outbox, [AnswerRequest(n) for n in names], limits)


def test_answers_survive_errors_and_a_dying_kernel(tmp_path: Path) -> None:
    cells = [
        "md:# Homework",
        "a = 1\nimport sys; print('noise', file=sys.stderr)",
        "q = 1 / 0",
        "b = [a, 2.5]",
        "md:more",
        "import os; os._exit(1)",
        "c = 3",
    ]
    r = run(tmp_path, cells, ["a", "b", "c", "q", "nope"])
    ex = r.execution
    assert (ex.notebook, ex.cells_total, ex.cells_run, ex.cells_not_run) == ("hw.ipynb", 5, 4, (7,))
    assert (ex.kernel_died, ex.timed_out, ex.limit_hit, ex.warnings) == (True, False, None, ())
    error, died = ex.failures
    assert (error.cell, error.kind, error.ename, error.evalue) == (
        3,
        "error",
        "ZeroDivisionError",
        "division by zero",
    )
    assert "\x1b" not in error.traceback and "----> 1 q = 1 / 0" in error.traceback
    assert died == CellFailure(
        6,
        "kernel_died",
        "DeadKernelError",
        "the kernel process exited with code 1 while running this cell",
        "",
    )
    ans = r.answers
    assert (ans["a"].status, ans["a"].value, ans["a"].cell) == ("ok", 1, 4)
    assert (ans["b"].status, ans["b"].value) == ("ok", [1, 2.5])
    assert (ans["q"].status, ans["q"].message) == (
        "error",
        "q is assigned in cell 3, which raised ZeroDivisionError: division by zero",
    )
    assert (ans["c"].status, ans["c"].message) == (
        "error",
        "c is assigned in cell 7, which never ran because the kernel died in cell 6",
    )
    assert (ans["nope"].status, ans["nope"].message) == (
        "missing",
        "nope is not defined at the notebook's top level",
    )
    assert r.markdown == ("# Homework", "more")
    assert r.code_cells[1] == (3, "q = 1 / 0") and len(r.code) == 5


def test_timeouts_interrupt_then_kill(tmp_path: Path) -> None:
    cells = [
        "a = 1",
        "while True: pass",
        "b = 2",
        "import time\nwhile True:\n    try:\n        time.sleep(100)\n"
        "    except KeyboardInterrupt:\n        pass",
        "z = 3",
    ]
    started = time.monotonic()
    r = run(tmp_path, cells, ["a", "b", "z"])
    elapsed = time.monotonic() - started
    ex = r.execution
    # Two 3 s timeouts plus a 1 s grace plus kernel start-up.
    assert elapsed < 15
    assert (ex.cells_run, ex.cells_not_run, ex.timed_out, ex.kernel_died) == (4, (5,), True, False)
    loop, stubborn = ex.failures
    assert (loop.cell, loop.kind, loop.evalue) == (
        2,
        "timeout",
        "the cell did not finish within 3 s and was stopped",
    )
    assert (stubborn.cell, stubborn.kind) == (4, "timeout")
    assert stubborn.evalue.endswith(
        "; it did not stop when interrupted, so the kernel was shut down and the remaining "
        "cells did not run"
    )
    assert (r.answers["a"].value, r.answers["b"].value) == (1, 2)
    assert r.answers["z"].message == (
        "z is assigned in cell 5, which never ran because cell 4 did not stop after 3 s"
    )


def test_notebook_deadline(tmp_path: Path) -> None:
    limits = ExecutionLimits(cell_timeout=10, interrupt_grace=1, notebook_timeout=2.5)
    cells = ["import time\na = 1", "time.sleep(1)", "b = 2\ntime.sleep(60)", "c = 3"]
    started = time.monotonic()
    r = run(tmp_path, cells, ["a", "b", "c"], limits)
    assert time.monotonic() - started < 10
    ex = r.execution
    assert (ex.cells_run, ex.cells_not_run, ex.timed_out) == (3, (4,), True)
    assert ex.limit_hit == "the notebook may run for at most 2.5 s"
    (failure,) = ex.failures
    assert (failure.cell, failure.kind) == (3, "timeout")
    assert failure.evalue == (
        "the notebook's time limit of 2.5 s ran out while this cell was running"
    )
    assert (r.answers["a"].value, r.answers["b"].value) == (1, 2)
    assert r.answers["c"].message == (
        "c is assigned in cell 4, which never ran because the notebook's 2.5 s time limit ran out"
    )


def test_exit_zero_ends_quickly(tmp_path: Path) -> None:
    started = time.monotonic()
    r = run(tmp_path, ["a = 1", "import os; os._exit(0)", "b = 2"], ["a", "b"])
    assert time.monotonic() - started < 10
    assert r.execution.failures[0].evalue == (
        "the kernel process exited with code 0 while running this cell"
    )
    assert r.answers["a"].value == 1 and r.answers["b"].status == "error"


def test_setup_seeds_and_leaves_no_names(tmp_path: Path) -> None:
    cells = [
        "import random, numpy as np",
        "r = random.random()\nn = float(np.random.rand())",
        "names = sorted(k for k in globals() if 'grader' in k or 'harness' in k)\n"
        "import os\nhome = os.environ['HOME'] == os.getcwd()",
        # A student who breaks functions the harness uses must not break the harness.
        # (Breaking json.dumps would break the kernel's own messaging, as in Jupyter.)
        "import os, builtins\nnp.save = None\nos.replace = None\nbuiltins.open = None\n"
        "arr = np.arange(3)",
    ]
    r = run(tmp_path, cells, ["r", "n", "names", "home", "arr"])
    assert r.execution.failures == ()
    assert r.answers["r"].value == random.Random(0).random()
    assert r.answers["n"].value == float(np.random.RandomState(0).rand())
    assert r.answers["names"].value == []
    assert r.answers["home"].value is True
    assert r.answers["arr"].value.tolist() == [0, 1, 2]


def test_models_are_probed_in_the_kernel(tmp_path: Path) -> None:
    cells = [
        "import torch\nfrom torch import nn\ntorch.manual_seed(0)\n"
        "seq = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))",
        "class Cat(nn.Module):\n"
        "    def forward(self, x):\n"
        "        return torch.cat(list(torch.chunk(x, 4, dim=1)), dim=1)\n"
        "cat = Cat()",
        "class Bad(nn.Module):\n    def forward(self, x):\n        raise ValueError('boom')\n"
        "bad = Bad()",
        "class Slow(nn.Module):\n"
        "    def forward(self, x):\n"
        "        import time; time.sleep(100)\n"
        "slow = Slow()\nafter = 1",
    ]
    spec = ProbeSpec(input_shape=(2, 4))
    work, outbox = tmp_path / "work", tmp_path / "out"
    work.mkdir()
    outbox.mkdir()
    names = ["seq", "cat", "bad", "slow"]
    requests = [AnswerRequest(n, "model", spec) for n in names] + [AnswerRequest("after")]
    limits = ExecutionLimits(cell_timeout=20, interrupt_grace=2, harvest_timeout=2)
    r = run_notebook(make_notebook(tmp_path, cells), work, outbox, requests, limits)
    seq, cat, bad, slow = (r.answers[n] for n in names)
    assert seq.value["output_shape"] == [2, 2]
    assert (seq.value["trainable_params"], seq.value["total_params"]) == (23, 23)
    assert [m["type"] for m in seq.value["modules"]] == ["Linear", "ReLU", "Linear"]
    assert cat.type_name == "__main__.Cat"
    assert cat.value["cat_calls"] == [{"n_inputs": 4, "dim": 1, "shapes": [[2, 1]] * 4}]
    assert (bad.value["ran"], bad.value["error"]) == (False, "ValueError: boom")
    assert (slow.status, slow.message) == (
        "error",
        "reading slow took longer than 2 s and was stopped (does the model's forward pass "
        "finish on a small batch?)",
    )
    assert r.answers["after"].value == 1
    ex = r.execution
    assert ex.failures == () and ex.cells_run == 4
    assert ex.warnings == (
        "reading the answers after cell 4 took longer than 2 s",
        "reading the answers at the end took longer than 2 s",
    )


def test_concurrent_runs_in_threads(tmp_path: Path) -> None:
    results: dict[int, NotebookRun] = {}

    def worker(i: int) -> None:
        d = tmp_path / str(i)
        d.mkdir()
        results[i] = run(d, [f"x = {i}", "y = x * 10"], ["x", "y"])

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert {i: (r.answers["x"].value, r.answers["y"].value) for i, r in results.items()} == {
        0: (0, 0),
        1: (1, 10),
        2: (2, 20),
    }


def test_not_a_notebook(tmp_path: Path) -> None:
    bad = tmp_path / "hw3.ipynb"
    bad.write_text('{\n  "cells": [\n    {"cell_type": }\n')
    with pytest.raises(NotebookFormatError) as err:
        run_notebook(bad, tmp_path, tmp_path, [])
    assert str(err.value) == (
        "hw3.ipynb is not valid JSON (line 3, column 19): Expecting value — re-download the "
        "notebook from Jupyter (File > Download) and submit that file"
    )
    bad.write_text('{"hello": 1}')
    with pytest.raises(NotebookFormatError, match=r"hw3\.ipynb is JSON but not a Jupyter notebook"):
        run_notebook(bad, tmp_path, tmp_path, [])
    bad.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(NotebookFormatError, match=r"hw3\.ipynb is not UTF-8 text"):
        run_notebook(bad, tmp_path, tmp_path, [])


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("q1 = 3", True),
        ("a, (q1, b) = f()", True),
        ("for q1 in range(3): pass", True),
        ("%time q1 = 3\nq1 += 1", True),
        ("%%time\nq1 = 3", True),
        ("q1 = !ls", True),  # not Python: regex fallback
        ("def q1(): pass", True),
        ("import numpy as q1", True),
        ("print(q1)\nq1 == 3", False),
        ("q10 = 3", False),
    ],
)
def test_assigns(source: str, expected: bool) -> None:
    assert assigns(source, "q1") is expected


def test_ipc_transport_launcher_and_runtime_dir(tmp_path: Path) -> None:
    seen: list[list[str]] = []

    def launcher(argv: list[str]) -> list[str]:
        seen.append(argv)
        return ["/usr/bin/env", "GRADER_WRAPPED=1", *argv]

    work, outbox, runtime = tmp_path / "work", tmp_path / "out", tmp_path / "rt"
    work.mkdir()
    outbox.mkdir()
    path = make_notebook(tmp_path, ["import os\nw = os.environ.get('GRADER_WRAPPED')"])
    r = run_notebook(
        path,
        work,
        outbox,
        [AnswerRequest("w")],
        FAST,
        launcher=launcher,
        env={"EXTRA": "1"},
        transport="ipc",
        runtime_dir=runtime,
    )
    assert r.answers["w"].value == "1"
    (argv,) = seen
    assert argv[1:3] == ["-m", "ipykernel_launcher"]
    assert Path(argv[4]).parent == runtime


def test_kernel_that_cannot_start(tmp_path: Path) -> None:
    path = make_notebook(tmp_path, ["x = 1"])
    with pytest.raises(KernelStartError, match="the Jupyter kernel did not start"):
        run_notebook(path, tmp_path, tmp_path, [], FAST, launcher=lambda argv: ["/bin/false"])


def test_image_cells_records_figures_and_their_headings(tmp_path: Path) -> None:
    png = (  # a 1x1 PNG
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
        "YPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
    )
    cells = [
        "md:# Task 2\n## Learning rate",
        f"import base64\nfrom IPython.display import Image, SVG, display\n"
        f"display(Image(data=base64.b64decode('{png}')))",
        "print('no image here')",
        "md:## Momentum",
        'display(SVG(\'<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>\'))',
        "md:# Task 3",
        "1 + 1",
    ]
    slow = ExecutionLimits(cell_timeout=60, harvest_timeout=30, notebook_timeout=300)
    r = run(tmp_path, cells, [], slow)
    assert r.image_cells == (
        (2, ("# Task 2", "## Learning rate")),
        (5, ("# Task 2", "## Momentum")),
    )
