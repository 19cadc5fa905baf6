"""``grade new``: the skeleton's files, its golden comparison script, and ``grade
validate`` on it (in full once the files, nbcalls and structure branches are in; a
variant without their parts validates today)."""

from __future__ import annotations

import fnmatch
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from grader.authoring.assign import student_notebook
from grader.cli import main

ROOT = Path(__file__).resolve().parents[2]
SKELETON_FILES = [
    "demo.yaml",
    "demo.md",
    "demo_reference.py",
    "solution/demo.ipynb",
    "data/signal.npy",
    "golden/README.md",
    "golden/compare.py",
    "golden/solution.yaml",
    "golden/window_same.yaml",
    "golden/linear_head.yaml",
    "golden/stubs.yaml",
    "golden/submissions/solution/demo.ipynb",
    "golden/submissions/window_same/demo.ipynb",
    "golden/submissions/linear_head/demo.ipynb",
    "golden/submissions/stubs/demo.ipynb",
]


@pytest.fixture(scope="module")
def skeleton(tmp_path_factory: pytest.TempPathFactory) -> Path:
    course = tmp_path_factory.mktemp("course")
    assert main(["new", "demo", "--course", str(course)]) == 0
    return course / "demo"


def test_skeleton_files(skeleton: Path) -> None:
    for name in SKELETON_FILES:
        assert (skeleton / name).is_file(), name
    rubric = yaml.safe_load((skeleton / "demo.yaml").read_text())
    assert rubric["reference"] == "demo_reference.py" and rubric["files"] == ["data/signal.npy"]
    types = {c["type"] for q in rubric["questions"] for c in q["checks"]}
    assert {"value", "text", "function", "model", "structure"} <= types
    function = next(c for q in rubric["questions"] for c in q["checks"] if c["type"] == "function")
    assert function["source"] == "notebook" and function["public_cases"]


def test_solution_is_marked_and_golden_stubs_are_the_student_version(skeleton: Path) -> None:
    solution = json.loads((skeleton / "solution/demo.ipynb").read_text())
    text = "".join(c["source"] for c in solution["cells"])
    assert "### BEGIN SOLUTION" in text and "### END SOLUTION" in text
    assert any("solution" in c["metadata"].get("tags", []) for c in solution["cells"])
    stubs = json.loads((skeleton / "golden/submissions/stubs/demo.ipynb").read_text())
    assert stubs == student_notebook(solution, "solution")
    same = json.loads((skeleton / "golden/submissions/window_same/demo.ipynb").read_text())
    assert 'mode="same"' in "".join(c["source"] for c in same["cells"])


def test_new_refuses_an_existing_folder_and_a_bad_name(skeleton: Path) -> None:
    assert main(["new", "demo", "--course", str(skeleton.parent)]) == 2
    assert main(["new", "hw-5", "--course", str(skeleton.parent)]) == 2


def test_templates_are_package_data() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["grader"]
    templates = ROOT / "grader" / "authoring" / "templates"
    for path in templates.rglob("*"):
        if path.is_file():
            relative = str(path.relative_to(ROOT / "grader"))
            assert any(fnmatch.fnmatch(relative, p) for p in patterns), relative


def test_validate_passes_on_the_skeleton(skeleton: Path) -> None:
    assert main(["validate", str(skeleton / "demo.yaml")]) == 0


def _results_from(skeleton: Path, graded: Path, change: str | None = None) -> None:
    (graded / "results").mkdir(parents=True, exist_ok=True)
    for expectation in (skeleton / "golden").glob("*.yaml"):
        wanted = yaml.safe_load(expectation.read_text())
        checks = [
            {"id": k, "score": v["points"] + (1 if k == change else 0), "status": v["status"]}
            for k, v in wanted["checks"].items()
        ]
        result = {"score": wanted["total"], "questions": [{"checks": checks}]}
        (graded / "results" / f"{expectation.stem}.json").write_text(json.dumps(result))


def test_golden_compare_script(skeleton: Path, tmp_path: Path) -> None:
    script = skeleton / "golden" / "compare.py"
    _results_from(skeleton, tmp_path / "same")
    same = subprocess.run([sys.executable, str(script), str(tmp_path / "same")], check=False)
    assert same.returncode == 0
    _results_from(skeleton, tmp_path / "other", change="q1_dot")
    other = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "other")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert other.returncode == 1
    assert "solution q1_dot: 3 points, expected 2" in other.stdout


def test_golden_submissions_earn_their_hand_written_points(skeleton: Path, tmp_path: Path) -> None:
    graded = tmp_path / "graded"
    argv = [str(skeleton / "golden" / "submissions"), "--rubric", str(skeleton / "demo.yaml")]
    assert main([*argv, "--out", str(graded), "--no-reports", "--quiet"]) == 0
    done = subprocess.run(
        [sys.executable, str(skeleton / "golden" / "compare.py"), str(graded)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout
