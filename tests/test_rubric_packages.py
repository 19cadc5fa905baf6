"""The rubric's ``packages:`` key: import names the grading environment must have,
checked by ``grade validate`` (:func:`grader.rubric.missing_packages`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.errors import RubricError
from grader.rubric import load_rubric, missing_packages

BODY = (
    "assignment: x\ntitle: T\nreference: hw3\nnotebook: x.ipynb\n{packages}"
    "questions:\n  - id: q1\n    checks:\n"
    "      - id: a\n        type: value\n        answer: a\n        points: 2\n"
)


def write(tmp_path: Path, packages: str) -> Path:
    path = tmp_path / "r.yaml"
    path.write_text(BODY.format(packages=packages))
    return path


def test_installed_packages_pass_and_missing_ones_are_named(tmp_path: Path) -> None:
    rubric = load_rubric(write(tmp_path, "packages: [numpy, sklearn, not_a_package_xyz]\n"))
    assert rubric.packages == ("numpy", "sklearn", "not_a_package_xyz")
    problems = missing_packages(rubric)
    assert len(problems) == 1
    assert problems[0].startswith("packages: not_a_package_xyz does not import")
    assert "ModuleNotFoundError" in problems[0]


def test_no_packages_no_problems(tmp_path: Path) -> None:
    assert missing_packages(load_rubric(write(tmp_path, ""))) == []


def test_a_distribution_name_is_refused_with_the_import_name_to_use(tmp_path: Path) -> None:
    with pytest.raises(RubricError) as err:
        load_rubric(write(tmp_path, "packages: [scikit-learn]\n"))
    assert "'scikit-learn' is not an import name" in str(err.value)
    assert err.value.line == 5
