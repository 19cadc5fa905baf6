"""The stages around the runners: the scratch copy, the notebook found in it, the limit
named after a kernel death, and the one warm-or-cold choice. No kernel starts here."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from grader.models import Answer, CellFailure, ExecutionReport, NotebookRun
from grader.sandbox import ExecutionLimits, SubmissionFiles, warm
from grader.sandbox.isolation import SandboxSession
from grader.sandbox.scratch import copy_to_scratch, locate_notebook
from grader.sandbox.stages import with_limit
from grader.sandbox.warm_or_cold import _wants_warm, open_session


def test_copy_refuses_symlinks_and_keeps_folders(tmp_path: Path) -> None:
    root = tmp_path / "student"
    (root / "data").mkdir(parents=True)
    (root / "hw.ipynb").write_text("{}")
    (root / "data" / "x.csv").write_text("1,2")
    (tmp_path / "secret").write_text("s")
    os.symlink(tmp_path / "secret", root / "link.txt")
    files = SubmissionFiles(root, ("data/x.csv", "hw.ipynb", "link.txt"))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    warnings = copy_to_scratch(files, scratch)
    assert warnings == ["link.txt is a symbolic link and was not copied: submit real files"]
    assert sorted(str(p.relative_to(scratch)) for p in scratch.rglob("*")) == [
        "data",
        "data/x.csv",
        "hw.ipynb",
    ]


def _scratch(tmp_path: Path, names: list[str]) -> Path:
    scratch = tmp_path / "scratch"
    for name in names:
        (scratch / name).parent.mkdir(parents=True, exist_ok=True)
        (scratch / name).write_text("{}")
    scratch.mkdir(exist_ok=True)
    return scratch


def test_locate_notebook(tmp_path: Path) -> None:
    folder = SubmissionFiles(tmp_path, ())
    exact = _scratch(tmp_path / "a", ["hw3.ipynb", "other.ipynb"])
    assert locate_notebook(folder, "hw3.ipynb", exact).path == exact / "hw3.ipynb"

    one = _scratch(tmp_path / "b", ["sub/mine.ipynb", ".ipynb_checkpoints/x.ipynb"])
    found = locate_notebook(folder, "hw3.ipynb", one)
    assert found.path == one / "sub" / "mine.ipynb"
    assert found.warnings == (
        "graded sub/mine.ipynb: the handout asks for the notebook to be named hw3.ipynb",
    )

    two = _scratch(tmp_path / "c", ["a.ipynb", "b.ipynb"])
    assert locate_notebook(folder, "hw3.ipynb", two).problem == (
        "several notebooks (a.ipynb, b.ipynb) and none named hw3.ipynb: keep one"
    )

    none = _scratch(tmp_path / "d", ["notes.md"])
    assert locate_notebook(folder, "hw3.ipynb", none).problem == (
        "no notebook in the submission: expected hw3.ipynb (found: notes.md)"
    )

    single = SubmissionFiles(tmp_path, ("Alice_HW3.IPYNB",), single_file=True)
    assert locate_notebook(single, "hw3.ipynb", exact).path == exact / "Alice_HW3.IPYNB"


def _run(failures: tuple[CellFailure, ...], answers: dict[str, Answer]) -> NotebookRun:
    report = ExecutionReport(
        notebook="hw.ipynb",
        cells_total=3,
        cells_run=2,
        cells_not_run=(3,),
        failures=failures,
        timed_out=False,
        kernel_died=True,
        limit_hit=None,
        warnings=(),
        duration_s=1.0,
    )
    return NotebookRun(execution=report, answers=answers)


def test_with_limit_names_the_limit_where_the_kernel_died() -> None:
    died = CellFailure(2, "kernel_died", "DeadKernelError", "killed by SIGKILL", "")
    error = CellFailure(1, "error", "ValueError", "x", "")
    lost = Answer("b", "error", message="b is assigned in cell 2, where the kernel died (...)")
    run = with_limit(_run((error, died), {"b": lost}), "the 400 MiB memory limit")
    ex = run.execution
    assert ex.limit_hit == "stopped at the 400 MiB memory limit in cell 2"
    assert ex.failures[0] == error
    assert (ex.failures[1].kind, ex.failures[1].ename, ex.failures[1].evalue) == (
        "limit",
        "LimitExceeded",
        "stopped at the 400 MiB memory limit",
    )
    assert run.answers["b"].message == (
        "b is assigned in cell 2, where it hit the 400 MiB memory limit (...)"
    )


def test_not_run_report() -> None:
    report = ExecutionReport.not_run("hw.ipynb", ["why"])
    assert (report.notebook, report.cells_total, report.warnings) == ("hw.ipynb", 0, ("why",))
    assert not report.failures and report.limit_hit is None


@pytest.mark.parametrize(
    ("mode", "warm_arg", "env", "wanted"),
    [
        ("strict", None, None, warm.DEFAULT_ON),
        ("strict", None, "0", False),
        ("strict", None, "1", True),
        ("strict", False, "1", False),  # the preflight kernel
        ("strict", True, "0", True),
        ("permissive", True, "1", False),  # warm starts need every protection
        ("off", None, "1", False),
    ],
)
def test_the_warm_or_cold_choice(
    monkeypatch: pytest.MonkeyPatch, mode: str, warm_arg: bool | None, env: str | None, wanted: bool
) -> None:
    if env is None:
        monkeypatch.delenv(warm.ENV_SWITCH, raising=False)
    else:
        monkeypatch.setenv(warm.ENV_SWITCH, env)
    assert _wants_warm(mode, warm_arg) is wanted  # type: ignore[arg-type]


def test_a_cold_session_when_warm_is_not_wanted(tmp_path: Path) -> None:
    work, outbox = tmp_path / "w", tmp_path / "o"
    work.mkdir()
    outbox.mkdir()
    limits = ExecutionLimits()
    with open_session(work, outbox, limits, "off", ("numpy",), warm=True) as box:
        assert isinstance(box, SandboxSession) and box.limits is limits
        assert box.launcher(["python", "-V"]) == ["python", "-V"]
        assert box.worker_env() is None
    assert not box.runtime.exists()  # torn down
