"""docs/tutorial.md, followed word for word on a temporary course folder.

The tutorial's fenced blocks are its steps, in order:

* a block with ``title="PATH"`` is a file the reader writes, PATH relative to
  ``~/course``; blocks whose title is a notebook and which carry ``cell="code"`` or
  ``cell="markdown"`` (and optionally ``tags="a b"``) are that notebook's cells, in order;
* a ``console`` block holds commands, each on a line starting with ``$ `` (other lines
  are sample output); they run in bash with ``HOME`` set to the temporary folder, so
  ``~/course`` is inside it, and ``cd`` carries over from one command to the next.

Every command must succeed; at the end, the gradebook must hold the totals the tutorial
states (Alice 10 of 10, Bob 4).
"""

from __future__ import annotations

import csv
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
TUTORIAL = ROOT / "docs" / "tutorial.md"
FENCE = re.compile(r"^```(?P<info>[^\n`]*)\n(?P<body>.*?)^```$", re.MULTILINE | re.DOTALL)
ATTRIBUTE = re.compile(r'(\w+)="([^"]*)"')


@dataclass
class Step:
    """A file to write (``path`` and ``text``), a notebook cell, or commands to run."""

    kind: str  # "file" | "cell" | "commands"
    path: str = ""
    text: str = ""
    cell: str = ""
    tags: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)


def steps(markdown: str) -> list[Step]:
    """The tutorial's steps, in order (see the module docstring)."""
    found = []
    for match in FENCE.finditer(markdown):
        info, body = match["info"].strip(), match["body"]
        language = info.split(" ", 1)[0]
        attributes = dict(ATTRIBUTE.findall(info))
        if language == "console":
            commands = [line[2:] for line in body.splitlines() if line.startswith("$ ")]
            found.append(Step("commands", commands=commands))
        elif "cell" in attributes:
            tags = attributes.get("tags", "").split()
            found.append(Step("cell", attributes["title"], body, attributes["cell"], tags))
        elif "title" in attributes:
            found.append(Step("file", attributes["title"], body))
    return found


def test_the_tutorial_has_its_steps() -> None:
    """Runs always: the page parses into the steps the walk-through below follows."""
    found = steps(TUTORIAL.read_text(encoding="utf-8"))
    files = {s.path for s in found if s.kind == "file"}
    assert {"hw5/hw5.yaml", "hw5/hw5_reference.py", "hw5/graded/overrides.yaml"} <= files
    cells = [s for s in found if s.kind == "cell"]
    assert {c.path for c in cells} == {"hw5/solution/hw5.ipynb"}
    assert any("solution" in c.tags for c in cells)
    commands = [c for s in found if s.kind == "commands" for c in s.commands]
    for verb in ("grade new", "grade validate", "grade assign", "grade report", "grade export"):
        assert any(c.startswith(verb) for c in commands), verb
    assert any(c.startswith("grade submissions --rubric ~/course/hw5/hw5.yaml") for c in commands)


def _missing_features() -> list[str]:
    """What the tutorial uses that this checkout does not have yet (other branches of
    issue 13 add them)."""
    from grader.checks import REGISTRY
    from grader.checks.function import FunctionSpec
    from grader.cli import VERBS
    from grader.rubric import RubricFile

    missing = [f"`grade {verb}`" for verb in ("new", "assign") if verb not in VERBS]
    if "files" not in RubricFile.model_fields:
        missing.append("the rubric key `files:`")
    for key in ("source", "public_cases"):
        if key not in FunctionSpec.model_fields:
            missing.append(f"the function check key `{key}:`")
    if "structure" not in REGISTRY:
        missing.append("the `structure` check type")
    return missing


def _write_notebook(path: Path, cells: list[Step]) -> None:
    notebook = nbformat.v4.new_notebook()
    for step in cells:
        make = nbformat.v4.new_code_cell if step.cell == "code" else nbformat.v4.new_markdown_cell
        cell = make(step.text.rstrip("\n"))
        if step.tags:
            cell.metadata["tags"] = step.tags
        notebook.cells.append(cell)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)


def _bin(tmp_path: Path) -> Path:
    """``grade`` and ``python`` as the reader has them: this checkout's, this interpreter."""
    folder = tmp_path / ".bin"
    folder.mkdir()
    (folder / "grade").write_text(
        f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m grader.cli "$@"\n', encoding="utf-8"
    )
    (folder / "grade").chmod(0o755)
    # A wrapper, not a symlink: a venv's interpreter finds its pyvenv.cfg (its packages)
    # only when started by its own path.
    (folder / "python").write_text(
        f'#!/bin/sh\nexec {shlex.quote(sys.executable)} "$@"\n', encoding="utf-8"
    )
    (folder / "python").chmod(0o755)
    return folder


def _run(command: str, cwd: Path, env: dict[str, str]) -> Path:
    """Run one command in bash from ``cwd``; the folder it ends in (``cd`` carries over)."""
    marker = "@@cwd@@"
    proc = subprocess.run(
        ["bash", "-c", f"set -e\n{command}\necho {marker}; pwd"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert proc.returncode == 0, (
        f"tutorial command `{command}` (in {cwd}) exited {proc.returncode}:\n"
        f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )
    return Path(proc.stdout.rsplit(marker, 1)[1].strip())


def test_the_tutorial_works_on_a_new_course(tmp_path: Path) -> None:
    missing = _missing_features()
    if missing:
        pytest.skip(
            "the tutorial needs " + ", ".join(missing) + " (other branches of issue 13; this "
            "skip ends by itself once they are merged)"
        )
    home = tmp_path / "home"
    home.mkdir()
    course = home / "course"
    env = {
        **os.environ,
        "HOME": str(home),
        "PATH": f"{_bin(tmp_path)}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(ROOT),
        "GRADER_CACHE": str(tmp_path / "cache"),
    }
    cwd = home
    pending: dict[str, list[Step]] = {}
    for step in steps(TUTORIAL.read_text(encoding="utf-8")):
        if step.kind == "cell":
            pending.setdefault(step.path, []).append(step)
            continue
        for path, cells in pending.items():  # a notebook is written before what follows it
            _write_notebook(course / path, cells)
        pending.clear()
        if step.kind == "file":
            (course / step.path).parent.mkdir(parents=True, exist_ok=True)
            (course / step.path).write_text(step.text, encoding="utf-8")
        else:
            for command in step.commands:
                cwd = _run(command, cwd, env)
    with (course / "hw5" / "graded" / "gradebook.csv").open(encoding="utf-8") as fh:
        totals = {
            row["student"]: (float(row["total"]), float(row["max"])) for row in csv.DictReader(fh)
        }
    assert totals == {"alice": (10.0, 10.0), "bob": (4.0, 10.0)}
    assert (course / "hw5" / "graded" / "canvas.csv").is_file()
    assert (course / "hw5" / "graded" / "reports" / "bob.pdf").is_file()
