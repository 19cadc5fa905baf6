"""``grade assign``: stripping solutions, the student notebook, public cases refused when
they equal hidden ones, and every shipped rubric's student version."""

from __future__ import annotations

import json
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from grader.authoring.assign import (
    GIVEN_TAG,
    provided_files,
    selfcheck_source,
    strip_source,
    student_notebook,
)
from grader.checks.function import FunctionSpec, compute_cases
from grader.cli import main
from grader.errors import GraderError

ROOT = Path(__file__).resolve().parents[2]
RUBRICS = ["hw1", "hw2", "hw3", "hw4", "hw4b", "project1"]

#: Lines of each shipped solution that must not reach students.
SOLUTION_LINES = {
    "hw1": [
        "z = z - z.max(axis=1, keepdims=True)  # exp never overflows",
        "return np.mean(np.abs(predicted_y - y), axis=1)",
        "Batch normalisation (Ioffe and Szegedy, 2015) addresses internal covariate shift",
        "test_accuracy = float(calculate_accuracy(Y_test",
    ],
    "hw2": ["dx = (dout @ w.T).reshape(x.shape)", "dx[np.arange(n), y] -= 1"],
    "hw3": [
        "q2_dL_dX = X.grad.numpy()",
        "A saddle point is a point where the gradient is zero",
        "q6_params = sum(p.numel() for p in conv1x1.parameters())",
        "out = torch.cat([self.b1(x), self.b3(x), self.b5(x), self.bp(x)], dim=1)",
    ],
    "hw4": [
        "new_var = (1 - momentum) * running_var + momentum * var * n / (n - 1)",
        "q6_true_false = [False, True, False, True]",
        "q5_same_padding = 4",
    ],
    "hw4b": [
        'q1_sigmoid_loss, q1_sigmoid_accuracy = train_cnn(activation="sigmoid")',
        "q5_filters = [8, 16, 16]",
        "ReLU is cheap to compute",
    ],
    "project1": ["class LocallyConnected1d(nn.Module):", "lc_table = [["],
}


# ------------------------------------------------------------------ stripping


def test_marked_region_becomes_the_stub_at_its_indentation() -> None:
    text = (
        "def f(x):\n    '''doc'''\n    ### BEGIN SOLUTION\n    return x + 1\n    ### END SOLUTION\n"
    )
    out, replaced = strip_source(text, "f.py")
    assert replaced
    assert out == (
        "def f(x):\n    '''doc'''\n    # YOUR CODE HERE\n    raise NotImplementedError()\n"
    )


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("### BEGIN SOLUTION\nx = 1\n", "line 1: ### BEGIN SOLUTION is never closed"),
        ("x = 1\n### END SOLUTION\n", "line 2: ### END SOLUTION without"),
        ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n", "line 2: ### BEGIN SOLUTION inside"),
    ],
)
def test_unbalanced_markers_name_the_line(text: str, words: str) -> None:
    with pytest.raises(GraderError, match=words):
        strip_source(text, "nb.ipynb, cell 3")


def _cell(kind: str, source: str, tags: list[str] | None = None) -> dict[str, Any]:
    cell: dict[str, Any] = {
        "cell_type": kind,
        "source": source,
        "metadata": {"tags": tags or [], "nbgrader": {"grade": True}, "collapsed": True},
    }
    if kind == "code":
        cell.update(execution_count=3, outputs=[{"output_type": "stream", "text": "12"}])
    return cell


def test_student_notebook_tags_clears_and_strips() -> None:
    solution = {
        "cells": [
            _cell("markdown", "# Title"),
            _cell("code", "import numpy as np"),
            _cell("code", "a = 1\n### BEGIN SOLUTION\nanswer = 42\n### END SOLUTION"),
            _cell("code", "secret = 7", ["solution"]),
            _cell("markdown", "### Q2\n\nBecause of the secret reason.", ["solution", "keep"]),
        ],
        "metadata": {"kernelspec": {"name": "python3"}, "grader_answers": {"x": 1}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    nb = student_notebook(solution, "sol.ipynb")
    cells = nb["cells"]
    assert [c["metadata"].get("tags") for c in cells] == [
        [GIVEN_TAG],
        [GIVEN_TAG],
        None,
        None,
        ["keep"],
    ]
    assert cells[2]["source"] == "a = 1\n# YOUR CODE HERE\nraise NotImplementedError()"
    assert cells[3]["source"] == "# YOUR CODE HERE\nraise NotImplementedError()"
    assert cells[4]["source"] == "### Q2\n\nYOUR ANSWER HERE"
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in cells[1:4])
    assert all(set(c["metadata"]) <= {"tags"} for c in cells)
    assert nb["metadata"] == {"kernelspec": {"name": "python3"}}
    assert "42" not in json.dumps(nb) and "secret" not in json.dumps(nb)


# ------------------------------------------------------------------ public cases


def _reference(public_args: list[Any]) -> types.ModuleType:
    module = types.ModuleType("ref")
    module.double = lambda x: 2 * np.asarray(x)  # type: ignore[attr-defined]
    module.hidden = lambda: [  # type: ignore[attr-defined]
        {"name": "three values", "args": [np.array([1.0, 2.0, 3.0])]}
    ]
    module.public = lambda: [  # type: ignore[attr-defined]
        {"name": "public", "args": public_args}
    ]
    return module


def _spec() -> FunctionSpec:
    return FunctionSpec.model_validate(
        {
            "id": "double",
            "type": "function",
            "points": 1,
            "reference": "double",
            "cases": "hidden",
            "public_cases": "public",
        }
    )


def test_public_cases_are_computed_apart_from_the_hidden_ones() -> None:
    data = compute_cases(_spec(), _reference([np.array([5.0])]))
    assert [c["name"] for c in data["cases"]] == ["three values"]
    (public,) = data["public"]
    assert public["name"] == "public"
    np.testing.assert_array_equal(public["returned"], [10.0])


def test_a_public_case_equal_to_a_hidden_case_is_refused() -> None:
    with pytest.raises(ValueError, match="same inputs as the hidden case 'three values'"):
        compute_cases(_spec(), _reference([np.array([1.0, 2.0, 3.0])]))


def test_public_cases_need_the_values_grading() -> None:
    with pytest.raises(ValidationError, match="public_cases needs `grading: values`"):
        FunctionSpec.model_validate(
            {
                "id": "dropout_forward",
                "type": "function",
                "points": 1,
                "cases": "c",
                "grading": "dropout_forward",
                "public_cases": "p",
            }
        )


def test_assign_refuses_a_rubric_whose_public_case_is_hidden(tmp_path: Path) -> None:
    (tmp_path / "ref.py").write_text(
        "import numpy as np\n"
        "def double(x):\n    return 2 * x\n"
        "def hidden():\n    return [{'name': 'a', 'args': [np.ones(3)]}]\n"
        "def public():\n    return [{'name': 'b', 'args': [np.ones(3)]}]\n"
        "def compute():\n    return {}\n"
    )
    (tmp_path / "double.py").write_text("def double(x):\n    return 2 * x\n")
    rubric = tmp_path / "r.yaml"
    rubric.write_text(
        "assignment: r\ntitle: R\nreference: ref.py\nmodule: double.py\nsolution: .\n"
        "questions:\n  - id: q1\n    checks:\n"
        "      - {id: double, type: function, points: 1, reference: double, cases: hidden,\n"
        "         public_cases: public}\n"
    )
    assert main(["assign", str(rubric), "--out", str(tmp_path / "out")]) == 2


# ------------------------------------------------------------------ shipped rubrics


@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("student-versions")
    for rubric in RUBRICS:
        assert main(["assign", rubric, "--out", str(out / rubric)]) == 0
    return {r: out / r for r in RUBRICS}


@pytest.mark.parametrize("rubric", RUBRICS)
def test_no_solution_text_reaches_students(versions: dict[str, Path], rubric: str) -> None:
    folder = versions[rubric]
    handed_out = "".join(
        p.read_text()
        for p in folder.iterdir()
        if p.suffix in (".py", ".ipynb") and p.name != "check.py"
    )
    for line in SOLUTION_LINES[rubric]:
        assert line not in handed_out, f"{rubric}: solution line left: {line}"
    assert "raise NotImplementedError()" in handed_out
    assert "BEGIN SOLUTION" not in handed_out


@pytest.mark.parametrize("rubric", [r for r in RUBRICS if r != "hw2"])
def test_student_notebook_marks_given_cells(versions: dict[str, Path], rubric: str) -> None:
    (notebook,) = versions[rubric].glob("*.ipynb")
    cells = json.loads(notebook.read_text())["cells"]
    given = [GIVEN_TAG in c["metadata"].get("tags", []) for c in cells]
    assert any(given) and not all(given)
    assert all(c.get("outputs", []) == [] for c in cells)


@pytest.mark.parametrize("rubric", RUBRICS)
def test_self_check_holds_no_hidden_expected_value(versions: dict[str, Path], rubric: str) -> None:
    folder = versions[rubric]
    script = (folder / "check.py").read_text()
    assert "import grader" not in script and "from grader" not in script
    checks = json.loads((folder / "selfcheck" / "checks.json").read_text())["checks"]
    assert checks
    for check in checks:
        assert "expected" not in check
        for case in check.get("cases", []):
            assert case["name"].startswith("public")


def test_self_check_is_the_comparison_module_and_the_runner() -> None:
    source = selfcheck_source("T")
    compile(source, "check.py", "exec")
    assert source.count("from __future__ import annotations") == 1
    assert "def compare_arrays(" in source and "def run_case(" in source


@pytest.mark.parametrize(
    ("target", "shipped"),
    [
        ("/kaggle/input/comp/train.csv", "kaggle/input/comp/train.csv"),
        ("/content/drive/MyDrive/hw/", "content/drive/MyDrive/hw"),
        ("data/train.csv", "data/train.csv"),
    ],
)
def test_colab_and_kaggle_targets_ship_inside_the_student_folder(
    tmp_path: Path, target: str, shipped: str
) -> None:
    (tmp_path / "train.csv").write_text("a\n")
    rubric = tmp_path / "r.yaml"
    rubric.write_text(f"files:\n  - {{source: train.csv, target: '{target}'}}\n")
    assert provided_files(rubric) == [((tmp_path / "train.csv").resolve(), shipped)]


@pytest.mark.parametrize("target", ["/etc/passwd", "/kaggle/other.csv", "../x"])
def test_other_targets_are_refused_by_assign(tmp_path: Path, target: str) -> None:
    (tmp_path / "train.csv").write_text("a\n")
    rubric = tmp_path / "r.yaml"
    rubric.write_text(f"files:\n  - {{source: train.csv, target: '{target}'}}\n")
    with pytest.raises(GraderError, match="under /content/ or /kaggle/input/"):
        provided_files(rubric)
