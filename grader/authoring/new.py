"""``grade new NAME --course DIR``: a working assignment skeleton for an instructor to edit.

It writes ``DIR/NAME/``:

* ``NAME.yaml``, the rubric: a value answer, a written answer (``text``), a notebook
  function graded on hidden cases with public ones for the self-check (``function``,
  ``source: notebook``, ``public_cases``), a value computed from a provided data file
  (``files:``), a model and a structure rule (``model``, ``structure``);
* ``NAME.md``, the handout; ``NAME_reference.py``, the reference (``reference:`` ending in
  ``.py`` is found next to the rubric);
* ``solution/NAME.ipynb``, the instructor's notebook with ``### BEGIN SOLUTION`` /
  ``### END SOLUTION`` markers and a written answer in a cell tagged ``solution``;
* ``data/signal.npy``, the provided data;
* ``golden/``: submissions (the solution and two mistakes) with the points each check
  must give in ``<student>.yaml``, a README and ``compare.py`` to run them.

The templates are package data (``grader/authoring/templates/skeleton``), so the command
works wherever the grader is installed.
"""

from __future__ import annotations

import json
import shutil
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from grader.authoring.assign import student_notebook
from grader.errors import GraderError

#: Golden submissions: name → (old, new) edits of the solution notebook's text.
GOLDEN_EDITS: dict[str, list[tuple[str, str]]] = {
    "solution": [],
    "window_same": [('mode="valid"', 'mode="same"')],
    "linear_head": [
        (
            "        self.conv = nn.Conv2d(1, 4, kernel_size=3)\n",
            "        self.conv = nn.Conv2d(1, 4, kernel_size=3)\n"
            "        self.head = nn.Linear(4, 4)\n",
        ),
        (
            "        return torch.relu(self.conv(x)).mean(dim=(2, 3))\n",
            "        return self.head(torch.relu(self.conv(x)).mean(dim=(2, 3)))\n",
        ),
    ],
}


def _template(name: str) -> str:
    return (resources.files("grader") / "authoring" / "templates" / "skeleton" / name).read_text(
        encoding="utf-8"
    )


def parse_cells(text: str) -> list[dict[str, Any]]:
    """Cells of the template notebook: each starts with a line ``%% code`` or
    ``%% markdown``, optionally followed by tags (``%% markdown solution``)."""
    cells: list[dict[str, Any]] = []
    for line in text.splitlines():
        if line.startswith("%% "):
            kind, *tags = line[3:].split()
            cells.append({"cell_type": kind, "tags": tags, "lines": []})
        elif cells:
            cells[-1]["lines"].append(line)
    return [
        _cell(c["cell_type"], "\n".join(c["lines"]).strip("\n"), c["tags"], i)
        for i, c in enumerate(cells)
    ]


def _cell(kind: str, source: str, tags: list[str], index: int) -> dict[str, Any]:
    cell: dict[str, Any] = {
        "cell_type": kind,
        "id": f"cell-{index:02d}",
        "metadata": {"tags": tags} if tags else {},
        "source": source,
    }
    if kind == "code":
        cell["execution_count"] = None
        cell["outputs"] = []
    return cell


def notebook(cells: list[dict[str, Any]]) -> dict[str, Any]:
    """An nbformat 4 notebook (as JSON data) of ``cells`` for a Python 3 kernel."""
    return {
        "cells": cells,
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def _write_notebook(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def _edited(solution: dict[str, Any], edits: list[tuple[str, str]], student: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(json.dumps(solution))
    for old, new in edits:
        hits = [c for c in data["cells"] if old in c["source"]]
        if len(hits) != 1:
            raise GraderError(f"golden {student}: the edit {old!r} matches {len(hits)} cells")
        hits[0]["source"] = hits[0]["source"].replace(old, new)
    return data


def new_assignment(name: str, course: Path, *, force: bool = False) -> Path:
    """Write the skeleton of assignment ``name`` into ``course/name/``; return that folder."""
    if not name.isidentifier():
        raise GraderError(f"{name!r}: an assignment name must be a Python identifier (hw5)")
    folder = course / name
    if folder.exists():
        if not force:
            raise GraderError(f"{folder} exists: choose another name, or --force to overwrite")
        shutil.rmtree(folder)
    folder.mkdir(parents=True)

    def fill(text: str) -> str:
        return text.replace("{{name}}", name)

    (folder / f"{name}.yaml").write_text(fill(_template("rubric.yaml")), encoding="utf-8")
    (folder / f"{name}.md").write_text(fill(_template("handout.md")), encoding="utf-8")
    (folder / f"{name}_reference.py").write_text(fill(_template("reference.py")), encoding="utf-8")
    solution = notebook(parse_cells(fill(_template("notebook.txt"))))
    _write_notebook(folder / "solution" / f"{name}.ipynb", solution)
    (folder / "data").mkdir()
    # A noisy sine: small, seeded, readable without pickles.
    rng = np.random.default_rng(2026)
    signal = np.round(np.sin(np.linspace(0, 2 * np.pi, 64)) + rng.normal(0, 0.2, 64), 6)
    np.save(folder / "data" / "signal.npy", signal, allow_pickle=False)
    golden = folder / "golden"
    for student, edits in GOLDEN_EDITS.items():
        _write_notebook(
            golden / "submissions" / student / f"{name}.ipynb", _edited(solution, edits, student)
        )
        text = _template(f"golden_{student}.yaml")
        (golden / f"{student}.yaml").write_text(text, encoding="utf-8")
    # The notebook exactly as students receive it: nothing earns a point.
    stubs = student_notebook(solution, "the skeleton")
    _write_notebook(golden / "submissions" / "stubs" / f"{name}.ipynb", stubs)
    (golden / "stubs.yaml").write_text(_template("golden_stubs.yaml"), encoding="utf-8")
    (golden / "README.md").write_text(fill(_template("golden_README.md")), encoding="utf-8")
    (golden / "compare.py").write_text(_template("golden_compare.py"), encoding="utf-8")
    return folder
