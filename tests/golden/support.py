"""What every golden test shares: grade a rubric's sample batch as a user would, and
compare each check's points and status with the expectations written by hand in
``tests/golden/<rubric>_expected.yaml`` (never captured from the grader's output)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from grader.cli import main

ROOT = Path(__file__).resolve().parents[2]


def load_golden(rubric: str) -> dict[str, Any]:
    """The hand-written expectations: ``{student: {check: {points, status}}, totals: …}``."""
    golden: dict[str, Any] = yaml.safe_load(
        (ROOT / "tests" / "golden" / f"{rubric}_expected.yaml").read_text(encoding="utf-8")
    )
    return golden


def students(golden: dict[str, Any]) -> list[str]:
    """The students a golden file describes, sorted."""
    return sorted(k for k in golden if k != "totals")


def grade_samples(rubric: str, out: Path, *options: str) -> Path:
    """``grade submissions/<rubric> --rubric <rubric> --out OUT --no-reports [options]``."""
    argv = [str(ROOT / "submissions" / rubric), "--rubric", rubric, "--out", str(out)]
    assert main([*argv, "--no-reports", *options]) == 0
    return out


def result(batch: Path, student: str) -> dict[str, Any]:
    """One student's results JSON."""
    data: dict[str, Any] = json.loads((batch / "results" / f"{student}.json").read_text())
    return data


def checks(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A results record's checks by id."""
    return {c["id"]: c for q in record["questions"] for c in q["checks"]}


def golden_mismatches(batch: Path, golden: dict[str, Any], student: str) -> dict[str, Any]:
    """Every check whose (points, status) differs from the golden file, with its message;
    the check ids and the total are compared too. Empty when all agree."""
    record = result(batch, student)
    got, expected = checks(record), golden[student]
    problems: dict[str, Any] = {}
    if sorted(got) != sorted(expected):
        problems["check ids"] = {"expected": sorted(expected), "got": sorted(got)}
    for cid, exp in expected.items():
        mine = got.get(cid)
        if mine is None or (mine["score"], mine["status"]) != (exp["points"], exp["status"]):
            problems[cid] = {
                "expected": (exp["points"], exp["status"]),
                "got": None if mine is None else (mine["score"], mine["status"]),
                "message": None if mine is None else mine["message"],
            }
    if record["score"] != golden["totals"][student]:
        problems["total"] = {"expected": golden["totals"][student], "got": record["score"]}
    return problems
