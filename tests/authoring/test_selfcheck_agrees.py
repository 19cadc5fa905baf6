"""The self-check and the grader agree on every public case of every shipped rubric.

For each rubric with public cases, a rubric whose ``cases:`` are the public cases is
graded by the grader (sandboxed, as any batch) on every sample submission, and the
self-check written by ``grade assign`` runs on the same submissions: each function
check passes in both or in neither, and the same public cases fail.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from grader.checks.function import FunctionSpec
from grader.cli import main
from grader.rubric import load_rubric

ROOT = Path(__file__).resolve().parents[2]
RUBRICS = ["hw1", "hw2", "hw4"]


def _public_rubric(rubric: str, folder: Path) -> Path:
    """A module-only rubric grading each function check on its public cases."""
    loaded = load_rubric(rubric)
    checks: list[dict[str, Any]] = []
    for spec in loaded.checks():
        if isinstance(spec, FunctionSpec) and spec.public_cases is not None:
            data = spec.model_dump(mode="json", exclude_defaults=True)
            data.update(type="function", cases=spec.public_cases)
            data.pop("public_cases")
            checks.append(data)
    assert checks, rubric
    path = folder / f"{rubric}-public.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "assignment": f"{rubric}-public",
                "title": f"{rubric}: public cases",
                "reference": str(ROOT / "reference" / f"{rubric}.py"),
                "module": loaded.module,
                "frameworks": list(loaded.frameworks),
                "questions": [{"id": "q", "checks": checks}],
            }
        )
    )
    return path


def _self_check(script_dir: Path, submission: Path, work: Path) -> dict[str, list[dict[str, Any]]]:
    folder = work / submission.name
    shutil.copytree(script_dir, folder)
    for path in submission.iterdir():
        if path.is_file() and path.suffix == ".py":
            shutil.copy2(path, folder / path.name)
    verdicts = folder / "verdicts.json"
    subprocess.run(
        [
            sys.executable,
            "-I",
            str(folder / "check.py"),
            "--json",
            str(verdicts),
            "--timeout",
            "20",
        ],
        cwd=folder,
        capture_output=True,
        timeout=600,
        check=False,
    )
    by_check: dict[str, list[dict[str, Any]]] = {}
    for verdict in json.loads(verdicts.read_text()):
        by_check.setdefault(verdict["check"], []).append(verdict)
    return by_check


@pytest.mark.parametrize("rubric", RUBRICS)
def test_self_check_and_grader_agree_on_public_cases(tmp_path: Path, rubric: str) -> None:
    version = tmp_path / "student"
    assert main(["assign", rubric, "--out", str(version)]) == 0
    # Only what the module check needs: the script and its data, no notebook.
    script_dir = tmp_path / "script"
    script_dir.mkdir()
    shutil.copy2(version / "check.py", script_dir)
    shutil.copytree(version / "selfcheck", script_dir / "selfcheck")
    spec = json.loads((script_dir / "selfcheck" / "checks.json").read_text())
    spec["notebook"] = None
    spec["checks"] = [c for c in spec["checks"] if c["kind"] == "function"]
    (script_dir / "selfcheck" / "checks.json").write_text(json.dumps(spec))

    out = tmp_path / "graded"
    samples = ROOT / "submissions" / rubric
    public = _public_rubric(rubric, tmp_path)
    assert (
        main(
            [
                str(samples),
                "--rubric",
                str(public),
                "--out",
                str(out),
                "--no-reports",
                "--quiet",
                "--jobs",
                "2",
            ]
        )
        == 0
    )
    compared = 0
    for result_file in sorted((out / "results").glob("*.json")):
        student = result_file.stem
        result = json.loads(result_file.read_text())
        graded = {c["id"]: c for q in result["questions"] for c in q["checks"]}
        mine = _self_check(script_dir, samples / student, tmp_path / "runs")
        assert set(mine) == set(graded), student
        for check, verdicts in mine.items():
            grader_pass = graded[check]["status"] == "pass"
            self_pass = all(v["ok"] for v in verdicts)
            assert grader_pass == self_pass, (student, check, graded[check]["message"], verdicts)
            details = graded[check].get("details") or {}
            if (
                not grader_pass
                and details.get("failing_cases")
                and details.get("error") != "missing"
            ):
                failing = {v["case"] for v in verdicts if not v["ok"]}
                assert failing == set(details["failing_cases"]), (student, check)
            compared += 1
    assert compared >= 6
