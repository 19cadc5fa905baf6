"""The students' self-check run as a student runs it: as an unprivileged user, with no
sandbox and no grader importable, on each shipped rubric's solution (every public check
passes, exit 0) and on a wrong submission (the right failures, exit 1)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from grader.cli import main
from tests.authoring.support import (
    ROOT,
    as_student,
    open_to_student,
    student_python,
    world_readable_dir,
)


def _drop_project1_answers(folder: Path) -> None:
    """Project 1's solution with the Dropout heading renamed and fc_total_params unset."""
    path = folder / "project1.ipynb"
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        text = "".join(cell["source"])
        text = text.replace("### Dropout", "### Regularisation")
        text = "\n".join(
            line for line in text.splitlines() if not line.startswith("fc_total_params =")
        )
        cell["source"] = text
    path.write_text(json.dumps(nb))


Edit = Callable[[Path], None]
#: rubric → (wrong submission, how to make it from its folder, the checks that fail)
WRONG: dict[str, tuple[str, Edit | None, set[str]]] = {
    "hw1": ("naive_softmax", None, {"forward_pass"}),
    "hw2": ("dx_not_reshaped", None, {"affine_backward"}),
    "hw3": ("crash_in_cell", None, {"q3_table", "q3_total_params"}),
    "hw4": ("bn_unbiased_variance", None, {"batchnorm_forward"}),
    "hw4b": ("notebook_error", None, {"q4_batchnorm_loss", "q4_batchnorm_accuracy"}),
    "project1": ("solution", _drop_project1_answers, {"fig_dropout", "fc_total_params"}),
}


@pytest.fixture(scope="module")
def student_env() -> tuple[Path, Path]:
    base = world_readable_dir()
    python = student_python(base)
    home = base / "home"
    home.mkdir()
    open_to_student(home)
    probe = as_student(python, "-c", "import grader", home=home, cwd=base)
    assert probe.returncode != 0 and "No module named 'grader'" in probe.stderr
    yield base, python
    shutil.rmtree(base)


def _student_folder(base: Path, rubric: str, submission: str, edit: Edit | None) -> Path:
    """The student version with the student's files copied over it."""
    folder = base / f"{rubric}-{submission}"
    assert main(["assign", rubric, "--out", str(folder)]) == 0
    for path in (ROOT / "submissions" / rubric / submission).iterdir():
        if path.is_file():
            shutil.copy2(path, folder / path.name)
    if edit is not None:
        edit(folder)
    open_to_student(folder)
    return folder


def _run(env: tuple[Path, Path], folder: Path) -> tuple[int, str, list[dict[str, object]]]:
    base, python = env
    verdicts = folder / "verdicts.json"
    done = as_student(
        python,
        str(folder / "check.py"),
        "--json",
        str(verdicts),
        # Generous: this machine may be shared; the self-check judges forms, not speed.
        "--timeout",
        "900",
        home=base / "home",
        cwd=folder,
    )
    assert "passing these does not mean full marks" in done.stdout, done.stdout + done.stderr
    return done.returncode, done.stdout, json.loads(verdicts.read_text())


@pytest.mark.parametrize("rubric", sorted(WRONG))
def test_solution_passes_every_public_check(student_env: tuple[Path, Path], rubric: str) -> None:
    folder = _student_folder(student_env[0], rubric, "solution", None)
    code, out, verdicts = _run(student_env, folder)
    assert [v for v in verdicts if not v["ok"]] == [], out
    assert verdicts and code == 0


@pytest.mark.parametrize("rubric", sorted(WRONG))
def test_wrong_submission_fails_the_right_checks(
    student_env: tuple[Path, Path], rubric: str
) -> None:
    submission, edit, failing = WRONG[rubric]
    folder = _student_folder(student_env[0], rubric, submission, edit)
    code, out, verdicts = _run(student_env, folder)
    assert {str(v["check"]) for v in verdicts if not v["ok"]} == failing, out
    assert code == 1
    assert "FAIL" in out


def test_notebook_functions_run_in_the_kernel(student_env: tuple[Path, Path]) -> None:
    """Public cases of a function the notebook defines (``source: notebook``) run in the
    notebook's kernel: HW2's checks pointed at a notebook holding the solution's code,
    then at one whose relu_forward is wrong."""
    base, _ = student_env
    for name, code, failing in (
        ("nb-right", "", set()),
        ("nb-wrong", "\ndef relu_forward(x):\n    return np.abs(x), x\n", {"relu_forward"}),
    ):
        folder = base / name
        assert main(["assign", "hw2", "--out", str(folder)]) == 0
        source = (ROOT / "submissions/hw2/solution/layers.py").read_text() + code
        (folder / "layers.py").unlink()
        cell = {
            "cell_type": "code",
            "metadata": {},
            "source": source,
            "outputs": [],
            "execution_count": None,
        }
        notebook = {"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
        (folder / "hw2.ipynb").write_text(json.dumps(notebook))
        data = folder / "selfcheck" / "checks.json"
        spec = json.loads(data.read_text())
        spec["notebook"] = "hw2.ipynb"
        for check in spec["checks"]:
            check["target"] = "notebook"
        data.write_text(json.dumps(spec))
        open_to_student(folder)
        code_, out, verdicts = _run(student_env, folder)
        assert len(verdicts) == 6, out
        assert {str(v["check"]) for v in verdicts if not v["ok"]} == failing, out
        assert code_ == (1 if failing else 0)
