"""The NumPy-only comparison shared by grading and the students' self-check."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import numpy as np

from grader.checks import compare
from grader.checks.compare import Tolerance, compare_arrays


def test_relative_error_is_the_default() -> None:
    exp = np.array([1.0, 2.0])
    assert compare_arrays(Tolerance(), exp, exp * (1 + 1e-8)).ok
    verdict = compare_arrays(Tolerance(), exp, exp * 1.01)
    assert verdict.reason == "differs" and verdict.error > 1e-3


def test_rtol_atol_show_max_abs_difference() -> None:
    verdict = compare_arrays(Tolerance(rtol=0.0, atol=0.1), np.zeros(3), np.array([0, 0, 0.5]))
    assert verdict.reason == "differs" and verdict.error == 0.5


def test_shapes_and_size_one_axes() -> None:
    exp = np.zeros((3, 1))
    assert compare_arrays(Tolerance(), exp, np.zeros(3)).reason == "shape"
    assert compare_arrays(Tolerance(squeeze_size1=True), exp, np.zeros(3)).ok
    assert compare_arrays(Tolerance(), np.array(2.0), np.array([[2.0]])).ok


def test_non_finite_never_passes() -> None:
    verdict = compare_arrays(Tolerance(atol=math.inf), np.zeros(2), np.array([0.0, np.nan]))
    assert verdict.reason == "not finite"


def test_imports_only_the_standard_library_and_numpy() -> None:
    tree = ast.parse(Path(compare.__file__).read_text())
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            roots.add(node.module.split(".")[0])
    assert roots <= {"__future__", "math", "dataclasses", "typing", "numpy"}
