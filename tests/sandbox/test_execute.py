"""The sandbox's one entry, ``execute``: tiny notebooks and modules, cold and warm.

Cold runs everywhere (strict as root, with the sandbox off otherwise); warm needs root,
bubblewrap and a writable cgroup, as in CI. Which path ran is observed from inside: a
warm kernel or worker is a fork of the template (``python -c SOURCE``), a cold one a new
``python -m ipykernel_launcher`` or ``python -s -P -c BOOTSTRAP``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import nbformat
import numpy as np
import pytest

from grader.sandbox import (
    AnswerRequest,
    Call,
    DeviceRequest,
    Executed,
    ExecutionLimits,
    ExecutionRequest,
    ModuleTask,
    NotebookTask,
    SubmissionFiles,
    UnsupportedRequest,
    execute,
    warm,
)
from grader.sandbox.protections import detect_protections

CONFINED = os.geteuid() == 0 and detect_protections().complete
MODE = "strict" if CONFINED else "off"
needs_warm = pytest.mark.skipif(not CONFINED, reason="warm starts need root, bwrap and cgroups")

# argv[1] of a fork of the template (`python -c SOURCE ...`) is "-c"; of a cold kernel
# (`python -m ipykernel_launcher`) "-m", of a cold worker (`python -s -P -c ...`) "-s".
FORKED = "open('/proc/self/cmdline', 'rb').read().split(b'\\0')[1] == b'-c'"
LIMITS = ExecutionLimits(cell_timeout=30, interrupt_grace=3, harvest_timeout=30)

CELLS = [
    f"forked = {FORKED}",
    "x = 6 * 7",
    "md:## Part 2",
    "y = undefined_name",
    "z = [1, 2.5]",
]
LAYERS = f"""
import numpy as np

def double(x):
    return 2 * x

def boom():
    raise ValueError("no")

def forked():
    return {FORKED}
"""


@pytest.fixture(scope="module", autouse=True)
def _close_template() -> Iterator[None]:
    yield
    warm.close_thread_template()


def notebook_bytes(cells: list[str]) -> str:
    nb = nbformat.v4.new_notebook()  # type: ignore[no-untyped-call]
    for source in cells:
        if source.startswith("md:"):
            nb.cells.append(nbformat.v4.new_markdown_cell(source[3:]))  # type: ignore[no-untyped-call]
        else:
            nb.cells.append(nbformat.v4.new_code_cell(source))  # type: ignore[no-untyped-call]
    return str(nbformat.writes(nb))  # type: ignore[no-untyped-call]


def folder(tmp_path: Path, files: dict[str, str]) -> SubmissionFiles:
    """A folder submission holding ``files`` (relative path: text)."""
    root = tmp_path / "student"
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return SubmissionFiles(root, tuple(sorted(files)))


def use_warm(monkeypatch: pytest.MonkeyPatch, on: bool) -> None:
    monkeypatch.setenv(warm.ENV_SWITCH, "1" if on else "0")


@pytest.mark.parametrize("path", ["cold", pytest.param("warm", marks=needs_warm)])
def test_notebook_and_module_in_one_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    use_warm(monkeypatch, path == "warm")
    files = folder(tmp_path, {"homework.ipynb": notebook_bytes(CELLS), "code/layers.py": LAYERS})
    request = ExecutionRequest(
        files=files,
        notebook=NotebookTask(
            "hw.ipynb", harvest=tuple(AnswerRequest(n) for n in ("forked", "x", "y", "z"))
        ),
        module=ModuleTask(
            "layers.py",
            calls=(
                Call("d", "double", (np.arange(3.0),)),
                Call("b", "boom"),
                Call("f", "forked"),
            ),
        ),
        frameworks=("numpy",),
        limits=LIMITS,
        mode=MODE,
    )
    got = execute(request)
    assert isinstance(got, Executed) and got.run is not None and got.problem is None
    answers = got.run.answers
    assert answers["forked"].value is (path == "warm")
    assert answers["x"].value == 42 and answers["z"].value == [1, 2.5]
    assert answers["y"].status == "error"
    assert answers["y"].message.startswith("y is assigned in cell 4, which raised NameError")
    ex = got.execution
    assert [(f.cell, f.kind, f.ename) for f in ex.failures] == [(4, "error", "NameError")]
    assert (ex.notebook, ex.cells_total, ex.cells_run, ex.module) == (
        "homework.ipynb",
        4,
        4,
        "layers.py",
    )
    assert ex.warnings == (
        "graded homework.ipynb: the handout asks for the notebook to be named hw.ipynb",
        "imported code/layers.py: the handout asks for layers.py at the top level",
    )
    assert got.module_run is not None and got.module_problem is None
    calls = got.module_run.results
    assert calls["d"].status == "ok" and np.array_equal(calls["d"].value, [0.0, 2.0, 4.0])
    assert calls["b"].status == "error" and "ValueError: no" in calls["b"].message
    assert calls["f"].value is (path == "warm")


@pytest.mark.parametrize("path", ["cold", pytest.param("warm", marks=needs_warm)])
@pytest.mark.skipif(not CONFINED, reason="the memory limit needs a cgroup (root)")
def test_memory_limit_is_named_cold_and_warm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    """One ExecutionLimits, one enforcement: both sessions stop the same hog alike."""
    use_warm(monkeypatch, path == "warm")
    cells = [f"forked = {FORKED}", "b = bytearray(2 * 2**30)\nb[::4096] = b'x' * len(b[::4096])"]
    request = ExecutionRequest(
        files=folder(tmp_path, {"hw.ipynb": notebook_bytes(cells)}),
        notebook=NotebookTask("hw.ipynb", harvest=(AnswerRequest("forked"),)),
        frameworks=("numpy",),
        limits=LIMITS.model_copy(update={"memory_mb": 300}),
        mode=MODE,
    )
    got = execute(request)
    assert got.run is not None
    assert got.run.answers["forked"].value is (path == "warm")
    ex = got.execution
    assert ex.limit_hit == "stopped at the 300 MiB memory limit in cell 2"
    assert [(f.cell, f.kind) for f in ex.failures] == [(2, "limit")]


def test_cell_budgets_by_position_and_by_marker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_warm(monkeypatch, False)
    cells = [
        "import time",
        "time.sleep(30)",
        "a = 1",
        "time.sleep(30)  # long training",
        "b = 2",
    ]
    request = ExecutionRequest(
        files=folder(tmp_path, {"hw.ipynb": notebook_bytes(cells)}),
        notebook=NotebookTask(
            "hw.ipynb",
            harvest=(AnswerRequest("a"), AnswerRequest("b")),
            cell_budgets={2: 1.0, "long training": 1.5},
        ),
        limits=LIMITS.model_copy(update={"cell_timeout": 60}),
        mode=MODE,
    )
    got = execute(request)
    assert got.run is not None
    failures = [(f.cell, f.kind, f.evalue) for f in got.execution.failures]
    assert failures == [
        (2, "timeout", "the cell did not finish within 1 s and was stopped"),
        (4, "timeout", "the cell did not finish within 1.5 s and was stopped"),
    ]
    assert {n: a.value for n, a in got.run.answers.items()} == {"a": 1, "b": 2}


def test_a_single_file_that_is_not_a_notebook_runs_nothing(tmp_path: Path) -> None:
    (tmp_path / "essay.pdf").write_bytes(b"%PDF-1.4")
    request = ExecutionRequest(
        files=SubmissionFiles(tmp_path, ("essay.pdf",), single_file=True),
        notebook=NotebookTask("hw.ipynb"),
        mode=MODE,
    )
    got = execute(request)
    assert got.run is None
    assert got.problem == "essay.pdf is not a Jupyter notebook: submit hw.ipynb"
    assert got.execution.warnings == (got.problem,)
    assert got.execution.cells_total == 0 and got.module_run is None


def test_a_missing_module_is_the_students_problem(tmp_path: Path) -> None:
    request = ExecutionRequest(
        files=folder(tmp_path, {"notes.txt": "hi", "sub/helpers.py": ""}),
        module=ModuleTask("layers.py", calls=(Call("d", "double", (1,)),)),
        mode=MODE,
    )
    got = execute(request)
    want = "no layers.py in the submission (found: notes.txt, sub/helpers.py)"
    assert got.module_run is None and got.module_problem == want
    assert got.run is None and got.execution.module_problem == want
    assert got.execution.warnings == (want,)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"devices": DeviceRequest(gpus=1)}, "1 GPU\\(s\\) asked for, but the grader has 0"),
    ],
)
def test_what_the_sandbox_cannot_do_yet_is_refused_before_anything_runs(
    tmp_path: Path, change: dict[str, object], words: str
) -> None:
    fields: dict[str, object] = {
        "files": folder(tmp_path, {"hw.ipynb": notebook_bytes(["x = 1"])}),
        "notebook": NotebookTask("hw.ipynb"),
        "workroot": tmp_path / "scratch",
        "mode": MODE,
        **change,
    }
    (tmp_path / "scratch").mkdir()
    with pytest.raises(UnsupportedRequest, match=words):
        execute(ExecutionRequest(**fields))  # type: ignore[arg-type]
    assert list((tmp_path / "scratch").iterdir()) == []  # no scratch copy was made


def test_a_request_names_something_to_run(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="a notebook, a module or both"):
        ExecutionRequest(files=SubmissionFiles(tmp_path, ()))
