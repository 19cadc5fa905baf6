# mypy: disable-error-code="no-untyped-call"
"""Generate the sample notebooks of ``tests/data/nbcalls/submissions/``.

Run from anywhere: ``python tests/data/nbcalls/make_samples.py``. Each student is a folder
with ``hw5.ipynb`` (nbformat v4, deterministic cell ids, no outputs). The expected grades
are written by hand in ``tests/data/nbcalls/expected/<student>.yaml``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

OUT = Path(__file__).resolve().parent / "submissions"

HEAD = "import numpy as np\n\nd_model = 64"

ATTENTION = """
def attention(q, k, v):
    scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
    scores = scores - scores.max(axis=-1, keepdims=True)
    weights = np.exp(scores)
    weights = weights / weights.sum(axis=-1, keepdims=True)
    return weights @ v
"""

DROPOUT = """
def dropout(p, x):
    mask = np.random.rand(*x.shape) >= p
    return x * mask / (1 - p)
"""

USE = "out = attention(np.ones((1, 2, 4)), np.ones((1, 3, 4)), np.ones((1, 3, 2)))"

STUDENTS = {
    # Everything as the handout asks.
    "solution": [HEAD, ATTENTION, DROPOUT, USE],
    # Divides the scores by d instead of sqrt(d).
    "wrong_formula": [HEAD, ATTENTION.replace("np.sqrt(q.shape[-1])", "q.shape[-1]"), DROPOUT],
    # Named the function attn: attention is not defined in the notebook.
    "missing_attention": [
        HEAD,
        ATTENTION.replace("def attention(", "def attn("),
        DROPOUT,
    ],
    # Leaves the Python process when called on a batch of one (sys.exit is caught by
    # nothing in a kernel; os._exit really ends it): the kernel dies during the call.
    "crashes_kernel": [
        HEAD,
        ATTENTION.replace(
            "    scores = q @",
            "    if q.shape[0] == 1:\n        import os\n        os._exit(1)\n    scores = q @",
        ),
        DROPOUT,
    ],
}


def notebook(cells: list[str]) -> nbformat.NotebookNode:
    nb = new_notebook()
    nb.cells = [new_markdown_cell("# HW5 (mini)")] + [new_code_cell(c.strip("\n")) for c in cells]
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i}"
    return nb


def main() -> None:
    for student, cells in STUDENTS.items():
        folder = OUT / student
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        nbformat.write(notebook(cells), folder / "hw5.ipynb")


if __name__ == "__main__":
    main()
